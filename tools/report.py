"""What the reports of ``make bench``, ``make eval``, the load generator and models/ share:
Markdown tables, the CPU time a run took, a headless matplotlib, and writing a results JSON
from which the report is rendered (then, or again later)."""

from __future__ import annotations

import argparse
import json
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPORTS = Path(__file__).resolve().parents[1] / "reports"
Render = Callable[[dict[str, Any], Path], None]


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


def finish(fig: Any, ax: Any, path: Path, *, title: str, x: str, y: str, **legend: Any) -> None:
    """Labels, grid and legend on the one ``ax`` of ``fig``, then ``fig`` saved to ``path``."""
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(**legend)
    save(fig, path)


def save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)


def write_results(doc: dict[str, Any], out: Path, name: str, render: Render, raw: str) -> None:
    """``out/<name>.json``, then the report rendered from what that file holds (as a later
    re-render would see it); prints the results but for the bulky ``raw`` part."""
    text = json.dumps(doc, indent=2)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(text)
    render(json.loads(text), out)
    print(json.dumps({k: v for k, v in doc.items() if k != raw}, indent=2))
    print(f"report: {out / f'{name}.md'}")


def render_again(argv: list[str] | None, name: str, render: Render) -> int:
    """The command line that renders ``<name>.md`` and its plots again from ``<name>.json``."""
    parser = argparse.ArgumentParser(description=f"render {name}.md and its plots from {name}.json")
    parser.add_argument("results", type=Path, nargs="?", default=REPORTS / f"{name}.json")
    args = parser.parse_args(argv)
    render(json.loads(args.results.read_text()), args.results.parent)
    print(f"report: {args.results.parent / f'{name}.md'}")
    return 0
