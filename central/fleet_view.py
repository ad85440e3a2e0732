"""The fleet view (issue 19): every registered device on one page, for ops.

Built only from the registry and each device's latest *verified* status (the listener keeps
it, :mod:`central.device_status`); nothing a device did not sign appears as its state. Pure:
:func:`assess` turns one device's facts into what ops should see, :func:`render_fleet` turns
the rows into HTML; the caller supplies ``now`` and reads the store.

Staleness: a device publishes a status every ``--status-interval`` seconds; when none has
arrived for :data:`STALE_INTERVALS` intervals the figures are shown greyed out as stale
(the broker publishes the device's signed last will only once its keepalive runs out).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from central.device_status import LatestStatus
from protocol.status import State

STALE_INTERVALS = 2.5  # one status missed, plus jitter, is not yet stale
CAMERA_DOWN_S = 10.0  # no frame for this long: the agent's own stall limit
OUTBOX_WARN = 0.5  # outbox this full: warn before the device's own alarm (0.8)
CLOCK_SKEW_S = 120.0  # device time this far from the listener's: clock unsynchronised
CERT_WARN_DAYS = 30
WATCHLIST_WARN_S = 24 * 3600


@dataclass(frozen=True)
class FleetRow:
    """One registered device and what is known of it."""

    device_id: str
    site: str
    registered: str  # the registry's status: active or revoked
    cert_not_after: datetime | None
    latest: LatestStatus | None
    alerts_today: int = 0


@dataclass(frozen=True)
class DeviceView:
    """What the page shows for one device (derived, no IO)."""

    connection: str  # online, paused, offline, stale, never heard, revoked
    since: datetime | None
    stale: bool
    alarms: list[str] = field(default_factory=list)


def _duration(seconds: float) -> str:
    seconds = abs(int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _alarm_kind(text: str) -> str:
    """The fleet view's name for an alarm the device raised (its text; see agent.status)."""
    lowered = text.lower()
    if "unsealed" in lowered:
        return "keys unsealed"
    if lowered.startswith("camera stalled"):
        return "camera down"
    if lowered.startswith("outbox") and "full" in lowered:
        return "outbox filling"
    return ""


def assess(row: FleetRow, now: datetime, status_interval: float) -> DeviceView:
    alarms: list[str] = []
    if row.cert_not_after is not None:
        left = (row.cert_not_after - now).total_seconds()
        if left <= 0:
            alarms.append("certificate expired")
        elif left < CERT_WARN_DAYS * 86400:
            alarms.append(f"certificate expires in {_duration(left)}")
    if row.registered != "active":
        return DeviceView("revoked", None, False, alarms)
    latest = row.latest
    if latest is None:
        return DeviceView("never heard", None, False, alarms)
    status = latest.status
    silent = (now - latest.received_at).total_seconds()
    stale = status.state != State.OFFLINE and silent > STALE_INTERVALS * status_interval
    report = status.report
    if report is not None and status.state != State.OFFLINE:
        raised = {_alarm_kind(a) for a in report.alarms}
        if "camera down" in raised or report.seconds_since_frame >= CAMERA_DOWN_S:
            alarms.append("camera down")
        outbox = report.events
        if "outbox filling" in raised or (
            outbox.outbox_max and outbox.events_queued >= OUTBOX_WARN * outbox.outbox_max
        ):
            alarms.append(f"outbox filling ({outbox.events_queued}/{outbox.outbox_max})")
        skew = (report.at - latest.received_at).total_seconds()
        if abs(skew) > CLOCK_SKEW_S:
            alarms.append(f"clock unsynchronised ({'+' if skew > 0 else '-'}{_duration(skew)})")
        if "keys unsealed" in raised:
            alarms.append("keys unsealed")
        alarms += [a[:200] for a in report.alarms if not _alarm_kind(a)]
        expires = report.watchlist.expires_at
        if expires is not None and 0 < (expires - now).total_seconds() < WATCHLIST_WARN_S:
            alarms.append(f"watchlist expires in {_duration((expires - now).total_seconds())}")
    if stale:
        alarms.insert(0, f"no status for {_duration(silent)}")
        return DeviceView("stale", latest.received_at, True, alarms)
    return DeviceView(status.state.value, latest.state_since, False, alarms)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _cells(row: FleetRow, view: DeviceView, now: datetime) -> list[str]:
    report = row.latest.status.report if row.latest is not None else None
    since = (
        f'<br><span class="since">since {_clock(view.since)} '
        f"({_duration((now - view.since).total_seconds())} ago)</span>"
        if view.since is not None
        else ""
    )
    cert = "-"
    if row.cert_not_after is not None:
        days = (row.cert_not_after - now).total_seconds() / 86400
        cert = "expired" if days <= 0 else f"{int(days)} days"
    cells = [
        f'<th scope="row">{_e(row.device_id)}<br><span class="site">{_e(row.site)}</span></th>',
        f'<td><span class="state {_e(view.connection.replace(" ", "-"))}">'
        f"{_e(view.connection)}</span>{since}</td>",
    ]
    if report is None:
        cells += ["<td>-</td>"] * 6
    else:
        wl = report.watchlist
        if wl.expires_at is None:
            expiry = "no expiry"
        elif wl.expires_at <= now:
            expiry = "expired"
        else:
            expiry = f"expires in {_duration((wl.expires_at - now).total_seconds())}"
        version = "none" if wl.version is None else f"v{wl.version}"
        mode = ["paused"] if row.latest and row.latest.status.state == State.PAUSED else []
        if "wiped" in wl.note:
            mode.append(wl.note)
        rejection = (
            "-"
            if wl.last_rejection is None
            else f"{_e(wl.last_rejection.what)}: {_e(wl.last_rejection.reason)}<br>"
            f'<span class="since">{_clock(wl.last_rejection.at)}</span>'
        )
        cells += [
            f"<td>{report.fps:.1f}</td>",
            f"<td>{report.frames.faces_detected}</td>",
            f'<td>{_e(version)} ({_e(wl.note)})<br><span class="since">{_e(expiry)}</span></td>',
            f"<td>{_e(', '.join(mode) or '-')}</td>",
            f"<td>{rejection}</td>",
            f"<td>{_e(report.software_version)}</td>",
        ]
    alarms = "".join(f"<li>{_e(a)}</li>" for a in view.alarms)
    return [
        *cells[:2],
        f"<td>{row.alerts_today}</td>",
        *cells[2:],
        f"<td>{_e(cert)}</td>",
        f"<td>{f'<ul>{alarms}</ul>' if alarms else '-'}</td>",
    ]


_HEAD = (
    '<tr><th scope="col">Device</th><th scope="col">Connection</th>'
    '<th scope="col">Alerts today</th><th scope="col">Frames/s</th>'
    '<th scope="col">Faces seen</th><th scope="col">Watchlist</th>'
    '<th scope="col">Paused / wiped</th><th scope="col">Last rejection</th>'
    '<th scope="col">Software</th><th scope="col">Certificate left</th>'
    '<th scope="col">Alarms</th></tr>'
)


def render_fleet(rows: Sequence[FleetRow], now: datetime, status_interval: float = 30.0) -> str:
    """The fleet view's body (HTML, no script): a summary line and one row per device."""
    views = [(row, assess(row, now, status_interval)) for row in rows]
    counts: dict[str, int] = {}
    for _, view in views:
        counts[view.connection] = counts.get(view.connection, 0) + 1
    alarmed = sum(bool(view.alarms) for _, view in views)
    summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    body = [
        "<h1>Fleet</h1>",
        f'<p class="stats">{len(rows)} devices: {_e(summary or "none registered")}; '
        f"{alarmed} with alarms. As of {_clock(now)}; figures older than "
        f"{_duration(STALE_INTERVALS * status_interval)} (status every "
        f"{_duration(status_interval)}) are shown as stale.</p>",
    ]
    if rows:
        trs = "".join(
            f'<tr class="{"alarm" if view.alarms else ""}{" stale" if view.stale else ""}" '
            f'data-device="{_e(row.device_id)}">{"".join(_cells(row, view, now))}</tr>'
            for row, view in views
        )
        # On a tablet the table scrolls sideways inside its box; the page itself does not.
        body.append(
            '<div class="scroll" role="region" aria-label="devices" tabindex="0">'
            f'<table class="fleet"><caption>Devices</caption>{_HEAD}{trs}</table></div>'
        )
    return "".join(body)


FLEET_STYLE = """.fleet td,.fleet th{vertical-align:top}.since,.site{color:#555;font-size:.85rem}
.state{font-weight:600;padding:.1rem .4rem;border-radius:.3rem}.online{background:#d7f5dd}
.paused{background:#fff1c2}.offline,.revoked{background:#f8d0d0}.stale,.never-heard{
background:#e4e4e4}tr.stale td{color:#666}tr.alarm ul{color:#900;margin:0;padding-left:1rem}
caption{text-align:left;font-weight:600}.scroll{overflow-x:auto}"""
