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

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

LIST_SIZES = (10, 100, 1_000, 10_000, 100_000)
FPIRS = (1e-2, 1e-3, 1e-4)
TAIL_P = 2e-3  # the exponential tail is fitted to the pairs above this quantile


def half(name: str) -> int:
    """0 (calibration) or 1 (held out) for an identity the pairs file names: the first byte of
    sha256(name), even or odd. The walk-through draws only from the held-out half."""
    return hashlib.sha256(name.encode()).digest()[0] & 1


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
    t: float | F64,
    rounds: int,
    seed: int,
) -> tuple[int, int]:
    """(false alerts, non-mated searches) over ``rounds`` random lists of ``n`` of the gallery's
    photos: each list is searched by every probe whose identity is not on it. ``t``: one
    threshold, or one per probe (a template's, by its coherence)."""
    rng = np.random.default_rng(seed)
    per_probe = np.broadcast_to(np.asarray(t, dtype=np.float64), (len(probe_ids),))
    alerts = searches = 0
    for _ in range(rounds):
        cols = rng.choice(len(gallery_ids), size=n, replace=False)
        listed = np.isin(probe_ids, gallery_ids[cols])
        top = scores[~listed][:, cols].max(axis=1)
        alerts += int(np.count_nonzero(top >= per_probe[~listed]))
        searches += int(top.size)
    return alerts, searches


# Threshold by the template's coherence c = |mean of its K unit embeddings|. A template's score
# against an entry g is mean_i(x_i . g) / c: averaging K faces inflates every score by 1/c and
# narrows its spread by an amount that depends on how different the faces are. K frames of one
# face (video) have c near 1 and score like one face; K different photos have c near 0.85 and
# need the higher K = 3 threshold. So the calibration bins stranger templates by c and fits a
# tail per bin.
COHERENCE_BINS = 6


def coherence(unit: F64) -> F64:
    """(T, K, D) unit embeddings -> (T,) coherence of each template."""
    out: F64 = np.linalg.norm(unit.mean(axis=1), axis=1)
    return out


def template_of(unit: F64) -> F64:
    """(T, K, D) unit embeddings -> (T, D) templates (the mean, renormalised)."""
    mean = unit.mean(axis=1)
    out: F64 = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    return out


def coherence_edges(c: F64, bins: int = COHERENCE_BINS) -> list[float]:
    """Bin starts: 0, then the calibration templates' coherence quantiles 1/bins, 2/bins, ...,
    rounded down to 0.005 (equal-count bins, so each has a tail to fit)."""
    qs = np.quantile(np.asarray(c, dtype=np.float64), np.arange(1, bins) / bins)
    return [0.0, *sorted({math.floor(float(q) * 200) / 200 for q in qs} - {0.0})]


def bin_index(c: F64, edges: list[float]) -> npt.NDArray[np.int64]:
    """The bin of each coherence: the last start at or below it."""
    out: npt.NDArray[np.int64] = np.searchsorted(np.asarray(edges), c, side="right") - 1
    return np.maximum(out, 0)


@dataclass(frozen=True)
class CoherenceBin:
    start: float  # the lowest coherence of the bin (the next bin's start is its end)
    thresholds: dict[str, dict[str, float]]  # {N: {fpir key: threshold}}

    def to_json(self) -> dict[str, object]:
        return {"from": self.start, "thresholds": self.thresholds}


def by_coherence(tails: list[Tail], edges: list[float]) -> list[CoherenceBin]:
    """The thresholds of each bin, made monotone the conservative way: a bin's threshold is
    raised to any more coherent bin's (never lowered), so it never rises with coherence."""
    tables = [thresholds(t) for t in tails]
    for i in reversed(range(len(tables) - 1)):
        for n, row in tables[i].items():
            for f in row:
                row[f] = max(row[f], tables[i + 1][n][f])
    return [CoherenceBin(lo, table) for lo, table in zip(edges, tables, strict=True)]


def threshold_for(bins: list[CoherenceBin], c: F64, n: int, fpir: float) -> F64:
    """Each template's threshold by its coherence, for a list of ``n`` (a calibrated size)."""
    per_bin = np.array([b.thresholds[str(n)][fpir_key(fpir)] for b in bins])
    out: F64 = per_bin[bin_index(c, [b.start for b in bins])]
    return out
