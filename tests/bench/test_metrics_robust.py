"""The label-noise and uncertainty helpers of ``make eval``, on scores whose answers are known
(pure numpy, fast; not marked: they run in every ``make test``)."""

from __future__ import annotations

import numpy as np

from tools.evaluation.metrics import (
    Searches,
    binomial_interval,
    bootstrap_at_fpir,
    bootstrap_gumbel,
    drop,
    gumbel_fit,
    gumbel_threshold,
    name_key,
    threshold_at_rate,
)


def _searches(nonmated: int, seed: int = 0) -> Searches:
    rng = np.random.default_rng(seed)
    mated = rng.normal(3.0, 1.0, 4000)
    return Searches(mated, np.ones(4000, bool), rng.normal(0.0, 1.0, nonmated))


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_searches() -> None:
    small_t, small_f = bootstrap_at_fpir(_searches(2_000), 1e-2, reps=300)
    large_t, _ = bootstrap_at_fpir(_searches(50_000), 1e-2, reps=300)
    for interval in (small_t, small_f, large_t):
        assert interval.low <= interval.estimate <= interval.high
    # The 99th percentile of N(0, 1) is 2.326: both intervals hold it, the larger set tighter.
    assert small_t.low < 2.326 < small_t.high and large_t.low < 2.326 < large_t.high
    assert large_t.high - large_t.low < (small_t.high - small_t.low) / 2
    # Repeatable: a seeded bootstrap gives the same report twice.
    assert bootstrap_at_fpir(_searches(2_000), 1e-2, reps=300) == (small_t, small_f)


def test_a_few_extreme_nonmated_scores_move_the_1e3_point_not_the_1e2_point() -> None:
    clean = _searches(4_000)
    # Eight "impostors" that are really the same person (they score like mates).
    noisy = Searches(
        clean.mated_score, clean.mated_rank1, np.concatenate([clean.nonmated_top, [3.5] * 8])
    )
    assert noisy.at_fpir(1e-3)[1] - clean.at_fpir(1e-3)[1] > 0.3
    assert abs(noisy.at_fpir(1e-2)[1] - clean.at_fpir(1e-2)[1]) < 0.05
    flagged = np.zeros(len(noisy.nonmated_top), bool)
    flagged[-8:] = True
    assert drop(noisy, flagged).at_fpir(1e-3) == clean.at_fpir(1e-3)


def test_wilson_interval() -> None:
    low, high = binomial_interval(0, 4000)
    assert low == 0.0 and 0.0009 < high < 0.001  # about 3.84 / 4004
    low, high = binomial_interval(50, 100)
    assert low < 0.5 < high and abs((low + high) / 2 - 0.5) < 1e-9


def test_name_key_finds_reordered_names_only() -> None:
    assert name_key("Sung_Hong_Choi") == name_key("Choi_Sung-hong")
    assert name_key("George_W_Bush") != name_key("George_Bush")
    assert name_key("Laura_Bush") != name_key("George_W_Bush")


def test_gumbel_fit_recovers_the_law_of_maxima_and_ignores_a_few_outliers() -> None:
    rng = np.random.default_rng(1)
    # The best of 1,000 standard normal impostor scores, 20,000 times.
    best = rng.normal(size=(20_000, 1_000)).max(axis=1)
    location, scale = gumbel_fit(best)
    # Empirical 1e-3 tail of these maxima, and the fit's: close, and if anything above it
    # (maxima of normal scores approach the Gumbel law slowly; the error is conservative).
    error = gumbel_threshold(location, scale, 1e-3) - np.quantile(best, 0.999)
    assert -0.05 < error < 0.15
    # A list ten times longer: the fit's 1e-2 point moves to the maxima of 10,000.
    longer = rng.normal(size=(2_000, 10_000)).max(axis=1)
    shifted = gumbel_threshold(location, scale, 1e-2, list_factor=10)
    assert -0.05 < shifted - np.quantile(longer, 0.99) < 0.15
    # Thirty mislabelled "strangers" (0.15 %) at mate-like scores barely move the fit...
    noisy = np.concatenate([best, np.full(30, 9.0)])
    moved = gumbel_threshold(*gumbel_fit(noisy), 1e-3) - gumbel_threshold(location, scale, 1e-3)
    assert abs(moved) < 0.06  # a quarter of the law's scale
    assert threshold_at_rate(noisy, 1e-3) == 9.0  # ...while they make the empirical point


def test_bootstrap_gumbel_brackets_its_estimate() -> None:
    threshold, fnir = bootstrap_gumbel(_searches(4_000), 1e-3, reps=200)
    assert threshold.low <= threshold.estimate <= threshold.high
    assert fnir.low <= fnir.estimate <= fnir.high
    assert 2.6 < threshold.estimate < 3.6  # N(0, 1): the 1e-3 point is 3.09
