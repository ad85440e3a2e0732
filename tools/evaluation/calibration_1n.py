"""1:N thresholds from impostor scores: the tail fit, the thresholds by list size, and the
held-out check. Pure numpy; ``models/evaluation/calibrate_1n.py`` feeds it embeddings and
``tests/unit/test_calibration_1n.py`` re-derives the stored thresholds from the stored tails.

Model. ``p(t)`` is the probability that one non-mated (stranger template, listed photo) pair
scores at least ``t``. Treating the N entries of a list as independent draws,
``FPIR(N, t) = 1 - (1 - p(t))^N``, so a target FPIR needs ``p = 1 - (1 - FPIR)^(1/N)``. Down to
``TAIL_P`` the empirical p is used; below it p is an exponential tail fitted (maximum
likelihood: the mean excess) to the pairs above the ``TAIL_P`` quantile. Scores are bounded
(cosine <= 1), so the true tail falls faster than exponential: the fit errs towards higher
thresholds (fewer false alerts, more misses). Strangers who resemble many entries make the
entries' scores for one probe correlated; for a given mean p that lowers FPIR (Jensen), so the
independence model errs the same way. What the model cannot see: a population unlike the
calibration faces (LFW: celebrities, press photos), or a camera's faces, whose impostor scores
may sit higher than photos'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

LIST_SIZES = (10, 100, 1_000, 10_000, 100_000)
FPIRS = (1e-2, 1e-3, 1e-4)
TAIL_P = 2e-3  # the exponential tail is fitted to the pairs above this quantile


def fpir_key(fpir: float) -> str:
    """The JSON key of an FPIR: ``1e-03``."""
    return f"{fpir:.0e}"


@dataclass(frozen=True)
class Tail:
    """The upper tail of the per-pair impostor scores: the highest ``len(scores)`` of ``pairs``."""

    pairs: int
    scores: F64  # descending

    @classmethod
    def from_scores(cls, impostor: F64, tail_p: float = TAIL_P) -> Tail:
        flat = np.asarray(impostor, dtype=np.float64).ravel()
        keep = max(50, math.ceil(tail_p * flat.size))
        top = np.sort(np.partition(flat, flat.size - keep)[flat.size - keep :])[::-1]
        return cls(int(flat.size), np.round(top, 5))

    @property
    def p_u(self) -> float:
        return len(self.scores) / self.pairs

    @property
    def u(self) -> float:
        return float(self.scores[-1])

    @property
    def beta(self) -> float:
        """Mean excess over ``u``: the exponential tail's scale."""
        return float(np.mean(self.scores - self.u))

    def p(self, t: float) -> float:
        """P(one impostor pair scores >= t)."""
        if t <= self.u:
            return float(np.count_nonzero(self.scores >= t)) / self.pairs
        return self.p_u * math.exp(-(t - self.u) / self.beta)

    def quantile(self, p: float) -> float:
        """The score exceeded by a share ``p`` of pairs."""
        if p >= self.p_u:
            k = max(1, round(p * self.pairs))
            return float(self.scores[min(k, len(self.scores)) - 1])
        return self.u + self.beta * math.log(self.p_u / p)


def pair_p(n: int, fpir: float) -> float:
    """The per-pair p that gives ``fpir`` over ``n`` independent entries."""
    return -math.expm1(math.log1p(-fpir) / n)


def predicted_fpir(tail: Tail, n: int, t: float) -> float:
    return -math.expm1(n * math.log1p(-tail.p(t)))


def thresholds(tail: Tail) -> dict[str, dict[str, float]]:
    """{list size: {fpir key: threshold}} over LIST_SIZES x FPIRS (4 decimals, rounded up)."""
    return {
        str(n): {fpir_key(f): math.ceil(tail.quantile(pair_p(n, f)) * 1e4) / 1e4 for f in FPIRS}
        for n in LIST_SIZES
    }


def templates(unit: F64, k: int) -> F64:
    """Rows of ``k`` consecutive unit embeddings averaged and renormalised (the track template)."""
    usable = (len(unit) // k) * k
    mean = unit[:usable].reshape(-1, k, unit.shape[1]).mean(axis=1)
    out: F64 = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    return out


def measured_fpir(
    scores: F64,
    probe_ids: npt.NDArray[np.int64],
    gallery_ids: npt.NDArray[np.int64],
    *,
    n: int,
    t: float,
    rounds: int,
    seed: int,
) -> tuple[int, int]:
    """(false alerts, non-mated searches) over ``rounds`` random lists of ``n`` of the gallery's
    photos: each list is searched by every probe whose identity is not on it."""
    rng = np.random.default_rng(seed)
    alerts = searches = 0
    for _ in range(rounds):
        cols = rng.choice(len(gallery_ids), size=n, replace=False)
        listed = np.isin(probe_ids, gallery_ids[cols])
        top = scores[~listed][:, cols].max(axis=1)
        alerts += int(np.count_nonzero(top >= t))
        searches += int(top.size)
    return alerts, searches
