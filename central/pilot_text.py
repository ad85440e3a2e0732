"""The pilot report as text: Markdown (``lfr-alerts report``, /deployment.md) and CSV
(/deployment.csv), both from one :class:`~central.pilot.PilotReport`, so the CLI, the page and
the downloads can never disagree."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from central.pilot import CHARTS_MISSING, Day, PilotReport, neutralise_cell
from protocol.encoding import format_time

INTRO = (
    "People are counted by the devices as face tracks (one per person per appearance in "
    "view; a person who leaves and comes back counts again), faces as detections; both "
    "arrive as numbers only. Rates per person are what an officer and a passer-by "
    "experience: per detection they would be smaller by about frames per second x seconds "
    "in view. Alerts per hour are per camera-hour of status reported; time to alert is the "
    "devices' median from a face reaching the minimum size to its event queued."
)
PARTIAL = (
    "\\* A device on this day does not report people seen (software before "
    "`tracks_started`): people are undercounted and the rate per person overstated."
)
HELD_ONLY = (
    "Per camera and per hour of the day (UTC), and the median time to adjudicate, cover the "
    "alerts and status still held: a purged day keeps only its per-site totals."
)


def number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _people(v: Day) -> str:
    return f"{v.people}{'*' if v.people_partial else ''}"


def figures(v: Day) -> list[str]:
    """The columns shared by every table, after its key columns."""
    tta = v.median_time_to_alert
    return [
        _people(v),
        str(v.faces),
        str(v.alerts),
        str(v.confirmed),
        str(v.false_alerts),
        str(v.no_action),
        str(v.alerts - v.adjudicated),
        number(v.false_per_1000_people, ".2f"),
        number(v.alerts_per_hour, ".2f"),
        "-" if tta is None else f"{tta:.1f} s",
        minutes(v.mean_adjudication_s),
    ]


FIGURES = [
    "people seen",
    "faces",
    "alerts",
    "confirmed",
    "false alerts",
    "no action",
    "awaiting",
    "false alerts / 1,000 people",
    "alerts / camera-hour",
    "time to alert",
    "mean time to adjudication",
]


def _table(keys: list[str], rows: Iterable[tuple[list[str], Day]]) -> list[str]:
    head = keys + FIGURES
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    lines += [f"| {' | '.join(key + figures(v))} |" for key, v in rows]
    return lines


def summary(report: PilotReport) -> str:
    total = report.total
    precision = f"{100 * total.confirmed / total.adjudicated:.1f} %" if total.adjudicated else "-"
    return (
        f"In all: {total.people} people seen ({total.faces} faces), {total.alerts} alerts, "
        f"{total.confirmed} confirmed, {total.false_alerts} false alerts, "
        f"{number(total.false_per_1000_people, '.2f')} false alerts per 1,000 people, "
        f"{number(total.alerts_per_hour, '.2f')} alerts per camera-hour; share of "
        f"adjudicated alerts confirmed: {precision}; time to adjudicate: mean "
        f"{minutes(total.mean_adjudication_s)}, median {minutes(total.median_adjudication_s)}."
    )


def markdown(report: PilotReport, charts: list[str] | None = None) -> str:
    """The report; ``charts``: image file names to link ([]: they could not be drawn, the
    note says why; None: no chart section, as in the page's download)."""
    lines = [
        "# Pilot assessment",
        "",
        f"Generated {format_time(report.generated_at)} from the alert store. {INTRO}",
        "",
        *_table(["site", "day"], (([s, d], v) for (s, d), v in report.days.items())),
        "",
        summary(report),
        "",
    ]
    if report.total.people_partial:
        lines += [PARTIAL, ""]
    if report.cameras:
        lines += [
            "## Per camera",
            "",
            *_table(["camera"], (([c], v) for c, v in report.cameras.items())),
            "",
        ]
    if report.hours:
        lines += [
            "## Per hour of the day (UTC)",
            "",
            *_table(["hour"], (([f"{h}:00"], v) for h, v in report.hours.items())),
            "",
            HELD_ONLY,
            "",
        ]
    if report.days and charts is not None:
        lines += [f"![{name}]({name})" for name in charts] if charts else [CHARTS_MISSING]
    return "\n".join(lines) + "\n"


CSV_FIELDS = [
    "table",
    "site",
    "day",
    "camera",
    "hour",
    "people",
    "people_partial",
    "faces",
    "alerts",
    "confirmed",
    "false_alerts",
    "no_action",
    "awaiting",
    "false_per_1000_people",
    "alerts_per_camera_hour",
    "time_to_alert_s",
    "mean_adjudication_s",
    "median_adjudication_s",
]


def _csv_row(table: str, keys: dict[str, str], v: Day) -> dict[str, Any]:
    def rounded(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    return {
        "table": table,
        **keys,
        "people": v.people,
        "people_partial": int(v.people_partial),
        "faces": v.faces,
        "alerts": v.alerts,
        "confirmed": v.confirmed,
        "false_alerts": v.false_alerts,
        "no_action": v.no_action,
        "awaiting": v.alerts - v.adjudicated,
        "false_per_1000_people": rounded(v.false_per_1000_people),
        "alerts_per_camera_hour": rounded(v.alerts_per_hour),
        "time_to_alert_s": rounded(v.median_time_to_alert),
        "mean_adjudication_s": rounded(v.mean_adjudication_s),
        "median_adjudication_s": rounded(v.median_adjudication_s),
    }


def csv_text(report: PilotReport) -> str:
    """One CSV of every table (column ``table``: day, camera, hour, total); text cells a
    spreadsheet would run as formulas are neutralised (site and camera names come from
    the registry, but a spreadsheet should never be the weak point)."""
    rows = [_csv_row("day", {"site": s, "day": d}, v) for (s, d), v in report.days.items()]
    rows += [_csv_row("camera", {"camera": c}, v) for c, v in report.cameras.items()]
    rows += [_csv_row("hour", {"hour": h}, v) for h, v in report.hours.items()]
    rows.append(_csv_row("total", {}, report.total))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: neutralise_cell(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()
