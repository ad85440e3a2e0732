"""The deployment page and its downloads (issue 19): one ``collect`` for the CLI's pilot.md,
the page, /deployment.md and /deployment.csv; per camera and per hour; inline SVG charts."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest

from central.deployment_page import render_deployment
from central.ops_pages import OpsPages
from central.pilot import collect
from central.pilot_files import report
from central.pilot_text import csv_text, markdown
from central.svg_charts import Series, bar_chart, line_chart
from tests.conftest import NOW, Fleet
from tests.unit.test_pilot_report import DAY, pilot_store

HOUR = NOW.strftime("%H")


def test_collect_adds_cameras_hours_and_a_total(tmp_path: Path, fleet: Fleet) -> None:
    store = pilot_store(tmp_path / "alerts.db", fleet)
    pilot = collect(store, NOW)
    assert set(pilot.cameras) == {"cam-01", "cam-09"}
    cam = pilot.cameras["cam-01"]  # make_event's device: all six alerts, kx's counters
    assert (cam.alerts, cam.false_alerts, cam.confirmed, cam.people) == (6, 2, 1, 1200)
    assert pilot.cameras["cam-09"].people_partial and pilot.cameras["cam-09"].alerts == 0
    assert pilot.hours[HOUR].alerts == 6
    assert pilot.total.alerts == 6 and pilot.total.people == 1200
    # decided at +10 min, received at +0..+3 min: waits 10, 9, 8, 7 min
    assert pilot.total.median_adjudication_s == pytest.approx(8.5 * 60)
    assert pilot.total.mean_adjudication_s == pytest.approx(8.5 * 60)
    assert pilot.days[("kx", DAY)].alerts == 6
    store.close()


def test_markdown_csv_and_page_agree(tmp_path: Path, fleet: Fleet) -> None:
    store = pilot_store(tmp_path / "alerts.db", fleet)
    pilot = collect(store, NOW)
    text = markdown(pilot)
    assert (
        f"| kx | {DAY} | 1200 | 2600 | 6 | 1 | 2 | 1 | 2 | 1.67 | 4.00 | 1.0 s | 8.5 min |" in text
    )
    assert "| cam-01 | 1200 | 2600 | 6 |" in text and "## Per hour of the day (UTC)" in text
    assert "![" not in text and "matplotlib" not in text  # charts=None: no chart section
    rows = list(csv.DictReader(io.StringIO(csv_text(pilot))))
    day = next(r for r in rows if r["table"] == "day" and r["site"] == "kx")
    assert (day["people"], day["alerts"], day["false_per_1000_people"]) == ("1200", "6", "1.667")
    assert [r["table"] for r in rows].count("total") == 1
    assert next(r for r in rows if r["table"] == "hour")["hour"] == HOUR
    page = render_deployment(pilot)
    assert "<script" not in page and page.count("<svg") == 5
    for svg in page.split("<svg")[1:]:
        ET.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # well-formed XML
    assert "1.67" in page and "cam-01" in page and 'href="/deployment.csv"' in page
    store.close()


def test_the_cli_report_is_the_same_computation_written_0600(tmp_path: Path, fleet: Fleet) -> None:
    store = pilot_store(tmp_path / "alerts.db", fleet)
    path = report(store, tmp_path / "out")
    assert path.stat().st_mode & 0o777 == 0o600
    assert "## Per camera" in path.read_text()
    store.close()


def test_downloads_are_attachments_and_csv_cells_are_neutralised(
    tmp_path: Path, fleet: Fleet
) -> None:
    store = pilot_store(tmp_path / "alerts.db", fleet)
    store.execute("UPDATE alerts SET device_id = '=cmd()' WHERE rowid = 1")
    pages = OpsPages(store, None, 30.0, clock=lambda: NOW + timedelta(hours=1))
    down = pages.get("deployment.csv", "PC 1")
    assert down is not None and down.content_type == "text/csv; charset=utf-8"
    assert down.headers["Content-Disposition"].startswith('attachment; filename="deployment-')
    assert b"'=cmd()" in down.body and b",=cmd()" not in down.body
    md = pages.get("deployment.md", "PC 1")
    assert md is not None and md.body.startswith(b"# Pilot assessment")
    page = pages.get("deployment", "PC <1>")
    assert page is not None and b"PC &lt;1&gt;" in page.body
    assert pages.get("nothing", "PC 1") is None
    store.close()


def test_an_empty_store_gives_a_page_not_an_error(tmp_path: Path) -> None:
    from central.store import AlertStore

    store = AlertStore(f"sqlite:///{tmp_path}/empty.db")
    page = render_deployment(collect(store, NOW))
    assert "No alerts or device figures stored yet" in page
    assert "0 alerts" in page
    store.close()


def test_charts_are_escaped_scaled_and_checked() -> None:
    svg = bar_chart("A <b>", ["x&y", "z"], [Series("s<1>", [3.0, 5.0], "#123456")])
    root = ET.fromstring(svg)
    assert root.get("aria-label") == "A <b>"
    assert "x&amp;y" in svg and "<b>" not in svg
    line = line_chart("rate", ["a", "b", "c"], [Series("r", [1.0, float("nan"), 2.0], "#000")])
    assert line.count("<circle") == 2  # the value not reported is not drawn
    with pytest.raises(ValueError, match="has 1 values for 2"):
        bar_chart("t", ["a", "b"], [Series("s", [1.0], "#000")])
    ET.fromstring(bar_chart("empty", [], []))
