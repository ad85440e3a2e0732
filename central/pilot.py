"""The pilot's assessment from the alert store: report, export, retention.

- ``report``: per site and day, people seen (the devices' face tracks: one per person per
  appearance in view) and faces processed (from the devices' privacy counters), alerts,
  outcomes, false alerts per 1,000 people, alerts per camera-hour, the devices' median time to
  alert, time to adjudication; Markdown, and PNG charts when matplotlib is installed
  (``pip install 'lfr-edge[charts]'``; without it the report says so and keeps the tables).
- ``export``: alerts and outcomes as CSV or JSON, probe images only when asked.
- ``purge``: alerts and counters past retention are deleted after their day's numbers are
  folded into ``daily_stats``, so the report keeps only aggregates for those days.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central.store import AlertStore
from lfrkit.files import atomic_write
from protocol.encoding import format_time, parse_time
from protocol.event import open_probe, parse_stored_event
from protocol.keys import HpkePrivateKey

log = logging.getLogger(__name__)


@dataclass
class Day:
    faces: int = 0
    people: int = 0  # face tracks started: people seen, once per appearance
    people_partial: bool = False  # a device did not report its tracks: people undercounted
    device_seconds: float = 0.0  # camera time covered by status snapshots
    time_to_alert: list[float] = field(default_factory=list)  # device-reported medians
    alerts: int = 0
    confirmed: int = 0
    false_alerts: int = 0
    no_action: int = 0
    adjudicated: int = 0
    adjudication_seconds: float = 0.0

    @property
    def false_per_1000_faces(self) -> float | None:
        return 1000 * self.false_alerts / self.faces if self.faces else None

    @property
    def false_per_1000_people(self) -> float | None:
        return 1000 * self.false_alerts / self.people if self.people else None

    @property
    def alerts_per_hour(self) -> float | None:
        return 3600 * self.alerts / self.device_seconds if self.device_seconds else None

    @property
    def median_time_to_alert(self) -> float | None:
        return statistics.median(self.time_to_alert) if self.time_to_alert else None


def _increase(previous: int | None, now: int, restarted: bool) -> int:
    """A counter's increase since the previous snapshot: after a restart it began again at 0;
    the first snapshot of a device counts nothing (what came before it is unknown)."""
    if previous is None:
        return 0
    return now if restarted or now < previous else now - previous


def _counters(store: AlertStore, days: dict[tuple[str, str], Day]) -> None:
    """Faces, people and camera time per (site, day) from the increases between a device's
    status snapshots (a smaller uptime means the agent restarted)."""
    rows = store.rows(
        "SELECT device_id, site, at, uptime_s, faces_detected, tracks_started, "
        "time_to_alert_s FROM status_snapshots ORDER BY device_id, at"
    )
    last: dict[str, tuple[int | None, int | None, int | None]] = {}
    for device, site, at, uptime, faces, tracks, timed in rows:
        day = days[(str(site), str(at)[:10])]
        previous = last.get(device)
        before_uptime, before_faces, before_tracks = previous or (None, None, None)
        restarted = before_uptime is not None and int(uptime) < before_uptime
        day.faces += _increase(before_faces, int(faces), restarted)
        day.device_seconds += _increase(before_uptime, int(uptime), restarted)
        if tracks is None:
            day.people_partial = True
        else:
            if previous is not None and before_tracks is None and restarted:
                before_tracks = 0  # upgraded to a version that counts: it began at 0
            day.people += _increase(before_tracks, int(tracks), restarted)
        if timed is not None:
            day.time_to_alert.append(float(timed))
        last[device] = (int(uptime), int(faces), None if tracks is None else int(tracks))


def _live_days(store: AlertStore) -> dict[tuple[str, str], Day]:
    days: dict[tuple[str, str], Day] = defaultdict(Day)
    _counters(store, days)
    first_decision = dict(
        store.rows("SELECT event_id, MIN(decided_at) FROM adjudications GROUP BY event_id")
    )
    for alert in store.recent(limit=10_000_000):
        record = days[(alert.site, alert.received_at[:10])]
        record.alerts += 1
        if alert.outcome is None:
            continue
        record.adjudicated += 1
        record.confirmed += alert.outcome == "confirmed"
        record.false_alerts += alert.outcome == "false_alert"
        record.no_action += alert.outcome == "no_action"
        wait = (
            parse_time(first_decision[alert.event_id], "decided_at")
            - parse_time(alert.received_at, "received_at")
        ).total_seconds()
        record.adjudication_seconds += wait
    return days


def collect(store: AlertStore) -> dict[tuple[str, str], Day]:
    days = _live_days(store)
    for row in store.rows(
        "SELECT site, day, faces, alerts, confirmed, false_alerts, no_action, adjudicated, "
        "adjudication_seconds, people, device_seconds, time_to_alert_s FROM daily_stats"
    ):
        day = days[(str(row[0]), str(row[1]))]
        day.faces += int(row[2])
        day.alerts += int(row[3])
        day.confirmed += int(row[4])
        day.false_alerts += int(row[5])
        day.no_action += int(row[6])
        day.adjudicated += int(row[7])
        day.adjudication_seconds += float(row[8])
        day.people += int(row[9])
        day.device_seconds += float(row[10])
        if row[11] is not None:
            day.time_to_alert.append(float(row[11]))
    return dict(sorted(days.items()))


CHARTS_MISSING = (
    "Charts left out: matplotlib is not installed (pip install 'lfr-edge[charts]' on this "
    "machine to draw them); the tables above are complete."
)


def _charts(days: dict[tuple[str, str], Day], out: Path) -> list[str]:
    """The PNG charts, or [] when matplotlib is missing (a plain install of the central
    tools: the report is the tables; the charts are an extra)."""
    try:
        import matplotlib
    except ImportError:
        log.warning("pilot report: matplotlib missing, charts left out")
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{site}\n{day}" for site, day in days]
    values = list(days.values())
    fig, ax = plt.subplots(figsize=(max(5, len(labels) * 1.2), 4))
    bottom = [0] * len(values)
    for name, key, colour in (
        ("confirmed", "confirmed", "#2a7"),
        ("false alert", "false_alerts", "#c33"),
        ("no action", "no_action", "#999"),
    ):
        heights = [getattr(v, key) for v in values]
        ax.bar(labels, heights, bottom=bottom, label=name, color=colour)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    pending = [v.alerts - v.adjudicated for v in values]
    ax.bar(labels, pending, bottom=bottom, label="awaiting", color="#fc3")
    ax.set_ylabel("alerts")
    ax.set_title("Alerts per site and day, by outcome")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "pilot_alerts.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(max(5, len(labels) * 1.2), 4))
    ax.bar(labels, [v.people for v in values], color="#468")
    ax.set_ylabel("people seen")
    ax2 = ax.twinx()
    ax2.plot(labels, [v.false_per_1000_people or 0 for v in values], "o-", color="#c33")
    ax2.set_ylabel("false alerts per 1,000 people", color="#c33")
    ax.set_title("People seen and false alert rate")
    fig.tight_layout()
    fig.savefig(out / "pilot_people.png", dpi=110)
    plt.close(fig)
    return ["pilot_alerts.png", "pilot_people.png"]


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def report(store: AlertStore, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    days = collect(store)
    lines = [
        "# Pilot assessment",
        "",
        f"Generated {format_time(datetime.now(UTC).replace(microsecond=0))} from the "
        "alert store. People are counted by the devices as face tracks (one per person per "
        "appearance in view; a person who leaves and comes back counts again), faces as "
        "detections; both arrive as numbers only. Rates per person are what an officer and "
        "a passer-by experience: per detection they would be smaller by about frames per "
        "second x seconds in view. Alerts per hour are per camera-hour of status reported; "
        "time to alert is the devices' median from a face reaching the minimum size to its "
        "event queued.",
        "",
        "| site | day | people seen | faces | alerts | confirmed | false alerts | no action |"
        " awaiting | false alerts / 1,000 people | alerts / camera-hour | time to alert |"
        " mean time to adjudication |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    total = Day()
    for (site, day), v in days.items():
        people = f"{v.people}{'*' if v.people_partial else ''}"
        wait = f"{v.adjudication_seconds / v.adjudicated / 60:.1f} min" if v.adjudicated else "-"
        tta = v.median_time_to_alert
        lines.append(
            f"| {site} | {day} | {people} | {v.faces} | {v.alerts} | {v.confirmed} | "
            f"{v.false_alerts} | {v.no_action} | {v.alerts - v.adjudicated} | "
            f"{_number(v.false_per_1000_people, '.2f')} | {_number(v.alerts_per_hour, '.2f')} "
            f"| {'-' if tta is None else f'{tta:.1f} s'} | {wait} |"
        )
        for name in (
            "faces",
            "people",
            "device_seconds",
            "alerts",
            "confirmed",
            "false_alerts",
            "no_action",
            "adjudicated",
        ):
            setattr(total, name, getattr(total, name) + getattr(v, name))
        total.people_partial |= v.people_partial
        total.time_to_alert += v.time_to_alert
    precision = f"{100 * total.confirmed / total.adjudicated:.1f} %" if total.adjudicated else "-"
    lines += [
        "",
        f"In all: {total.people} people seen ({total.faces} faces), {total.alerts} alerts, "
        f"{total.confirmed} confirmed, {total.false_alerts} false alerts, "
        f"{_number(total.false_per_1000_people, '.2f')} false alerts per 1,000 people, "
        f"{_number(total.alerts_per_hour, '.2f')} alerts per camera-hour; share of "
        f"adjudicated alerts confirmed: {precision}.",
        "",
    ]
    if total.people_partial:
        lines += [
            "\\* A device on this day does not report people seen (software before "
            "`tracks_started`): people are undercounted and the rate per person overstated.",
            "",
        ]
    if days:
        charts = _charts(days, out)
        lines += [f"![{name}]({name})" for name in charts] if charts else [CHARTS_MISSING]
    path = out / "pilot.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def export(store: AlertStore, since: datetime, fmt: str, key: HpkePrivateKey | None = None) -> str:
    since_text = format_time(since)
    rows: list[dict[str, Any]] = []
    for alert in store.recent(limit=10_000_000):
        if alert.received_at < since_text:
            continue
        row: dict[str, Any] = {
            "event_id": alert.event_id,
            "site": alert.site,
            "device_id": alert.device_id,
            "deployment_id": alert.deployment_id,
            "subject_ref": alert.subject_ref,
            "category": alert.category,
            "score": alert.score,
            "threshold": alert.threshold,
            "observed_at": alert.observed_at,
            "received_at": alert.received_at,
            "outcome": alert.outcome,
            "officer": alert.officer,
            "decided_at": alert.decided_at,
        }
        if key is not None:
            jpeg = open_probe(parse_stored_event(alert.token), key)
            row["probe_jpeg_base64"] = base64.b64encode(jpeg).decode("ascii")
        rows.append(row)
    rows.reverse()  # oldest first
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    buffer = io.StringIO()
    names = list(rows[0]) if rows else ["event_id"]
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    writer.writerows({k: neutralise_cell(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP
    CSV injection): officer names and references come from people and devices."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def purge(store: AlertStore, older_than: timedelta, now: datetime) -> tuple[int, int]:
    """Fold whole days before the cut-off into daily_stats, then delete their rows.

    Returns (alerts deleted, status snapshots deleted)."""
    cutoff_day = (now - older_than).strftime("%Y-%m-%d")
    for (site, day), v in _live_days(store).items():
        if day >= cutoff_day:
            continue
        store.execute(
            "INSERT INTO daily_stats (site, day, faces, alerts, confirmed, false_alerts, "
            "no_action, adjudicated, adjudication_seconds, people, device_seconds, "
            "time_to_alert_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (site, day) DO UPDATE SET faces = daily_stats.faces + "
            "excluded.faces, alerts = daily_stats.alerts + excluded.alerts, confirmed = "
            "daily_stats.confirmed + excluded.confirmed, false_alerts = "
            "daily_stats.false_alerts + excluded.false_alerts, no_action = "
            "daily_stats.no_action + excluded.no_action, adjudicated = "
            "daily_stats.adjudicated + excluded.adjudicated, adjudication_seconds = "
            "daily_stats.adjudication_seconds + excluded.adjudication_seconds, people = "
            "daily_stats.people + excluded.people, device_seconds = daily_stats.device_seconds "
            "+ excluded.device_seconds, time_to_alert_s = COALESCE(excluded.time_to_alert_s, "
            "daily_stats.time_to_alert_s)",
            (
                site,
                day,
                v.faces,
                v.alerts,
                v.confirmed,
                v.false_alerts,
                v.no_action,
                v.adjudicated,
                v.adjudication_seconds,
                v.people,
                v.device_seconds,
                v.median_time_to_alert,
            ),
        )
    store.execute(
        "DELETE FROM adjudications WHERE event_id IN (SELECT event_id FROM alerts "
        "WHERE received_at < ?)",
        (cutoff_day,),
    )
    alerts = store.execute("DELETE FROM alerts WHERE received_at < ?", (cutoff_day,))
    snapshots = store.execute("DELETE FROM status_snapshots WHERE at < ?", (cutoff_day,))
    return alerts, snapshots


def since_arg(text: str) -> datetime:
    """``2026-11-01`` or an RFC 3339 time."""
    if len(text) == 10:
        text += "T00:00:00Z"
    return parse_time(text, "--since")


def write(path: Path | None, text: str) -> None:
    """Standard output, or a file only its owner can read (it names officers and subjects,
    and with --with-images holds faces), written atomically whatever the umask."""
    if path is None:
        print(text, end="")
    else:
        atomic_write(path, text.encode("utf-8"), 0o600)
