"""``lfr-alerts report`` per person (issue 16 §4): people seen from the devices' track counts,
false alerts per 1,000 people, alerts per camera-hour, time to alert, outcomes; and the report
on a plain install of the central tools (no matplotlib)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

from central import alerts_cli
from central.pilot import CHARTS_MISSING, collect, purge
from central.store import AlertStore
from protocol.event import sign_event
from protocol.status import DeviceStatus, FramesReport, State
from tests.conftest import NOW, Fleet
from tests.unit.test_event import make_event
from tests.unit.test_status import report

DAY = NOW.strftime("%Y-%m-%d")


def snapshot(
    store: AlertStore,
    device: str,
    site: str,
    minutes: int,
    uptime: int,
    faces: int,
    tracks: int | None,
    median: float | None = None,
) -> None:
    """A status as the device encodes it and the listener stores it (``to_json``)."""
    frames = FramesReport(
        0,
        faces,
        faces,
        {},
        0,
        0,
        0,
        0,
        time_to_alert_s={} if median is None else {"last": median, "median": median},
        tracks_started=tracks,
    )
    at = NOW + timedelta(minutes=minutes)
    status = DeviceStatus(State.ONLINE, device, site, report(uptime_s=uptime, frames=frames, at=at))
    store.add_status(status.to_json())


def pilot_store(path: Path, fleet: Fleet) -> AlertStore:
    """Site kx: cam-01 runs an hour, restarts, runs half an hour more: 1,200 people, 1.5 h.
    Six alerts: 2 false, 1 confirmed, 1 no action, 2 awaiting. Site pd: an older device."""
    store = AlertStore(f"sqlite:///{path}")
    snapshot(store, "cam-01", "kx", 0, 100, 500, 40)  # the first snapshot counts nothing
    snapshot(store, "cam-01", "kx", 60, 3700, 2500, 1040, 0.8)  # +1,000 people, +1 h
    snapshot(store, "cam-01", "kx", 90, 1800, 600, 200, 1.2)  # restarted: +200, +0.5 h
    snapshot(store, "cam-09", "pd", 0, 10, 5, None)
    snapshot(store, "cam-09", "pd", 30, 1810, 105, None)  # no track counts: people unknown
    outcomes = ["false_alert", "false_alert", "confirmed", "no_action", None, None]
    for n, outcome in enumerate(outcomes):
        event = make_event(fleet)
        store.add(event, sign_event(event, fleet.device_signing), NOW + timedelta(minutes=n))
        if outcome is not None:
            store.adjudicate(event.event_id, outcome, "PC 1 Smith", NOW + timedelta(minutes=10))
    return store


def test_the_report_counts_people_not_detections(tmp_path: Path, fleet: Fleet) -> None:
    store = pilot_store(tmp_path / "alerts.db", fleet)
    kx = collect(store).days[("kx", DAY)]
    assert (kx.people, kx.faces, kx.device_seconds) == (1200, 2600, 5400)
    assert (kx.alerts, kx.false_alerts, kx.confirmed, kx.no_action) == (6, 2, 1, 1)
    assert kx.false_per_1000_people == pytest.approx(1000 * 2 / 1200)
    assert kx.alerts_per_hour == pytest.approx(6 / 1.5)
    assert kx.median_time_to_alert == pytest.approx(1.0)
    assert not kx.people_partial
    pd = collect(store).days[("pd", DAY)]
    assert pd.people_partial and pd.people == 0 and pd.faces == 100
    assert pd.false_per_1000_people is None  # no people counted: no rate, not a zero
    assert (
        alerts_cli.main(
            ["report", "--db", f"sqlite:///{tmp_path}/alerts.db", "--out", str(tmp_path)]
        )
        == 0
    )
    text = (tmp_path / "pilot.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| kx | {DAY} |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2:14] == [
        "1200",
        "2600",
        "6",
        "1",
        "2",
        "1",
        "2",
        "1.67",
        "4.00",
        "1.0 s",
        "8.5 min",
    ]
    assert f"| pd | {DAY} | 0* |" in text and "people are undercounted" in text


def test_purged_days_keep_their_per_person_figures(tmp_path: Path, fleet: Fleet) -> None:
    store = pilot_store(tmp_path / "alerts.db", fleet)
    before = collect(store).days[("kx", DAY)]
    assert purge(store, timedelta(days=1), NOW + timedelta(days=3)) == (6, 5)
    after = collect(store).days[("kx", DAY)]
    assert (after.people, after.device_seconds, after.alerts, after.false_alerts) == (
        before.people,
        before.device_seconds,
        before.alerts,
        before.false_alerts,
    )
    assert after.median_time_to_alert == pytest.approx(1.0)


def test_the_report_works_without_matplotlib(
    tmp_path: Path, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import matplotlib` raise ImportError, as on a plain install.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401
    pilot_store(tmp_path / "alerts.db", fleet).close()
    assert (
        alerts_cli.main(
            ["report", "--db", f"sqlite:///{tmp_path}/alerts.db", "--out", str(tmp_path)]
        )
        == 0
    )
    text = (tmp_path / "pilot.md").read_text()
    assert CHARTS_MISSING in text and f"| kx | {DAY} | 1200 |" in text
    assert not list(tmp_path.glob("*.png"))
