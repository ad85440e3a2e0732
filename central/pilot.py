"""The pilot's assessment from the alert store: report, export, retention.

- ``collect``: per site and day, per camera and per hour of the day, and in all: people seen
  (the devices' face tracks: one per person per appearance in view) and faces processed (from
  the devices' privacy counters), alerts, outcomes, false alerts per 1,000 people, alerts per
  camera-hour, the devices' median time to alert, time to adjudication. One computation for
  ``lfr-alerts report``, the console's /deployment page and its downloads
  (:mod:`central.pilot_text` writes it as Markdown and CSV, :mod:`central.pilot_files` as
  ``pilot.md`` with PNG charts).
- ``report`` (in :mod:`central.pilot_files`): pilot.md, and PNG charts when matplotlib is
  installed (``pip install 'lfr-edge[charts]'``; without it the report keeps the tables).
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
    waits: list[float] = field(default_factory=list)  # seconds to adjudicate (live alerts)

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

    @property
    def mean_adjudication_s(self) -> float | None:
        return self.adjudication_seconds / self.adjudicated if self.adjudicated else None

    @property
    def median_adjudication_s(self) -> float | None:
        return statistics.median(self.waits) if self.waits else None

    def add(self, other: Day) -> None:
        """Fold ``other`` into this one (totals)."""
        for name in (
            "faces",
            "people",
            "device_seconds",
            "alerts",
            "confirmed",
            "false_alerts",
            "no_action",
            "adjudicated",
            "adjudication_seconds",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.people_partial |= other.people_partial
        self.time_to_alert += other.time_to_alert
        self.waits += other.waits


@dataclass
class PilotReport:
    """One computation for the CLI's pilot.md, the deployment page and its downloads:
    per site and day (purged days included, as aggregates), per camera and per hour of the
    day (UTC; alerts still held only: a purged day keeps no camera or hour), and in all."""

    generated_at: datetime
    days: dict[tuple[str, str], Day]
    cameras: dict[str, Day]
    hours: dict[str, Day]
    total: Day


def _increase(previous: int | None, now: int, restarted: bool) -> int:
    """A counter's increase since the previous snapshot: after a restart it began again at 0;
    the first snapshot of a device counts nothing (what came before it is unknown)."""
    if previous is None:
        return 0
    return now if restarted or now < previous else now - previous


def _counters(
    store: AlertStore,
    days: dict[tuple[str, str], Day],
    cameras: dict[str, Day] | None = None,
    hours: dict[str, Day] | None = None,
) -> None:
    """Faces, people and camera time per (site, day), per camera and per hour from the
    increases between a device's status snapshots (a smaller uptime means the agent
    restarted)."""
    rows = store.rows(
        "SELECT device_id, site, at, uptime_s, faces_detected, tracks_started, "
        "time_to_alert_s FROM status_snapshots ORDER BY device_id, at"
    )
    last: dict[str, tuple[int | None, int | None, int | None]] = {}
    for device, site, at, uptime, faces, tracks, timed in rows:
        records = [days[(str(site), str(at)[:10])]]
        if cameras is not None:
            records.append(cameras[str(device)])
        if hours is not None:
            records.append(hours[str(at)[11:13]])
        previous = last.get(device)
        before_uptime, before_faces, before_tracks = previous or (None, None, None)
        restarted = before_uptime is not None and int(uptime) < before_uptime
        if tracks is not None and previous is not None and before_tracks is None and restarted:
            before_tracks = 0  # upgraded to a version that counts: it began at 0
        for day in records:
            day.faces += _increase(before_faces, int(faces), restarted)
            day.device_seconds += _increase(before_uptime, int(uptime), restarted)
            if tracks is None:
                day.people_partial = True
            else:
                day.people += _increase(before_tracks, int(tracks), restarted)
            if timed is not None:
                day.time_to_alert.append(float(timed))
        last[device] = (int(uptime), int(faces), None if tracks is None else int(tracks))


def _live(
    store: AlertStore,
) -> tuple[dict[tuple[str, str], Day], dict[str, Day], dict[str, Day]]:
    days: dict[tuple[str, str], Day] = defaultdict(Day)
    cameras: dict[str, Day] = defaultdict(Day)
    hours: dict[str, Day] = defaultdict(Day)
    _counters(store, days, cameras, hours)
    # One pass, no probes (the tokens are most of the bytes) and no per-alert subquery: the
    # latest decision and the first decision time of each alert come from one GROUP BY.
    rows = store.rows(
        "SELECT a.site, a.device_id, a.received_at, d.outcome, g.first_decided FROM alerts a "
        "LEFT JOIN (SELECT event_id, MAX(id) AS last_id, MIN(decided_at) AS first_decided "
        "FROM adjudications GROUP BY event_id) g ON g.event_id = a.event_id "
        "LEFT JOIN adjudications d ON d.id = g.last_id"
    )
    for site, device, received_at, outcome, first_decided in rows:
        received = str(received_at)
        records = (days[(str(site), received[:10])], cameras[str(device)], hours[received[11:13]])
        wait = None
        if outcome is not None:
            wait = (
                parse_time(str(first_decided), "decided_at") - parse_time(received, "received_at")
            ).total_seconds()
        for record in records:
            record.alerts += 1
            if wait is None:
                continue
            record.adjudicated += 1
            record.confirmed += outcome == "confirmed"
            record.false_alerts += outcome == "false_alert"
            record.no_action += outcome == "no_action"
            record.adjudication_seconds += wait
            record.waits.append(wait)
    return days, cameras, hours


def _live_days(store: AlertStore) -> dict[tuple[str, str], Day]:
    return _live(store)[0]


def collect(store: AlertStore, now: datetime | None = None) -> PilotReport:
    days, cameras, hours = _live(store)
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
    total = Day()
    for day in days.values():
        total.add(day)
    return PilotReport(
        generated_at=(now or datetime.now(UTC)).replace(microsecond=0),
        days=dict(sorted(days.items())),
        cameras=dict(sorted(cameras.items())),
        hours=dict(sorted(hours.items())),
        total=total,
    )


CHARTS_MISSING = (
    "Charts left out: matplotlib is not installed (pip install 'lfr-edge[charts]' on this "
    "machine to draw them); the tables above are complete."
)


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
