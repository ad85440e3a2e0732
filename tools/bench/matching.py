"""Matching one probe against watchlists of growing size, per storage (float32/16, int8)."""

from __future__ import annotations

from functools import partial

import numpy as np

from agent.core.matcher import Matcher
from protocol.entries import Entry
from tools.bench.timing import timed


def matching_scaling(
    sizes: list[int], dim: int, runs: int
) -> tuple[list[list[str]], dict[str, list[tuple[int, float]]]]:
    rng = np.random.default_rng(1)
    rows: list[list[str]] = []
    series: dict[str, list[tuple[int, float]]] = {}
    for storage in ("float32", "float16", "int8"):
        series[storage] = []
        for n in sizes:
            entries = [
                Entry(f"S{i}", "w", None, rng.normal(size=(1, dim)).astype(np.float32))
                for i in range(n)
            ]
            matcher = Matcher(entries, 0.5, storage)
            del entries
            probe = rng.normal(size=dim).astype(np.float32)
            timing = timed(
                "",
                max(5, runs // max(1, n // 10_000)),
                partial(matcher.match, probe),
                warmup=1,
            )
            ms = float(np.median(timing.samples) * 1000)
            series[storage].append((n, ms))
            rows.append(
                [
                    storage,
                    f"{n:,}",
                    f"{ms:.3f}",
                    f"{matcher.nbytes / n:.0f}",
                    f"{matcher.nbytes / 2**20:.1f}",
                ]
            )
    return rows, series
