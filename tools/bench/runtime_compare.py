"""The TFLite runtimes side by side: every model under each runtime that works here, each
runtime in its own process (``runtimes.py``), and why any runtime did not run."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from tools.bench import runtimes


def compare_runtimes(runs: int, other_python: str | None) -> dict[str, Any]:
    """Each runtime is first probed in a subprocess (create an interpreter, run it once): with
    this venv's Python, and for tflite-runtime also with ``other_python`` when given. What
    failed, and how, is kept for the report."""
    from agent.vision.errors import RuntimeUnavailableError
    from agent.vision.runtime import select_runtime

    try:
        pipeline_runtime = select_runtime()[0]
    except RuntimeUnavailableError as exc:
        pipeline_runtime = f"none ({exc})"
    measured: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for runtime in runtimes.RUNTIMES:
        candidates = [sys.executable]
        if runtime == "tflite-runtime" and other_python:
            candidates.append(other_python)
        for python in candidates:
            probe = runtimes.run_in(python, runtime, 1, [1], probe=True)
            if "error" in probe:
                failures.append(f"`{runtime}` under `{python}`: {probe['error']}")
                continue
            result = runtimes.run_in(python, runtime, runs, [1, 2, 4], probe=False)
            if "error" in result:
                failures.append(f"`{runtime}` under `{python}`: {result['error']}")
                continue
            measured[runtime] = result
            break
    measured_elsewhere = measured.get("tflite-runtime", {}).get("python") not in (
        None,
        sys.executable,
    )
    # Show, not tell, why it needed its own venv: its package under this venv's numpy.
    alongside = runtimes.alongside(other_python) if measured_elsewhere and other_python else None
    return {
        "pipeline": pipeline_runtime,
        "measured": measured,
        "failures": failures,
        "alongside": alongside,
        "runs": runs,
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
    }


def runtime_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's runtime, the failures, and per runtime the median ms of every model at
    each thread count (``runtimes`` in bench.json)."""
    measured = result["measured"]
    summary: dict[str, Any] = {"pipeline": result["pipeline"], "failures": result["failures"]}
    names = sorted({n for m in measured.values() for n in m["models"]})
    for name in names:
        for threads in ("1", "2", "4"):
            for runtime in (r for r in runtimes.RUNTIMES if r in measured):
                samples = measured[runtime]["models"].get(name, {}).get("ms", {}).get(threads)
                if samples:
                    summary.setdefault(runtime, {})[f"{name} t{threads}"] = float(
                        np.median(samples)
                    )
    return summary
