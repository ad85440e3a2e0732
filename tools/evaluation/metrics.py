"""Verification and identification metrics, as LFW's protocol and NIST FRTE define them.

Pure numpy: scores and labels in, numbers out (tested on synthetic scores in
tests/unit/test_eval_metrics.py). ``make eval`` and the model evaluations in models/ share them;
the models' build venv imports this module too, so it needs numpy only. A pair or a search is
accepted when its score is strictly above the threshold, everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


def best_threshold(scores: F64, same: B) -> float:
    """The threshold maximising accuracy: below the lowest score, halfway between two
    neighbouring distinct scores, or above the highest; the lowest such on a tie. Equal scores
    stay on one side of every candidate (a split between them is not a threshold)."""
    values, group = np.unique(scores, return_inverse=True)
    positives = np.bincount(group, weights=same.astype(np.float64), minlength=len(values))
    negatives = np.bincount(group, weights=(~same).astype(np.float64), minlength=len(values))
    # Candidate j accepts values[j:]: correct = the negatives below it + the positives from j.
    below = np.concatenate([[0.0], np.cumsum(negatives)])
    from_here = positives.sum() - np.concatenate([[0.0], np.cumsum(positives)])
    candidates = np.concatenate(
        [[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]]
    )
    return float(candidates[int(np.argmax(below + from_here))])


def fold_accuracies(scores: F64, same: B, folds: npt.NDArray[np.int_]) -> F64:
    """LFW View 2: per fold, the accuracy at the threshold that is best on the other folds."""
    results = []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        threshold = best_threshold(scores[train], same[train])
        results.append(np.mean((scores[test] > threshold) == same[test]))
    return np.array(results, dtype=np.float64)


def ten_fold_accuracy(scores: F64, same: B, folds: npt.NDArray[np.int_]) -> tuple[float, float]:
    """(mean, standard deviation) of :func:`fold_accuracies`."""
    results = fold_accuracies(scores, same, folds)
    return float(np.mean(results)), float(np.std(results))


def threshold_at_rate(negatives: F64, rate: float) -> float:
    """Smallest threshold with at most ``rate`` of ``negatives`` strictly above it."""
    ordered = np.sort(negatives)[::-1]
    allowed = int(np.floor(rate * len(ordered)))
    return float(ordered[min(allowed, len(ordered) - 1)])


def tar_at_far(scores: F64, same: B, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the given FAR; accept when score > threshold."""
    threshold = threshold_at_rate(scores[~same], far)
    return float(np.mean(scores[same] > threshold)), threshold


@dataclass(frozen=True)
class Searches:
    """1:N results: per mated search the mate's score and whether it ranked first; per
    non-mated search the best gallery score."""

    mated_score: F64
    mated_rank1: B
    nonmated_top: F64

    def fnir(self, threshold: float) -> float:
        hit = self.mated_rank1 & (self.mated_score > threshold)
        return float(1.0 - np.mean(hit))

    def fpir(self, threshold: float) -> float:
        return float(np.mean(self.nonmated_top > threshold))

    def at_fpir(self, fpir: float) -> tuple[float, float]:
        """(FNIR, threshold) at the given FPIR."""
        threshold = threshold_at_rate(self.nonmated_top, fpir)
        return self.fnir(threshold), threshold

    def det(self, points: int = 200) -> tuple[F64, F64]:
        """(FPIR, FNIR) pairs over the score range, for a DET plot."""
        scores = np.concatenate([self.mated_score, self.nonmated_top])
        thresholds = np.quantile(scores, np.linspace(0, 1, points))
        return (
            np.array([self.fpir(t) for t in thresholds]),
            np.array([self.fnir(t) for t in thresholds]),
        )


def search(
    gallery: F64, gallery_ids: npt.NDArray[np.int_], probes: F64, probe_ids: npt.NDArray[np.int_]
) -> Searches:
    """Search every probe (rows, unit vectors) against the gallery; id -1 means non-mated."""
    scores = probes @ gallery.T
    top = np.argmax(scores, axis=1)
    mated = probe_ids >= 0
    index = {int(i): n for n, i in enumerate(gallery_ids)}
    mate = np.array([index.get(int(i), -1) for i in probe_ids[mated]])
    mated_scores = scores[mated]
    mate_score = mated_scores[np.arange(len(mate)), mate]
    return Searches(
        mate_score.astype(np.float64),
        (top[mated] == mate),
        scores[~mated].max(axis=1).astype(np.float64),
    )


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided bootstrap percentile interval."""

    estimate: float
    low: float
    high: float


def _bootstrap(
    searches: Searches, estimate: Callable[[F64], float], reps: int, level: float, seed: int
) -> tuple[Interval, Interval]:
    """(threshold, FNIR), the threshold ``estimate``d from the non-mated searches' best scores,
    with percentile bootstrap intervals: both the non-mated and the mated searches are
    resampled with replacement, ``reps`` times, and the estimate is redone on each resample."""
    rng = np.random.default_rng(seed)
    nonmated, n = searches.nonmated_top, len(searches.nonmated_top)
    hit_score = np.where(searches.mated_rank1, searches.mated_score, -np.inf)
    m = len(hit_score)
    thresholds, fnirs = np.empty(reps), np.empty(reps)
    for r in range(reps):
        t = estimate(nonmated[rng.integers(0, n, n)])
        thresholds[r] = t
        fnirs[r] = 1.0 - np.mean(hit_score[rng.integers(0, m, m)] > t)
    tail = (1 - level) / 2 * 100
    threshold = estimate(nonmated)
    return (
        Interval(threshold, *np.percentile(thresholds, [tail, 100 - tail])),
        Interval(searches.fnir(threshold), *np.percentile(fnirs, [tail, 100 - tail])),
    )


def bootstrap_at_fpir(
    searches: Searches, fpir: float, reps: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[Interval, Interval]:
    """(threshold, FNIR) at ``fpir`` (the empirical quantile) with bootstrap intervals."""
    return _bootstrap(searches, lambda best: threshold_at_rate(best, fpir), reps, level, seed)


def binomial_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a rate of k in n (stays inside [0, 1] at k = 0)."""
    if n == 0:
        return 0.0, 1.0
    z = {0.9: 1.6449, 0.95: 1.96, 0.99: 2.5758}[level]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def name_key(identity: str) -> tuple[str, ...]:
    """An identity's name as a sorted tuple of lower-case words: LFW's ``Sung_Hong_Choi`` and
    ``Choi_Sung-hong`` (one man filed twice, family name first and last) have the same key."""
    words = identity.replace("-", "_").replace(" ", "_").lower().split("_")
    return tuple(sorted(w for w in words if w))


def drop(searches: Searches, nonmated: B) -> Searches:
    """The same searches without the non-mated ones flagged in ``nonmated``."""
    return Searches(searches.mated_score, searches.mated_rank1, searches.nonmated_top[~nonmated])


def _gumbel_z(p: float | F64) -> F64:
    """The standard Gumbel quantile: -ln(-ln p)."""
    return np.asarray(-np.log(-np.log(p)), dtype=np.float64)


def gumbel_fit(best: F64, low: float = 0.5, high: float = 0.99) -> tuple[float, float]:
    """(location, scale) of a Gumbel law matched to two quantiles of the non-mated searches'
    best scores. The best of N impostor scores tends to a Gumbel law as N grows (extreme-value
    limit for light tails). Matching the median and the 99th percentile, not the top few
    scores, keeps a handful of mislabelled searches from moving the fit."""
    q_low, q_high = np.quantile(best, [low, high])
    scale = float((q_high - q_low) / (_gumbel_z(high) - _gumbel_z(low)))
    return float(q_low - scale * _gumbel_z(low)), scale


def gumbel_threshold(location: float, scale: float, fpir: float, list_factor: float = 1.0) -> float:
    """The threshold a stranger's best score exceeds with probability ``fpir``; for a list
    ``list_factor`` times longer (independent impostors) the law shifts by scale * ln(factor)."""
    return float(location + scale * np.log(list_factor) + scale * _gumbel_z(1.0 - fpir))


def bootstrap_gumbel(
    searches: Searches, fpir: float, reps: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[Interval, Interval]:
    """(threshold, FNIR) at ``fpir`` from the Gumbel fit, with bootstrap intervals (the fit is
    redone on every resample of the non-mated searches)."""
    return _bootstrap(
        searches, lambda best: gumbel_threshold(*gumbel_fit(best), fpir), reps, level, seed
    )
