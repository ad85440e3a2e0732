"""The template protocol (issue 16 §4): 1:N searches made of K photos of a person.

A search is the mean of K unit embeddings, renormalised (what the agent decides on:
agent/core/template.py). Pure numpy: embeddings in, :class:`TemplateResult` out (tested on
small synthetic data in tests/unit/test_eval_template.py).

Protocol (:func:`template_searches`), on LFW:

- the list (gallery): the first photo of every identity, singles included (singles are listed
  people nobody searches for: they make the list longer, as a real one);
- for every identity with at least K + 1 photos, up to ``per_id`` distinct K-subsets of its
  other photos (the first ``photos`` of them, seeded): each subset is one **mated** search
  (against the whole list) and one **non-mated** search (against the list without that
  identity's entry: leave-one-out). LFW has too few people with many photos to hold the
  strangers out, so every such person is both listed and a stranger;
- searches of one person are correlated, so the intervals resample **identities** (cluster
  bootstrap), not searches.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tools.evaluation.metrics import Interval, Searches, threshold_at_rate

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TemplateResult:
    """The searches of one K, with the identity (cluster) of each search."""

    k: int
    searches: Searches
    mated_id: I64  # identity index per mated search
    nonmated_id: I64  # identity index per non-mated search
    gallery_size: int

    @property
    def identities(self) -> int:
        return len(np.unique(np.concatenate([self.mated_id, self.nonmated_id])))


def template(unit: F64) -> F64:
    """The mean of unit rows, renormalised."""
    mean = unit.mean(axis=0)
    out: F64 = mean / np.linalg.norm(mean)
    return out


def subsets(n: int, k: int, count: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Up to ``count`` distinct k-subsets of range(n): all of them if there are few, else a
    random choice (seeded by ``rng``)."""
    if n < k:
        return []
    every = list(itertools.combinations(range(n), k))
    if len(every) <= count:
        return every
    pick = rng.choice(len(every), size=count, replace=False)
    return [every[i] for i in sorted(pick)]


def template_searches(
    people: list[F64],
    k: int,
    *,
    photos: int = 10,
    per_id: int = 10,
    min_others: int = 0,
    seed: int = 0,
) -> TemplateResult:
    """``people``: per identity its photos' unit embeddings (rows; the first is its listed
    photo). Returns the mated and leave-one-out non-mated searches of size ``k``, made by the
    identities with at least ``max(k, min_others)`` other photos (``min_others`` lets every K
    be measured on the same people)."""
    rng = np.random.default_rng(seed)
    gallery = np.stack([p[0] for p in people])
    mated_score, mated_rank1, mated_id = [], [], []
    nonmated_top, nonmated_id = [], []
    for person, rows in enumerate(people):
        others = rows[1 : 1 + photos]
        if len(others) < min_others:
            continue
        for chosen in subsets(len(others), k, per_id, rng):
            scores = gallery @ template(others[list(chosen)])
            own = float(scores[person])
            scores[person] = -np.inf
            best_other = float(scores.max())
            mated_score.append(own)
            mated_rank1.append(own > best_other)
            mated_id.append(person)
            nonmated_top.append(best_other)
            nonmated_id.append(person)
    return TemplateResult(
        k,
        Searches(
            np.array(mated_score, dtype=np.float64),
            np.array(mated_rank1, dtype=np.bool_),
            np.array(nonmated_top, dtype=np.float64),
        ),
        np.array(mated_id, dtype=np.int64),
        np.array(nonmated_id, dtype=np.int64),
        len(people),
    )


def without(result: TemplateResult, identities: set[int]) -> TemplateResult:
    """The same searches without the non-mated ones of ``identities`` (their mated ones stay):
    people LFW files under two names are not strangers to their other entry."""
    keep = ~np.isin(result.nonmated_id, sorted(identities))
    s = result.searches
    return TemplateResult(
        result.k,
        Searches(s.mated_score, s.mated_rank1, s.nonmated_top[keep]),
        result.mated_id,
        result.nonmated_id[keep],
        result.gallery_size,
    )


def near_identities(result: TemplateResult) -> set[int]:
    """Identities with a non-mated search scoring at or above the median score of the mated
    searches that found their mate: near-duplicates (mislabelled photos, one person under two
    names, twins). Chosen by the scores, so a sensitivity check only, never a headline."""
    s = result.searches
    found = s.mated_score[s.mated_rank1]
    if not len(found):
        return set()
    cutoff = float(np.median(found))
    return {int(i) for i in np.unique(result.nonmated_id[s.nonmated_top >= cutoff])}


def cluster_bootstrap_at_fpir(
    result: TemplateResult, fpir: float, reps: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[Interval, Interval]:
    """(threshold, FNIR) at ``fpir`` with percentile intervals from resampling identities
    with replacement (each draw brings all of that identity's mated and non-mated searches)."""
    s = result.searches
    ids = np.unique(np.concatenate([result.mated_id, result.nonmated_id]))
    hit = np.where(s.mated_rank1, s.mated_score, -np.inf)
    mated_of = {int(i): hit[result.mated_id == i] for i in ids}
    nonmated_of = {int(i): s.nonmated_top[result.nonmated_id == i] for i in ids}
    rng = np.random.default_rng(seed)
    thresholds, fnirs = np.empty(reps), np.empty(reps)
    for r in range(reps):
        draw = rng.choice(ids, size=len(ids), replace=True)
        nonmated = np.concatenate([nonmated_of[int(i)] for i in draw])
        mated = np.concatenate([mated_of[int(i)] for i in draw])
        t = threshold_at_rate(nonmated, fpir)
        thresholds[r] = t
        fnirs[r] = 1.0 - float(np.mean(mated > t))
    tail = (1 - level) / 2 * 100
    fnir, threshold = s.at_fpir(fpir)
    return (
        Interval(threshold, *np.percentile(thresholds, [tail, 100 - tail])),
        Interval(fnir, *np.percentile(fnirs, [tail, 100 - tail])),
    )


def summary(result: TemplateResult, fpirs: tuple[float, ...], reps: int) -> dict[str, object]:
    """What the report shows for one K: counts, rank-1, FNIR and threshold at each FPIR the
    non-mated searches resolve (at least one above the threshold), and the DET curve."""
    s = result.searches
    points: dict[str, object] = {}
    for fpir in fpirs:
        if fpir * len(s.nonmated_top) < 1:
            continue
        threshold, fnir = cluster_bootstrap_at_fpir(result, fpir, reps)
        points[f"{fpir:g}"] = {"threshold": vars(threshold), "fnir": vars(fnir)}
    fpir_curve, fnir_curve = s.det()
    near = near_identities(result)
    lean = without(result, near).searches
    return {
        "k": result.k,
        "gallery": result.gallery_size,
        "identities": result.identities,
        "mated_searches": len(s.mated_score),
        "nonmated_searches": len(s.nonmated_top),
        "rank1": float(np.mean(s.mated_rank1)) if len(s.mated_rank1) else 0.0,
        "near_identities": len(near),
        "without_near": {
            f"{fpir:g}": dict(zip(("fnir", "threshold"), lean.at_fpir(fpir), strict=True))
            for fpir in fpirs
            if fpir * len(lean.nonmated_top) >= 1
        },
        "points": points,
        "det": {"fpir": fpir_curve.tolist(), "fnir": fnir_curve.tolist(), "marks": []},
    }
