"""The pilot's assessment from the alert store: report, export, retention.

- ``report``: per site and day, faces processed (from the devices' privacy counters), alerts,
  outcomes, false alerts per 1,000 faces, time to adjudication; Markdown + PNG charts.
- ``export``: alerts and outcomes as CSV or JSON, probe images only when asked.
- ``purge``: alerts and counters past retention are deleted after their day's numbers are
  folded into ``daily_stats``, so the report keeps only aggregates for those days.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central.store import AlertStore
from lfrkit.files import atomic_write
from protocol.encoding import format_time, parse_time
from protocol.event import open_probe, parse_stored_event
from protocol.keys import HpkePrivateKey


@dataclass
class Day:
    faces: int = 0
    alerts: int = 0
    confirmed: int = 0
    false_alerts: int = 0
    no_action: int = 0
    adjudicated: int = 0
    adjudication_seconds: float = 0.0

    @property
    def false_per_1000_faces(self) -> float | None:
        return 1000 * self.false_alerts / self.faces if self.faces else None


def _faces_per_day(store: AlertStore) -> dict[tuple[str, str], int]:
    """Faces detected per (site, day): sum of counter increases between status snapshots
    (a smaller uptime means the agent restarted and its counters began again at 0)."""
    rows = store.rows(
        "SELECT device_id, site, at, uptime_s, faces_detected FROM "
        "status_snapshots ORDER BY device_id, at"
    )
    out: dict[tuple[str, str], int] = defaultdict(int)
    last: dict[str, tuple[int, int]] = {}
    for device, site, at, uptime, faces in rows:
        previous = last.get(device)
        if previous is None or uptime < previous[0] or faces < previous[1]:
            delta = int(faces) if previous is not None else 0
        else:
            delta = int(faces) - previous[1]
        last[device] = (int(uptime), int(faces))
        out[(str(site), str(at)[:10])] += delta
    return out


def _live_days(store: AlertStore) -> dict[tuple[str, str], Day]:
    days: dict[tuple[str, str], Day] = defaultdict(Day)
    for (site, day), faces in _faces_per_day(store).items():
        days[(site, day)].faces += faces
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
        "SELECT site, day, faces, alerts, confirmed, false_alerts, "
        "no_action, adjudicated, adjudication_seconds FROM daily_stats"
    ):
        day = days[(str(row[0]), str(row[1]))]
        day.faces += int(row[2])
        day.alerts += int(row[3])
        day.confirmed += int(row[4])
        day.false_alerts += int(row[5])
        day.no_action += int(row[6])
        day.adjudicated += int(row[7])
        day.adjudication_seconds += float(row[8])
    return dict(sorted(days.items()))


def _charts(days: dict[tuple[str, str], Day], out: Path) -> list[str]:
    import matplotlib

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
    ax.bar(labels, [v.faces for v in values], color="#468")
    ax.set_ylabel("faces processed")
    ax2 = ax.twinx()
    ax2.plot(labels, [v.false_per_1000_faces or 0 for v in values], "o-", color="#c33")
    ax2.set_ylabel("false alerts per 1,000 faces", color="#c33")
    ax.set_title("Faces processed and false alert rate")
    fig.tight_layout()
    fig.savefig(out / "pilot_faces.png", dpi=110)
    plt.close(fig)
    return ["pilot_alerts.png", "pilot_faces.png"]


def report(store: AlertStore, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    days = collect(store)
    lines = [
        "# Pilot assessment",
        "",
        f"Generated {format_time(datetime.now(UTC).replace(microsecond=0))} from the "
        "alert store. Faces are counted by the devices and reported as numbers only.",
        "",
        "| site | day | faces | alerts | confirmed | false alerts | no action | awaiting |"
        " false alerts / 1,000 faces | mean time to adjudication |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    total = Day()
    for (site, day), v in days.items():
        rate = f"{v.false_per_1000_faces:.2f}" if v.false_per_1000_faces is not None else "-"
        wait = f"{v.adjudication_seconds / v.adjudicated / 60:.1f} min" if v.adjudicated else "-"
        lines.append(
            f"| {site} | {day} | {v.faces} | {v.alerts} | {v.confirmed} | "
            f"{v.false_alerts} | {v.no_action} | {v.alerts - v.adjudicated} | {rate} "
            f"| {wait} |"
        )
        for name in ("faces", "alerts", "confirmed", "false_alerts", "no_action", "adjudicated"):
            setattr(total, name, getattr(total, name) + getattr(v, name))
    precision = f"{100 * total.confirmed / total.adjudicated:.1f} %" if total.adjudicated else "-"
    lines += [
        "",
        f"In all: {total.faces} faces, {total.alerts} alerts, {total.confirmed} "
        f"confirmed, {total.false_alerts} false alerts; share of adjudicated alerts "
        f"confirmed: {precision}.",
        "",
    ]
    if days:
        lines += [f"![{name}]({name})" for name in _charts(days, out)]
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
            "no_action, adjudicated, adjudication_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (site, day) DO UPDATE SET faces = daily_stats.faces + "
            "excluded.faces, alerts = daily_stats.alerts + excluded.alerts, confirmed = "
            "daily_stats.confirmed + excluded.confirmed, false_alerts = "
            "daily_stats.false_alerts + excluded.false_alerts, no_action = "
            "daily_stats.no_action + excluded.no_action, adjudicated = "
            "daily_stats.adjudicated + excluded.adjudicated, adjudication_seconds = "
            "daily_stats.adjudication_seconds + excluded.adjudication_seconds",
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
