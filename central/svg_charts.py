"""Inline SVG charts drawn on the server: no JavaScript, no chart library, no network.

The control room's network has no internet and the page's Content-Security-Policy allows no
script, so a chart is a string of SVG put straight into the HTML. Each chart carries a
``<title>`` and an ``aria-label`` (screen readers), its numbers as text on hover (``<title>``
per bar or point), and a legend; the tables beside it hold the same numbers exactly.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 28, 56


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str  # a CSS colour, chosen by the caller for contrast


# Characters XML 1.0 does not allow at all (escaping cannot help): dropped from labels.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _e(value: object) -> str:
    return html.escape(_NOT_XML.sub("", str(value)), quote=True)


def _scale(top: float) -> tuple[float, list[float]]:
    """A round upper bound at or above ``top`` and its five gridlines (0, 1/4 ... 4/4): the
    gridline step is 1, 2, 2.5 or 5 times a power of ten."""
    if not top > 1e-9:  # nothing (or too little to draw): a 0..1 axis
        return 1.0, [0.0, 0.25, 0.5, 0.75, 1.0]
    magnitude = 10.0 ** math.floor(math.log10(top / 4))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if 4 * m * magnitude >= top)
    return 4 * step, [step * i for i in range(5)]


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _frame(title: str, labels: Sequence[str], upper: float, grid: Sequence[float]) -> list[str]:
    plot_h = HEIGHT - _TOP - _BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{_e(title)}" '
        'class="chart" font-family="system-ui,sans-serif" font-size="11">',
        f"<title>{_e(title)}</title>",
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="600">{_e(title)}</text>',
    ]
    for value in grid:
        y = _TOP + plot_h - plot_h * value / upper
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>'
        )
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, len(labels))
    # Every label while they fit (about 7 px a character), else every n-th.
    widest = 7 * max((len(label[:16]) for label in labels), default=1) + 6
    every = max(1, int(-(-widest // slot)))
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = _LEFT + slot * (i + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - _BOTTOM + 14}" text-anchor="middle">'
            f"{_e(label[:16])}</text>"
        )
    return parts


def _legend(series: Sequence[Series]) -> str:
    parts, x = [], _LEFT
    for s in series:
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 18}" width="10" height="10" fill="{_e(s.colour)}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 9}">{_e(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return "".join(parts)


def bar_chart(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """Stacked bars, one per label; each series one layer."""
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)}")
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    upper, grid = _scale(max(totals, default=0.0))
    parts = _frame(title, labels, upper, grid)
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, len(labels))
    bar_w = max(1.0, slot * 0.7)
    for i, label in enumerate(labels):
        base = 0.0
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            y = _TOP + plot_h - plot_h * (base + value) / upper
            h = plot_h * value / upper
            x = _LEFT + slot * i + (slot - bar_w) / 2
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{_e(s.colour)}"><title>{_e(label)}: {_e(s.name)} '
                f"{_number(value)}</title></rect>"
            )
            base += value
    parts.append(_legend(series))
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """One polyline per series with a dot per value; a missing value (NaN) breaks no line,
    it is simply not drawn."""
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)}")
    finite = [v for s in series for v in s.values if not math.isnan(v)]
    upper, grid = _scale(max(finite, default=0.0))
    parts = _frame(title, labels, upper, grid)
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, len(labels))
    for s in series:
        points = [
            (_LEFT + slot * (i + 0.5), _TOP + plot_h - plot_h * v / upper, labels[i], v)
            for i, v in enumerate(s.values)
            if not math.isnan(v)  # not reported
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{_e(s.colour)}" stroke-width="2"/>'
            )
        parts.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{_e(s.colour)}">'
            f"<title>{_e(label)}: {_e(s.name)} {_number(v)}</title></circle>"
            for x, y, label, v in points
        )
    parts.append(_legend(series))
    parts.append("</svg>")
    return "".join(parts)
