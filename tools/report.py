"""What the reports of ``make bench`` and ``make eval`` (and models/ speed tables) share:
Markdown tables, the CPU time a run took, and a headless matplotlib."""

from __future__ import annotations

import resource
from typing import Any


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (GitHub flavour)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (workers, the agent)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pyplot() -> Any:
    """matplotlib.pyplot drawing to files only (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
