"""``lfr-alerts report``: the pilot report written to disk (pilot.md, 0600, atomically) with
PNG charts when matplotlib is installed. Kept apart from :mod:`central.pilot` so that the
computation does not import its own renderers."""

from __future__ import annotations

import logging
from pathlib import Path

from central.pilot import Day, collect
from central.pilot_text import markdown
from central.store import AlertStore
from lfrkit.files import atomic_write

log = logging.getLogger(__name__)


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


def report(store: AlertStore, out: Path) -> Path:
    """``lfr-alerts report``: pilot.md (0600, written atomically) and its PNG charts."""
    out.mkdir(parents=True, exist_ok=True)
    pilot = collect(store)
    charts = _charts(pilot.days, out) if pilot.days else []  # [] without matplotlib
    path = out / "pilot.md"
    atomic_write(path, markdown(pilot, charts).encode("utf-8"), 0o600)
    return path
