"""How heavy is a mean row's impostor tail, fitted on calibration identities, checked held out?

    python models/evaluation/mean_row_tail.py [--profile accurate] [--out FILE]

``seal --entry-means`` counts each mean row (the renormalised mean of an entry's photos' unit
embeddings, coherence c) as ``p1(t c) / p1(t)`` photo rows (:func:`central.thresholds.
mean_row_weight`): the bound for two photos whose scores always agree. Their scores do not always
agree, so the true weight is lower. This measures by how much, in the one-parameter family
``p1(t - beta t (1 - c)) / p1(t)`` (beta 1: the bound; 0: a mean row is one photo row), on the
split of ``calibrate_1n.py``: entries are the identities with two or more photos (first two
photos and their mean row), probes every photo of the other identities of the same side; beta
is solved per threshold so that the predicted number of mean-row exceedances (from the side's own
empirical photo-row tail) equals the measured one. Side 0 (calibration: identities outside the
pairs file and its calibration half) is where a beta would be fitted; side 1 (held out) checks it.
Embeddings come from ``gallery_means.py``'s cache (enrolment's own embedding path).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gallery_means import lfw_people  # noqa: E402

from tools.evaluation.calibration_1n import half  # noqa: E402
from tools.evaluation.lfw import DATASETS, pair_identities  # noqa: E402

F64 = npt.NDArray[np.float64]
THRESHOLDS = tuple(round(0.60 + 0.02 * i, 2) for i in range(12))  # 0.60 .. 0.82


def side_scores(
    people: dict[str, list[int]], emb: F64, side: set[str]
) -> tuple[F64, F64, F64, npt.NDArray[np.int64]]:
    """Sorted photo-row impostor scores, mean-row scores (probes x entries, own identity NaN),
    the entries' coherences and each entry's number of impostor probes."""
    entries = sorted(n for n in side if len(people[n]) >= 2)
    a = emb[[people[n][0] for n in entries]]
    b = emb[[people[n][1] for n in entries]]
    total = a + b
    coherence: F64 = np.linalg.norm(total, axis=1) / 2
    mean = total / (2 * coherence[:, None])
    probes = [(n, i) for n in sorted(side) for i in people[n]]
    p = emb[[i for _, i in probes]]
    own = np.array([n for n, _ in probes])[:, None] == np.array(entries)[None, :]
    photo = np.sort(np.concatenate([(p @ a.T)[~own], (p @ b.T)[~own]]))
    mean_scores = p @ mean.T
    mean_scores[own] = np.nan
    return photo, mean_scores, coherence, (~own).sum(axis=0)


def fit(photo: F64, mean_scores: F64, coherence: F64, probes: npt.NDArray[np.int64]) -> list[Any]:
    def p1(x: F64) -> F64:
        out: F64 = (len(photo) - np.searchsorted(photo, x, "left")) / len(photo)
        return out

    rows = []
    for t in THRESHOLDS:
        measured = int(np.nansum(mean_scores >= t))

        def predicted(beta: float, t: float = t) -> float:
            return float((probes * p1(t - beta * t * (1 - coherence))).sum())

        beta: float | None
        if measured == 0 or predicted(1.0) < measured:
            beta = None  # nothing to fit, or heavier than the bound (label noise at the top)
        else:
            lo, hi = 0.0, 1.0
            for _ in range(30):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if predicted(mid) < measured else (lo, mid)
            beta = round((lo + hi) / 2, 3)
        photo_rate = float(p1(np.array([t]))[0])
        mean_rate = measured / float(probes.sum())
        rows.append(
            {
                "threshold": t,
                "mean_row_exceedances": measured,
                "photo_row_exceedances": round(photo_rate * len(photo)),
                "measured_weight": mean_rate / photo_rate if photo_rate else None,
                "bound_over_measured": predicted(1.0) / measured if measured else None,
                "beta": beta,
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=DATASETS / "lfw")
    parser.add_argument("--pairs", type=Path, default=DATASETS / "lfw_pairs_10fold.txt")
    parser.add_argument("--profile", default="accurate")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not args.lfw.is_dir() or not args.pairs.is_file():
        print(f"mean_row_tail: no LFW at {args.lfw} or pairs at {args.pairs}", file=sys.stderr)
        return 2
    profile_id, emb, people = lfw_people(args.lfw, args.profile)
    named = pair_identities(args.pairs)
    sides: dict[str, set[str]] = {"calibration": set(), "held_out": set()}
    for n in people:
        sides["held_out" if n in named and half(n) else "calibration"].add(n)
    report: dict[str, Any] = {"profile": args.profile, "profile_id": profile_id, "sides": {}}
    for name, side in sides.items():
        photo, mean_scores, coherence, probes = side_scores(people, emb, side)
        rows = fit(photo, mean_scores, coherence, probes)
        report["sides"][name] = {
            "entries": len(coherence),
            "pairs": int(probes.sum()),
            "coherence_median": round(float(np.median(coherence)), 4),
            "rows": rows,
        }
        print(
            f"{name}: {len(coherence)} entries, {int(probes.sum())} (probe, entry) pairs, "
            f"coherence median {np.median(coherence):.3f}"
        )
        print("  t     mean-row exc.  photo-row exc.  measured weight  bound/measured  beta")
        for r in rows:
            w = "-" if r["measured_weight"] is None else f"{r['measured_weight']:.2f}"
            bm = "-" if r["bound_over_measured"] is None else f"{r['bound_over_measured']:.2f}"
            print(
                f"  {r['threshold']:.2f} {r['mean_row_exceedances']:>12} "
                f"{r['photo_row_exceedances']:>15} {w:>16} {bm:>15}  {r['beta']}"
            )
    out = args.out or ROOT / "models" / "mean_row_tail.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
