"""``make eval``: LFW accuracy, 1:N FNIR/FPIR with DET plot -> reports/eval.md (+ eval.json).

    python -m tools.evaluation [--lfw DIR] [--pairs FILE] [--limit N] [--workers N]
        [--by-group CSV] [--bootstrap N] [--out DIR]

Measures (:mod:`tools.evaluation.measure`), writes ``eval.json``, then renders ``eval.md`` and
the plots from that file (:mod:`tools.evaluation.report`, which can also render it again).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.evaluation.lfw import add_lfw_arguments
from tools.evaluation.measure import evaluate
from tools.evaluation.report import render
from tools.report import REPORTS, write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(parser)
    parser.add_argument("--limit", type=int, help="at most N gallery identities (quick runs)")
    parser.add_argument("--by-group", type=Path, metavar="CSV")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="resamples for the confidence intervals"
    )
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    if not args.lfw.is_dir() or not args.pairs.is_file():
        raise SystemExit(
            f"eval: LFW not found ({args.lfw}, {args.pairs}); pass --lfw DIR --pairs FILE"
        )
    results = evaluate(
        args.lfw,
        args.pairs,
        limit=args.limit,
        workers=args.workers,
        bootstrap=args.bootstrap,
        groups=args.by_group,
    )
    write_results(results, args.out, "eval", render, raw="plots")
    return 0
