"""The plots of ``make bench``, drawn from the data in ``bench.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tools.report import pyplot


def plot_matching(series: dict[str, list[list[float]]], path: Path) -> None:
    """ms per probe against watchlist size, one line per storage: ``series[storage]`` holds
    (entries, ms) points."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for storage, points in series.items():
        ax.loglog([n for n, _ in points], [ms for _, ms in points], marker="o", label=storage)
    ax.set_xlabel("watchlist entries")
    ax.set_ylabel("ms per probe (median)")
    ax.set_title("Matching one probe: time vs watchlist size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_latency(results: dict[str, Any], path: Path) -> None:
    """Empirical CDFs of the publishing and frame-to-event latencies (log time axis), from
    the publishing results (``publishing.Results`` as a dict)."""
    plt = pyplot()
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
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    for label, samples in curves.items():
        ms = np.sort(np.array(samples) * 1000)
        style = "--" if "NODELAY" in label else "-"
        ax.step(ms, np.arange(1, len(ms) + 1) / len(ms), style, where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log)")
    ax.set_ylabel("fraction of samples at or below")
    ax.set_title("Publishing and frame-to-event latency (real TLS Mosquitto)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
