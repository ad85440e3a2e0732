"""Listed people enrolled from two photos: does a third row, the mean of the two, pay in 1:N?

    python models/evaluation/gallery_means.py [--profile accurate] [--entries 1000]
        [--trials 3] [--listed 450] [--out models/gallery_means_<listed>.json]

Today an entry's score is the best of its photos' rows (:class:`agent.core.matcher.Matcher`).
Averaging the two photos' unit embeddings (renormalised) averages away what is particular to
each photo, as a track template does for the probe. This compares, on LFW through
``lfr-watchlist enrol``'s own embedding path (``--central``, the profile's detector), four
galleries for the same listed people:

- ``one``: the first photo only; ``max2``: both photos, best row (today);
- ``max2+mean``: both photos and their mean; ``mean``: the mean alone.

Per trial (seeded): half of the identities with at least 3 embedded photos (at most
``--entries`` / 2) are listed with their first two photos and searched with their 3rd-5th
(mated); the list is padded to ``--entries`` with one photo of identities with fewer than 3;
every photo of an identity on no list is a non-mated search. Each gallery's threshold is read
from its own non-mated searches at FPIR 1e-2 and 3e-3 (about 9,000 searches: 1e-3 would rest on
9 scores), and FNIR counts a mated search that is below it or not top-1.

Then as sealed: each list through ``central.thresholds.choose`` (K = 1, the searches are single
photos) with its photos counted (``max2``) and with ``--entry-means`` (``max2+mean``, its mean
rows weighed from the K = 1 tail), FNIR and the measured FPIR at those thresholds, at FPIR 1e-2
and 1e-3; ``--listed`` sets how many of the entries have two photos.

Also the per-row impostor tail, P(score >= t) over every (non-mated photo, listed entry) pair,
for a photo row and for a mean row: a mean row's scores are divided by the coherence of the two
photos, so its tail is heavier, and a threshold calibrated on one-photo entries would not hold
for lists with mean rows. Embeddings are cached in ``models/.cache/gallery_means/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from central.enrol import _init_worker, _work  # noqa: E402 - enrolment's own embedding path
from tools.evaluation.lfw import DATASETS  # noqa: E402

F64 = npt.NDArray[np.float64]
GALLERIES = ("one", "max2", "max2+mean", "mean")
FPIRS = (1e-2, 3e-3)
TAIL_AT = (0.6, 0.65, 0.7, 0.75, 0.8)


def embed_lfw(lfw: Path, profile: str, cache: Path) -> tuple[list[str], F64]:
    """Every LFW photo's embedding as enrolment makes it (refused photos left out)."""
    if cache.exists():
        with np.load(cache) as d:
            return [str(n) for n in d["names"]], d["emb"].astype(np.float64)
    jobs = [
        (folder.name, image, "central")
        for folder in sorted(p for p in lfw.iterdir() if p.is_dir())
        for image in sorted(folder.glob("*.jpg"))
    ]
    names: list[str] = []
    rows: list[npt.NDArray[np.float32]] = []
    with ProcessPoolExecutor(
        2, initializer=_init_worker, initargs=(profile, None, "blazeface")
    ) as p:
        for outcome in p.map(_work, jobs, chunksize=16):
            if outcome.embedding is not None:
                names.append(outcome.subject_ref)
                rows.append(outcome.embedding)
    cache.parent.mkdir(parents=True, exist_ok=True)
    emb = np.stack(rows).astype(np.float32)
    np.savez(cache, names=np.array(names), emb=emb)
    return names, emb.astype(np.float64)


def lfw_people(lfw: Path, profile: str) -> tuple[str, F64, dict[str, list[int]]]:
    """The profile's id, every LFW photo's unit embedding (:func:`embed_lfw`, cached per profile
    id: a changed profile re-embeds) and each identity's rows."""
    manifest = json.loads((ROOT / "models" / "MANIFEST.json").read_text())
    profile_id = manifest["profiles"][profile]["id"]
    cache = ROOT / "models" / ".cache" / "gallery_means" / f"{profile_id}.npz"
    names, emb = embed_lfw(lfw, profile, cache)
    people: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        people.setdefault(name, []).append(i)
    return profile_id, unit(emb), people


def unit(x: F64) -> F64:
    out: F64 = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return out


def trial(
    people: dict[str, list[int]],
    emb: F64,
    entries: int,
    seed: int,
    listed_count: int,
    profile_id: str,
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    many = sorted(p for p, ix in people.items() if len(ix) >= 3)
    few = sorted(p for p, ix in people.items() if len(ix) < 3)
    size = min(len(many) // 2, listed_count)
    listed = [str(p) for p in rng.choice(many, size=size, replace=False)]
    pad = [str(p) for p in rng.choice(few, size=entries - len(listed), replace=False)]
    on_list = set(listed) | set(pad)
    mated = [(k, i) for k, p in enumerate(listed) for i in people[p][2:5]]
    nonmated = emb[[i for p, ix in people.items() if p not in on_list for i in ix]]
    a = emb[[people[p][0] for p in listed]]
    b = emb[[people[p][1] for p in listed]]
    mean = unit(a + b)
    padding = emb[[people[p][0] for p in pad]]

    def listed_scores(x: F64, gallery: str) -> F64:
        sa, sb = x @ a.T, x @ b.T
        if gallery == "one":
            return sa
        best: F64 = np.maximum(sa, sb)
        if gallery == "max2":
            return best
        sm: F64 = x @ mean.T
        return sm if gallery == "mean" else np.maximum(best, sm)

    probes = emb[[i for _, i in mated]]
    own = np.array([k for k, _ in mated])
    out: dict[str, Any] = {
        "listed": len(listed),
        "padding": len(pad),
        "mated": len(mated),
        "nonmated": len(nonmated),
        "gallery_coherence_mean": float(np.mean(np.linalg.norm((a + b) / 2, axis=1))),
        "galleries": {},
    }
    pad_top_n = (nonmated @ padding.T).max(axis=1)
    pad_top_m = (probes @ padding.T).max(axis=1)
    for gallery in GALLERIES:
        top = np.maximum(listed_scores(nonmated, gallery).max(axis=1), pad_top_n)
        scores = listed_scores(probes, gallery)
        mine = scores[np.arange(len(own)), own]
        scores[np.arange(len(own)), own] = -1.0
        other = np.maximum(scores.max(axis=1), pad_top_m)
        rows = {}
        for fpir in FPIRS:
            t = float(np.quantile(top, 1 - fpir))
            hit = (mine >= t) & (mine > other)
            rows[f"{fpir:g}"] = {"threshold": t, "fnir": float(1 - hit.mean())}
        out["galleries"][gallery] = rows
    out["sealed"] = sealed(profile_id, (a, b, padding), (nonmated, probes, own), listed_scores)
    sa, sm = nonmated @ a.T, nonmated @ mean.T
    out["impostor_tail"] = {
        f"{t:g}": {"photo_row": float(np.mean(sa >= t)), "mean_row": float(np.mean(sm >= t))}
        for t in TAIL_AT
    }
    out["impostor_pairs"] = int(sa.size)
    return out


def sealed(
    profile_id: str,
    gallery_rows: tuple[F64, F64, F64],
    searches: tuple[F64, F64, npt.NDArray[np.int64]],
    listed_scores: Any,
) -> dict[str, Any]:
    """FNIR and measured FPIR at the thresholds ``seal`` chooses for this list."""
    from central.thresholds import choose

    a, b, padding = gallery_rows
    nonmated, probes, own = searches
    coherences = np.linalg.norm((a + b) / 2, axis=1)
    photos = [(2, float(c)) for c in coherences] + [(1, 1.0)] * len(padding)
    entries = len(a) + len(padding)
    out: dict[str, Any] = {}
    for fpir in (1e-2, 1e-3):
        for gallery, means in (("max2", False), ("max2+mean", True)):
            threshold, _ = choose(
                profile_id, entries, k=1, fpir=fpir, photos=photos, entry_means=means
            )
            value = threshold.value
            top = np.maximum(
                listed_scores(nonmated, gallery).max(axis=1), (nonmated @ padding.T).max(axis=1)
            )
            scores = listed_scores(probes, gallery)
            mine = scores[np.arange(len(own)), own].copy()
            scores[np.arange(len(own)), own] = -1.0
            other = np.maximum(scores.max(axis=1), (probes @ padding.T).max(axis=1))
            out.setdefault(f"{fpir:g}", {})[gallery] = {
                "threshold": value,
                "fnir": float(1 - ((mine >= value) & (mine > other)).mean()),
                "fpir_measured": float(np.mean(top >= value)),
                "false": int(np.sum(top >= value)),
            }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=DATASETS / "lfw")
    parser.add_argument("--profile", default="accurate")
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--listed", type=int, default=450, help="entries with two photos")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not args.lfw.is_dir():
        print(f"gallery_means: no LFW at {args.lfw}", file=sys.stderr)
        return 2
    profile_id, emb, people = lfw_people(args.lfw, args.profile)
    trials = [
        trial(people, emb, args.entries, seed, args.listed, profile_id)
        for seed in range(16, 16 + args.trials)
    ]
    for n, t in enumerate(trials):
        print(
            f"trial {n}: {t['listed']} listed, {t['padding']} padding, {t['mated']} mated, "
            f"{t['nonmated']} non-mated; listed photos' coherence {t['gallery_coherence_mean']:.3f}"
        )
        for gallery, rows in t["galleries"].items():
            cells = [
                f"FPIR {f}: T {r['threshold']:.4f} FNIR {100 * r['fnir']:.2f} %"
                for f, r in rows.items()
            ]
            print(f"  {gallery:<10} " + " | ".join(cells))
        tail = " ".join(
            f"{t_}: {v['mean_row'] / max(v['photo_row'], 1e-12):.1f}x"
            for t_, v in t["impostor_tail"].items()
        )
        print(f"  mean row's impostor tail / a photo row's: {tail}")
        for fpir, rows in t["sealed"].items():
            for gallery, r in rows.items():
                print(
                    f"  sealed at FPIR {fpir}, {gallery:<10}: T {r['threshold']:.4f} "
                    f"FNIR {100 * r['fnir']:.2f} %, measured FPIR {r['fpir_measured']:.5f} "
                    f"({r['false']} / {t['nonmated']})"
                )
    report = {
        "profile": args.profile,
        "profile_id": profile_id,
        "entries": args.entries,
        "listed": args.listed,
        "trials": trials,
    }
    out = args.out or ROOT / "models" / f"gallery_means_{args.listed}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
