"""Verification and identification metrics, as LFW's protocol and NIST FRTE define them.

Pure numpy: scores and labels in, numbers out (tested on synthetic scores in
tests/unit/test_eval_metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


def best_threshold(scores: F64, same: B) -> float:
    """The threshold maximising accuracy (accept when score >= threshold)."""
    order = np.sort(np.unique(scores))
    candidates = np.concatenate(
        [[order[0] - 1e-6], (order[:-1] + order[1:]) / 2, [order[-1] + 1e-6]]
    )
    accuracy = [np.mean((scores >= t) == same) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def ten_fold_accuracy(scores: F64, same: B, folds: npt.NDArray[np.int_]) -> tuple[float, float]:
    """LFW View 2: per fold, the threshold that is best on the other nine, tested on it."""
    results = []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        threshold = best_threshold(scores[train], same[train])
        results.append(np.mean((scores[test] >= threshold) == same[test]))
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
