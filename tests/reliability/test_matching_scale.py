"""Matching at watchlist sizes 1k / 10k (CI) and 100k (full size): memory and time per probe.

The agent's :class:`~agent.core.matcher.Matcher` in each storage (float32, float16, int8) over
a random gallery of the 'accurate' profile's dimension (448). Asserted: the right entry is
found for noisy probes of enrolled subjects, and a stranger matches nobody. Reported (not
asserted): the matrix size, the memory held and peaked while building (tracemalloc sees numpy's
buffers), the build time (what a watchlist install costs), the memory one probe allocates
and the time per probe, written to the artefacts as ``matching/results.md``.
"""

from __future__ import annotations

import time
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np

from agent.core.matcher import STORAGE, Matcher
from protocol.entries import Entry
from tests.reliability.conftest import Recorder, sized
from tools.bench.timing import timed
from tools.report import table

DIM = 448  # the 'accurate' profile (models/MANIFEST.json)
THRESHOLD = 0.5
PROBES = 20


def gallery(n: int, seed: int) -> tuple[list[Entry], np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, DIM), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return [Entry(f"WL-{i:06d}", "wanted", None, rows[i : i + 1]) for i in range(n)], rows


def test_matching_memory_and_time_per_probe(artefacts: Path, record: Recorder) -> None:
    sizes = [1_000, 10_000] + ([100_000] if sized(0, 1) else [])
    rng = np.random.default_rng(7)
    header = [
        "entries",
        "storage",
        "matrix MiB",
        "bytes/entry",
        "held after build MiB",
        "peak while building MiB",
        "build ms",
        "peak per probe MiB",
        "probe median ms",
        "probe p99 ms",
        "probes/s",
    ]
    rows = []
    for n in sizes:
        entries, unit = gallery(n, seed=n)
        targets = rng.choice(n, PROBES, replace=False)
        # Another picture of the same person: cosine about 0.8 with the enrolled one.
        noise = rng.standard_normal((PROBES, DIM), dtype=np.float32) / np.sqrt(DIM)
        probes = unit[targets] + 0.75 * noise
        stranger = rng.standard_normal(DIM, dtype=np.float32)
        for storage in STORAGE:
            tracemalloc.start()
            started = time.perf_counter()
            matcher = Matcher(entries, THRESHOLD, storage)
            build = time.perf_counter() - started
            held, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert len(matcher) == n
            for target, probe in zip(targets, probes, strict=True):
                found = matcher.match(probe)
                assert found is not None, (n, storage, int(target))
                assert (found.entry, found.subject_ref) == (int(target), f"WL-{target:06d}")
                assert 0.7 < found.score < 0.9 and found.margin > 0.3, found
            assert matcher.match(stranger) is None, (n, storage)
            tracemalloc.start()
            matcher.match(probes[0])
            probe_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            runs = 200 if n <= 10_000 else 30
            timing = timed(storage, runs, partial(matcher.match, probes[0]), warmup=3)
            ms = np.array(timing.samples) * 1000
            rows.append(
                [
                    f"{n:,}",
                    storage,
                    f"{matcher.nbytes / 2**20:.2f}",
                    f"{matcher.nbytes / n:.0f}",
                    f"{held / 2**20:.2f}",
                    f"{peak / 2**20:.2f}",
                    f"{build * 1000:.1f}",
                    f"{probe_peak / 2**20:.2f}",
                    f"{np.median(ms):.3f}",
                    f"{np.percentile(ms, 99):.3f}",
                    f"{1000 / np.median(ms):,.0f}",
                ]
            )
            del matcher
        del entries, unit
    text = (
        f"Matcher, dim {DIM}, one embedding per entry, {PROBES} mated probes and one stranger "
        f"per case (all correct)\n\n" + table(header, rows)
    )
    out = artefacts / "matching"
    out.mkdir(exist_ok=True)
    (out / "results.md").write_text(text + "\n")
    print("\n" + text)
    record("matching-results", text)
