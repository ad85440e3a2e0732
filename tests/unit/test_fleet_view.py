"""The fleet view (issue 19): the latest verified status per device (store version 6), what
ops see for each device (online/offline since when, stale, paused, alarms, certificate), and
the rendering (no script, names escaped)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.device_status import LatestStatus, alerts_since, latest_statuses, record_status
from central.fleet_view import FleetRow, assess, render_fleet
from central.listener import Listener
from central.ops_pages import fleet_rows
from central.store import AlertStore
from central.svg_charts import Series, bar_chart, line_chart
from lfrkit.mqtt import MqttLink, MqttSettings
from protocol.event import sign_event
from protocol.keys import load_signing_private
from protocol.status import (
    DeviceStatus,
    EventsReport,
    Rejection,
    State,
    WatchlistReport,
    sign_status,
    signed_offline_status,
)
from provisioning.quickstart import quickstart
from provisioning.registry import Registry
from tests.conftest import NOW, Fleet
from tests.postgres import postgres_url  # noqa: F401 - fixture
from tests.unit.test_event import make_event
from tests.unit.test_parsers_fuzz import FUZZ
from tests.unit.test_status import report, statuses

INTERVAL = 30.0
CERT = NOW + timedelta(days=365)


def online(state: State = State.ONLINE, device: str = "cam-01", **changes: object) -> DeviceStatus:
    return DeviceStatus(state, device, "kx", report(**changes))


def row(
    status: DeviceStatus | None,
    received: datetime = NOW,
    since: datetime = NOW,
    cert: datetime | None = CERT,
    registered: str = "active",
) -> FleetRow:
    latest = None if status is None else LatestStatus(status, since, received)
    return FleetRow("cam-01", "kx", registered, cert, latest, 3)


def test_a_fresh_online_device_shows_online_since_when_without_alarms() -> None:
    view = assess(row(online(), since=NOW - timedelta(hours=2)), NOW, INTERVAL)
    assert (view.connection, view.since, view.stale, view.alarms) == (
        "online",
        NOW - timedelta(hours=2),
        False,
        [],
    )


def test_a_silent_device_is_stale_after_two_and_a_half_intervals() -> None:
    fresh = assess(row(online(), received=NOW - timedelta(seconds=74)), NOW, INTERVAL)
    assert fresh.connection == "online" and not fresh.stale
    old = row(online(), received=NOW - timedelta(seconds=76))
    stale = assess(old, NOW, INTERVAL)
    assert stale.connection == "stale" and stale.stale
    assert stale.alarms[0] == "no status for 76 s"
    assert assess(old, NOW, 60.0).connection == "online"  # the interval decides


def test_offline_is_offline_since_the_will_not_stale() -> None:
    will = DeviceStatus(State.OFFLINE, "cam-01", "kx")
    view = assess(row(will, received=NOW - timedelta(hours=5), since=NOW - timedelta(hours=5)),
                  NOW, INTERVAL)  # fmt: skip
    assert (view.connection, view.since, view.stale) == ("offline", NOW - timedelta(hours=5), False)


def test_paused_wiped_and_never_heard_and_revoked() -> None:
    wiped = WatchlistReport(None, None, None, "wiped by command", 4, 9, None)
    paused = assess(row(online(State.PAUSED, watchlist=wiped)), NOW, INTERVAL)
    assert paused.connection == "paused"
    html = render_fleet([row(online(State.PAUSED, watchlist=wiped))], NOW)
    assert "paused, wiped by command" in html
    assert assess(row(None), NOW, INTERVAL).connection == "never heard"
    assert assess(row(online(), registered="revoked"), NOW, INTERVAL).connection == "revoked"


def test_alarms_camera_outbox_clock_keys_certificate_watchlist() -> None:
    status = online(
        seconds_since_frame=45.0,
        events=EventsReport(0, 6_000, 0, 0, 10_000),
        at=NOW + timedelta(minutes=10),
        alarms=("keys unsealed: signing.key plain", "no consumer subscribed to events: 3"),
        watchlist=WatchlistReport(7, "op-1", NOW + timedelta(hours=5), "installed", 7, 2, None),
    )
    view = assess(row(status, cert=NOW + timedelta(days=12)), NOW, INTERVAL)
    assert view.alarms == [
        "certificate expires in 12 d 0 h",
        "camera down",
        "outbox filling (6000/10000)",
        "clock unsynchronised (+10 min)",
        "keys unsealed",
        "no consumer subscribed to events: 3",
        "watchlist expires in 5 h 0 min",
    ]
    expired = assess(row(online(), cert=NOW - timedelta(days=1)), NOW, INTERVAL)
    assert expired.alarms == ["certificate expired"]
    stalled = online(alarms=("camera stalled: no frame for 12s",))
    assert assess(row(stalled), NOW, INTERVAL).alarms == ["camera down"]


def test_the_page_shows_every_figure_and_escapes_names() -> None:
    rejection = Rejection("watchlist", "rollback", NOW - timedelta(minutes=3))
    status = online(
        fps=9.5,
        watchlist=WatchlistReport(
            12, "op-1", NOW + timedelta(days=2, hours=3), "installed", 12, 4, rejection
        ),
    )
    html = render_fleet(
        [row(status), replace(row(None), device_id="<script>x</script>")], NOW, INTERVAL
    )
    for text in ("9.5", "v12 (installed)", "expires in 2 d 3 h", "watchlist: rollback",
                 "365 days", "1 never heard, 1 online", "(status every 30 s)"):  # fmt: skip
        assert text in html, text
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- the store and the listener ---------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/a.db"
    return str(request.getfixturevalue("postgres_url"))


def test_state_since_moves_only_when_the_state_changes(store_url: str, fleet: Fleet) -> None:
    store = AlertStore(store_url)
    assert store.schema_version >= 6  # device_status arrives in version 6
    first, later = online(uptime_s=5), online(uptime_s=35)
    record_status(store, first, NOW)
    record_status(store, later, NOW + timedelta(seconds=30))
    latest = latest_statuses(store)["cam-01"]
    assert (latest.state_since, latest.received_at) == (NOW, NOW + timedelta(seconds=30))
    # the same document again (retained, redelivered after a reconnect) is not news
    record_status(store, later, NOW + timedelta(minutes=10))
    assert latest_statuses(store)["cam-01"].received_at == NOW + timedelta(seconds=30)
    record_status(store, DeviceStatus(State.OFFLINE, "cam-01", "kx"), NOW + timedelta(hours=1))
    gone = latest_statuses(store)["cam-01"]
    assert gone.status.state is State.OFFLINE and gone.state_since == NOW + timedelta(hours=1)
    # two listeners in one group: the device's older document, stored second, is ignored ...
    newer = online(device="cam-02", uptime_s=40, at=NOW + timedelta(seconds=40))
    record_status(store, newer, NOW + timedelta(seconds=41))
    record_status(store, online(device="cam-02", uptime_s=39, at=NOW + timedelta(seconds=39)),
                  NOW + timedelta(seconds=41))  # fmt: skip
    assert latest_statuses(store)["cam-02"].status == newer
    # ... unless what is stored is over a minute old (the device's clock went back)
    back = online(device="cam-02", uptime_s=100, at=NOW - timedelta(hours=1))
    record_status(store, back, NOW + timedelta(seconds=102))
    assert latest_statuses(store)["cam-02"].status == back
    assert set(latest_statuses(store)) == {"cam-01", "cam-02"}
    for minutes in (-30, 5, 10):  # one before midnight, two after: "alerts today"
        event = make_event(fleet)
        store.add(event, sign_event(event, fleet.device_signing), NOW + timedelta(minutes=minutes))
    assert alerts_since(store, NOW) == {"cam-01": 2}
    store.close()


@pytest.fixture
def fleet_dir(tmp_path: Path) -> tuple[Listener, Path]:
    index = quickstart(tmp_path, devices=2, now=datetime.now(UTC))
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")
    link = MqttLink(MqttSettings("127.0.0.1", 1, Path(index["ca_cert"]), None, None))
    return Listener(store, Path(index["registry"]), link), tmp_path


def test_the_listener_keeps_only_verified_statuses_for_the_fleet_view(
    fleet_dir: tuple[Listener, Path],
) -> None:
    listener, root = fleet_dir
    keys = root / "devices" / "cam-01" / "state" / "keys" / "signing.key"
    key = load_signing_private(keys.read_bytes())
    genuine = sign_status(DeviceStatus(State.ONLINE, "cam-01", "demo", report(fps=7.0)), key)
    listener.handle_status("lfr/v1/demo/cam-02/status", genuine)  # wrong topic: refused
    assert latest_statuses(listener.store) == {}
    listener.handle_status("lfr/v1/demo/cam-01/status", genuine)
    now = datetime.now(UTC)
    rows = fleet_rows(Registry.load(listener.registry_path), listener.store, now)
    assert [(r.device_id, r.latest is not None) for r in rows] == [
        ("cam-01", True),
        ("cam-02", False),
    ]
    assert [assess(r, now, INTERVAL).connection for r in rows] == ["online", "never heard"]
    listener.handle_status(
        "lfr/v1/demo/cam-01/status", signed_offline_status("cam-01", "demo", key)
    )
    rows = fleet_rows(Registry.load(listener.registry_path), listener.store, now)
    assert assess(rows[0], now, INTERVAL).connection == "offline"
    listener.store.close()


# -- any verified status renders: nothing a device signs can break the page or inject --------


@FUZZ
@given(
    statuses,
    st.integers(-(10**6), 10**6),
    st.integers(-400, 400),
    st.sampled_from(["active", "revoked"]),
)
def test_any_status_renders_escaped(
    status: DeviceStatus, silent_s: int, cert_days: int, registered: str
) -> None:
    latest = LatestStatus(status, NOW - timedelta(hours=1), NOW - timedelta(seconds=silent_s))
    fleet_row = FleetRow(status.device_id, status.site, registered,
                         NOW + timedelta(days=cert_days), latest, 0)  # fmt: skip
    view = assess(fleet_row, NOW, INTERVAL)
    assert view.connection in {"online", "paused", "offline", "stale", "revoked"}
    html = render_fleet([fleet_row], NOW, INTERVAL)
    assert "<script" not in html.lower() and html.count("<tr") == 2


@FUZZ
@given(
    st.lists(st.text(max_size=40), max_size=30),
    st.lists(st.floats(0, 1e9, allow_nan=False), min_size=30, max_size=30),
    st.text(max_size=80),
)
def test_any_chart_is_well_formed_svg(labels: list[str], values: list[float], title: str) -> None:
    series = [Series("s", values[: len(labels)], "#000")]
    for chart in (bar_chart(title, labels, series), line_chart(title, labels, series)):
        ET.fromstring(chart)
