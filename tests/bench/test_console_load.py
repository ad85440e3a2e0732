"""``make bench-console`` at a small size (issue 19): 10 devices into PostgreSQL through two
listeners in one shared group, two console instances, three officers and the queue watcher.

Checks the counts the report rests on (every alert stored once, every alert shown in the
queue, each decided at most once, no client errors) and that every figure was measured; like
the other benches it asserts no time (performance targets are not unit tests: the figures are
in reports/console-load.md). Skipped without the machine's PostgreSQL.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from tools.bench.console_load import main
from tools.bench.console_report import bench_section

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres() -> None:
    psycopg = pytest.importorskip("psycopg")
    from tools.postgres import ADMIN_URL

    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at {ADMIN_URL} ({exc})")
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed")


@pytest.mark.usefixtures("postgres")
def test_small_console_load_stores_each_alert_once_and_measures_everything(
    tmp_path: Path,
) -> None:
    argv = ["--devices", "10", "--workers", "2", "--rate", "4", "--seconds", "12"]
    argv += ["--seed-alerts", "1000", "--migration-alerts", "3000", "--page-loads", "10"]
    argv += ["--browsers", "1"]  # one Chromium is enough to prove the path in CI
    assert main([*argv, "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "console-load.json").read_text())
    load = doc["load"]

    assert load["produced"] >= 0.8 * 4 * 12, "the devices did not produce their load"
    assert load["live_rows"] == load["live_distinct"] == load["produced"]
    assert load["missing"] == 0 and load["rows"] == load["distinct_rows"] == 1000 + load["produced"]
    totals = load["listener_totals"]
    assert len(totals) == 2 and sum(t[0] for t in totals) == load["produced"]
    assert sum(t[2] for t in totals) == 0, "a genuine alert was refused"

    assert load["not_seen_in_queue"] == 0
    assert load["device_to_queue_s"]["n"] == load["device_to_store_s"]["n"] == load["produced"]
    assert load["decided_by_officers"] > 0 and load["decided_twice"] == 0
    assert load["error_count"] == 0, load["errors"]
    assert all(n > 0 for n in load["per_officer"].values()), load["per_officer"]
    for figures in (doc["quiet"], load["pages"]):
        assert {"queue", "alert"} <= set(figures)
        assert all(not math.isnan(f["p95"]) for f in figures.values())
    if load["browser"]:  # the first officer worked in Chromium: its page loads are there
        assert {"browser queue", "browser alert", "browser decide"} <= set(load["pages"])
    assert doc["migration"]["to_version"] == 7 and doc["migration"]["migrate_s"] > 0

    report = (tmp_path / "console-load.md").read_text()
    assert "## Every alert stored once" in report and "## Migration 4 -> 7" in report
    section = "\n".join(bench_section(tmp_path))
    assert "[console-load.md](console-load.md)" in section and "stored exactly once" in section
