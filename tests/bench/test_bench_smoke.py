"""CI keeps `make bench` working: one quick run, a report with every section (no timings
are asserted: performance lives in the report, not in tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench import bench

pytestmark = pytest.mark.integration


def test_quick_bench_writes_the_report(tmp_path: Path) -> None:
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "bench.md").read_text()
    for section in (
        "Per-stage latency",
        "baseline: OpenCV Haar",
        "Embedding models alone",
        "frames per second",
        "Matching one probe",
        "The agent as a process",
    ):
        assert section in report
    assert (tmp_path / "bench_matching.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "bench.json").read_text())
    assert summary["agent"]["peak_rss_mb"] > 10
