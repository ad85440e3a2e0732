"""``make eval``: LFW accuracy, 1:N FNIR/FPIR with DET plot -> reports/eval.md (+ eval.json).

    python -m tools.evaluation [--lfw DIR] [--pairs FILE] [--limit N] [--workers N]
        [--by-group CSV] [--bootstrap N] [--out DIR] [--template-only]

Measures (:mod:`tools.evaluation.measure`), writes ``eval.json``, then renders ``eval.md`` and
the plots from that file (:mod:`tools.evaluation.report`, which can also render it again).
``--template-only`` runs the template protocol alone (:mod:`tools.evaluation.template_run`,
embeddings cached), writing ``eval_template.json`` / ``eval_template.md``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from tools.evaluation.lfw import add_lfw_arguments
from tools.evaluation.measure import evaluate
from tools.evaluation.report import render, render_template
from tools.evaluation.template_run import cached, lfw_people, measure
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
    parser.add_argument(
        "--template-only", action="store_true", help="only the K-photo template protocol"
    )
    args = parser.parse_args(argv)
    if args.template_only:
        if not args.lfw.is_dir():
            raise SystemExit(f"eval: LFW not found ({args.lfw}); pass --lfw DIR")
        started = time.monotonic()
        people = lfw_people(args.lfw)
        doc = {
            "template": measure(people, cached(args.lfw, args.workers), args.bootstrap),
            "bootstrap": args.bootstrap,
            "seconds": time.monotonic() - started,
            "load_average": os.getloadavg(),
        }
        write_results(doc, args.out, "eval_template", render_template, raw="template")
        return 0
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
