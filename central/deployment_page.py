"""The deployment page (issue 19): the pilot report of ``lfr-alerts report`` as a web page.

Pure: :func:`render_deployment` takes the one :class:`~central.pilot.PilotReport` that the CLI
and the /deployment.md and /deployment.csv downloads also use, and returns HTML with the
tables and inline SVG charts (:mod:`central.svg_charts`; no script, nothing fetched).
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from central.pilot import Day, PilotReport
from central.pilot_text import FIGURES, HELD_ONLY, INTRO, PARTIAL, figures, summary
from central.svg_charts import Series, bar_chart, line_chart
from protocol.encoding import format_time

# Colour-blind-safe (Okabe-Ito) and distinguishable in grey: outcome colours everywhere.
OUTCOME_COLOURS = (
    ("confirmed", "confirmed", "#009E73"),
    ("false alert", "false_alerts", "#D55E00"),
    ("no action", "no_action", "#56B4E9"),
)
AWAITING_COLOUR = "#E69F00"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _outcomes(title: str, groups: Mapping[str, Day]) -> str:
    labels = list(groups)
    values = list(groups.values())
    series = [
        Series(name, [float(getattr(v, key)) for v in values], colour)
        for name, key, colour in OUTCOME_COLOURS
    ]
    series.append(
        Series("awaiting", [float(v.alerts - v.adjudicated) for v in values], AWAITING_COLOUR)
    )
    return bar_chart(title, labels, series)


def _table(
    caption: str, keys: list[str], rows: Mapping[tuple[str, str], Day] | Mapping[tuple[str], Day]
) -> str:
    head = "".join(f'<th scope="col">{_e(k)}</th>' for k in keys + FIGURES)
    body = "".join(
        "<tr>"
        + "".join(f'<th scope="row">{_e(k)}</th>' for k in key)
        + "".join(f"<td>{_e(cell)}</td>" for cell in figures(v))
        + "</tr>"
        for key, v in rows.items()
    )
    return (
        f'<div class="scroll" role="region" aria-label="{_e(caption)}" tabindex="0">'
        f"<table><caption>{_e(caption)}</caption><tr>{head}</tr>{body}</table></div>"
    )


def render_deployment(report: PilotReport) -> str:
    """The page body: summary, charts, then the same tables as pilot.md."""
    days = {f"{site} {day}": v for (site, day), v in report.days.items()}
    hours = {f"{h}:00": v for h, v in report.hours.items()}
    by_hour = dict(report.hours)  # charts label hours "00".."23" (24 labels fit no axis)
    parts = [
        "<h1>Deployment</h1>",
        f'<p class="stats">{_e(summary(report))}</p>',
        '<p>Download the same report: <a href="/deployment.md" download>Markdown</a>, '
        '<a href="/deployment.csv" download>CSV</a>.</p>',
    ]
    if report.total.people_partial:
        parts.append(f"<p>{_e(PARTIAL.replace(chr(92), ''))}</p>")
    if not report.days:
        parts.append("<p>No alerts or device figures stored yet.</p>")
        return "".join(parts)
    rate = [
        float("nan") if v.false_per_1000_people is None else v.false_per_1000_people
        for v in report.days.values()
    ]
    parts += [
        '<div class="charts">',
        _outcomes("Alerts per site and day, by outcome", days),
        line_chart(
            "False alerts per 1,000 people seen, per site and day",
            list(days),
            [Series("false alerts / 1,000 people", rate, "#D55E00")],
        ),
        _outcomes("Alerts per camera, by outcome", report.cameras),
        _outcomes("Alerts per hour of the day (UTC), by outcome", by_hour),
        bar_chart(
            "People seen per hour of the day (UTC)",
            list(by_hour),
            [Series("people seen", [float(v.people) for v in by_hour.values()], "#0072B2")],
        ),
        "</div>",
        _table("Per site and day", ["site", "day"], dict(report.days)),
        _table("Per camera", ["camera"], {(c,): v for c, v in report.cameras.items()}),
        _table("Per hour of the day (UTC)", ["hour"], {(h,): v for h, v in hours.items()}),
        f"<p>{_e(HELD_ONLY)}</p>",
        f"<p>{_e(INTRO)} Generated {_e(format_time(report.generated_at))}.</p>",
    ]
    return "".join(parts)


DEPLOYMENT_STYLE = """.charts{display:flex;flex-wrap:wrap;gap:1rem}
.chart{max-width:100%;height:auto;border:1px solid #ddd}
caption{text-align:left;font-weight:600;margin-top:1rem}.scroll{overflow-x:auto}"""
