"""The evaluation metrics on scores whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.evaluation.metrics import (
    best_threshold,
    search,
    tar_at_far,
    ten_fold_accuracy,
    threshold_at_rate,
)


def test_ten_fold_accuracy_on_separable_and_noisy_scores() -> None:
    rng = np.random.default_rng(0)
    same = np.tile([True] * 300 + [False] * 300, 10)
    folds = np.repeat(np.arange(10), 600)
    perfect = np.where(same, 0.8, 0.1) + rng.normal(0, 0.01, same.size)
    assert ten_fold_accuracy(perfect, same, folds) == (1.0, 0.0)
    noisy = np.where(same, 0.6, 0.2) + rng.normal(0, 0.2, same.size)
    mean, std = ten_fold_accuracy(noisy, same, folds)
    # Two unit-variance-0.2 Gaussians 0.4 apart: Bayes accuracy Phi(1) = 0.841.
    assert 0.80 < mean < 0.88 and 0 < std < 0.05


@given(st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=1, max_size=60))
def test_best_threshold_is_the_best_cut_and_keeps_ties_together(
    rows: list[tuple[int, bool]],
) -> None:
    scores = np.array([s / 4 for s, _ in rows])  # coarse scores: many ties
    same = np.array([y for _, y in rows])

    def accuracy(cut: float) -> float:
        return float(np.mean((scores > cut) == same))

    threshold = best_threshold(scores, same)
    values = np.unique(scores)
    # Every cut there is: accept all, or accept what is above one of the distinct scores.
    assert accuracy(threshold) == max(accuracy(c) for c in [values[0] - 1, *values])
    assert not np.any(scores == threshold)


def test_tar_at_far_counts_false_accepts_exactly() -> None:
    impostors = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    genuine = np.array([0.9985, 0.9995, 0.5])
    scores = np.concatenate([genuine, impostors])
    same = np.array([True] * 3 + [False] * 1000)
    tar, threshold = tar_at_far(scores, same, 1e-3)
    assert threshold == 0.998  # exactly one impostor (0.999) above it
    assert np.mean(impostors > threshold) <= 1e-3
    assert tar == 2 / 3
    assert threshold_at_rate(impostors, 0.0) == 0.999


def test_identification_fnir_fpir() -> None:
    gallery = np.eye(4)
    ids = np.array([10, 11, 12, 13])
    probes = np.array(
        [
            [0.9, 0.1, 0, 0],
            [0.2, 0.8, 0, 0],
            [0.6, 0, 0.7, 0],  # mated
            [0, 0, 0, 0.1],
            [0.3, 0.3, 0.3, 0],
        ]
    )  # not enrolled
    probe_ids = np.array([10, 11, 13, -1, -1])  # the third probe's mate (13) is not rank 1
    results = search(gallery, ids, probes, probe_ids)
    assert list(results.mated_rank1) == [True, True, False]
    assert results.fnir(0.5) == pytest.approx(1 / 3)
    assert results.fpir(0.2) == 0.5 and results.fpir(0.35) == 0.0
    fnir, threshold = results.at_fpir(0.0)
    assert threshold == 0.3 and fnir == pytest.approx(1 / 3)
    fpir, fnir_curve = results.det(10)
    assert fpir.shape == fnir_curve.shape == (10,)
