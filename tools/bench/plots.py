"""The plots of ``make bench``, drawn from the data in ``bench.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tools.report import finish, pyplot


def plot_matching(series: dict[str, list[list[float]]], path: Path) -> None:
    """ms per probe against watchlist size, one line per storage: ``series[storage]`` holds
    (entries, ms) points."""
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for storage, points in series.items():
        ax.loglog([n for n, _ in points], [ms for _, ms in points], marker="o", label=storage)
    finish(
        fig,
        ax,
        path,
        title="Matching one probe: time vs watchlist size",
        x="watchlist entries",
        y="ms per probe (median)",
    )


def plot_latency(results: dict[str, Any], path: Path) -> None:
    """Empirical CDFs of the publishing and frame-to-event latencies (log time axis), from
    the publishing results (``publishing.Results`` as a dict)."""
    publish, nodelay = results["publish"], results["publish_nodelay"]
    frame_to_event = results["frame_to_event"]
    curves = {
        "outbox put (SQLite, fsync)": publish["stored"],
        "put -> PUBACK": publish["acked"],
        "put -> control room received": publish["received"],
        "put -> PUBACK, TCP_NODELAY (diagnostic)": nodelay["acked"],
        "put -> received, TCP_NODELAY (diagnostic)": nodelay["received"],
        "frame -> pipeline done (3 faces)": frame_to_event["process"],
        "frame -> all events received": frame_to_event["received"],
    }
    fig, ax = pyplot().subplots(figsize=(9.5, 4.5))
    for label, samples in curves.items():
        ms = np.sort(np.array(samples) * 1000)
        style = "--" if "NODELAY" in label else "-"
        ax.step(ms, np.arange(1, len(ms) + 1) / len(ms), style, where="post", label=label)
    ax.set_xscale("log")
    finish(
        fig,
        ax,
        path,
        title="Publishing and frame-to-event latency (real TLS Mosquitto)",
        x="latency, ms (log)",
        y="fraction of samples at or below",
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
