"""Timings: run a callable many times, keep every sample (reports show median and tails)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Timing:
    name: str
    samples: list[float]

    def row(self, baseline: float | None = None) -> list[str]:
        ms = np.array(self.samples) * 1000
        ratio = f"{baseline / float(np.median(ms)):.2f}x" if baseline else ""
        return [
            self.name,
            str(len(ms)),
            f"{np.median(ms):.2f}",
            f"{np.percentile(ms, 90):.2f}",
            f"{np.percentile(ms, 99):.2f}",
            ratio,
        ]


def timed(name: str, runs: int, fn: Callable[[], object], warmup: int = 3) -> Timing:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(name, samples)


def percentiles(samples: list[float]) -> dict[str, float]:
    """Median and 99th percentile in milliseconds of samples in seconds, and their count."""
    ms = np.array(samples) * 1000
    return {"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "n": len(ms)}
