"""``make eval``: LFW accuracy, 1:N FNIR/FPIR with DET plot -> reports/eval.md (+ eval.json).

    python -m tools.evaluation [--lfw DIR] [--pairs FILE] [--limit N] [--workers N]
        [--by-group CSV] [--bootstrap N] [--out DIR]

Measures (:mod:`tools.evaluation.measure`), writes ``eval.json``, then renders ``eval.md`` and
the plots from that file (:mod:`tools.evaluation.report`, which can also render it again).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools.evaluation.lfw import ROOT, add_lfw_arguments
from tools.evaluation.measure import evaluate
from tools.evaluation.report import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(parser)
    parser.add_argument("--limit", type=int, help="at most N gallery identities (quick runs)")
    parser.add_argument("--by-group", type=Path, metavar="CSV")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="resamples for the confidence intervals"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args(argv)
    if not args.lfw.is_dir() or not args.pairs.is_file():
        raise SystemExit(
            f"eval: LFW not found ({args.lfw}, {args.pairs}); pass --lfw DIR --pairs FILE"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    results = evaluate(
        args.lfw,
        args.pairs,
        limit=args.limit,
        workers=args.workers,
        bootstrap=args.bootstrap,
        groups=args.by_group,
    )
    text = json.dumps(results, indent=2)
    (args.out / "eval.json").write_text(text)
    render(json.loads(text), args.out)  # from what the file holds, as a re-render would
    print(json.dumps({k: v for k, v in results.items() if k != "plots"}, indent=2))
    print(f"report: {args.out / 'eval.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
