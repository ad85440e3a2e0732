"""``make bench``: speed, memory and scaling, measured the way a deployment needs to know them.

Writes ``reports/bench.json`` (every figure of this run on this machine, next to a baseline
measured in the same run: OpenCV's Haar cascade, because absolute times on a shared 2-core VM
say little), then renders ``bench.md`` and the PNG plots from it. Not a test: nothing here
asserts a time.

    python -m tools.bench [--quick] [--out reports] [--agent-seconds 60]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tools.bench.measure import measure
from tools.bench.report import render
from tools.report import REPORTS, write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--profile", default="accurate")
    parser.add_argument("--agent-seconds", type=float, default=60.0)
    parser.add_argument(
        "--tflite-runtime-python",
        default=os.environ.get("LFR_BENCH_TFLITE_RUNTIME_PYTHON"),
        metavar="PYTHON",
        help="an interpreter where tflite-runtime works (numpy<2), for its column",
    )
    args = parser.parse_args(argv)
    doc = measure(
        quick=args.quick,
        profile=args.profile,
        agent_seconds=args.agent_seconds,
        other_python=args.tflite_runtime_python,
    )
    write_results(doc, args.out, "bench", render, raw="measured")
    return 0
