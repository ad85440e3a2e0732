"""The 1:N calibration (issue 16 §2): the shipped thresholds re-derive from the stored impostor
tails, they belong to the profiles as they are now, the tail model behaves, and
``lfr-watchlist seal`` picks from them by list size."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.thresholds import choose, interpolate
from lfrkit.console import UsageError
from protocol.watchlist import CALIBRATED, POLICY
from tools.evaluation.calibration_1n import (
    FPIRS,
    LIST_SIZES,
    Tail,
    by_coherence,
    fpir_key,
    pair_p,
    predicted_fpir,
    templates,
    thresholds,
)

MODELS = Path(__file__).resolve().parents[2] / "models"


def _stored() -> tuple[dict[str, Any], dict[str, Any]]:
    calib = json.loads((MODELS / "calibration_1n.json").read_text())
    manifest = json.loads((MODELS / "MANIFEST.json").read_text())
    return calib, manifest


def test_the_shipped_thresholds_re_derive_from_the_stored_tails() -> None:
    """`make -C models calibrate` is reproducible from what it stored: the same tails give the
    same table, and MANIFEST.json carries that table for the profile it was made with."""
    calib, manifest = _stored()
    assert set(calib["profiles"]) == set(manifest["profiles"])
    for name, profile in calib["profiles"].items():
        shipped = manifest["profiles"][name]
        assert profile["id"] == shipped["id"], f"{name}: calibration is stale (make calibrate)"
        assert shipped["calibration_1n"]["profile_id"] == shipped["id"]
        for k, fit in profile["k"].items():
            tail = Tail(fit["pairs"], np.array(fit["tail_scores"]))
            assert thresholds(tail) == fit["thresholds"]
            assert shipped["calibration_1n"]["thresholds"][k] == fit["thresholds"]
            for n in LIST_SIZES:
                row = [fit["thresholds"][str(n)][fpir_key(f)] for f in FPIRS]
                assert row == sorted(row)  # a lower FPIR needs a higher threshold


def test_the_thresholds_by_coherence_re_derive_from_the_stored_tails() -> None:
    """calibrate_coherence.py's bins: the same tails and bin starts give the same (monotone)
    thresholds, and MANIFEST.json carries them; the held-out check is recorded beside them."""
    calib, manifest = _stored()
    for name, profile in calib["profiles"].items():
        shipped = manifest["profiles"][name]["calibration_1n"].get("by_coherence", {})
        for k, fit in profile["k"].items():
            if "by_coherence" not in fit:
                assert k not in shipped
                continue
            bins = fit["by_coherence"]["bins"]
            tails = [Tail(b["pairs"], np.array(b["tail_scores"])) for b in bins]
            again = by_coherence(tails, [b["from"] for b in bins])
            assert [b.to_json() for b in again] == [
                {"from": b["from"], "thresholds": b["thresholds"]} for b in bins
            ]
            assert shipped[k] == [b.to_json() for b in again]
            assert fit["by_coherence"]["held_out"]


def test_the_held_out_check_is_recorded_for_every_profile_and_k() -> None:
    calib, _ = _stored()
    for profile in calib["profiles"].values():
        for fit in profile["k"].values():
            assert {(h["n"], h["fpir_target"]) for h in fit["held_out"]} >= {(100, "1e-02")}
            for h in fit["held_out"]:
                assert h["searches"] > 0 and h["false_alerts"] <= h["searches"]


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.01, 0.1), seed=st.integers(0, 2**16))
def test_an_exponential_tail_is_recovered_where_it_is_extrapolated(scale: float, seed: int) -> None:
    """Scores whose upper tail is exactly exponential: the fitted quantile three decades below
    the data is within 15 % of the true one (in units of the tail's scale)."""
    rng = np.random.default_rng(seed)
    scores = 0.3 + rng.exponential(scale, 200_000)
    tail = Tail.from_scores(scores)
    p = 1e-8  # P(0.3 + Exp(scale) >= t) = exp(-(t - 0.3) / scale)
    truth = 0.3 + scale * math.log(1 / p)
    assert abs(tail.quantile(p) - truth) < 0.15 * scale * math.log(1 / p)


def test_thresholds_meet_their_fpir_under_the_model() -> None:
    rng = np.random.default_rng(3)
    tail = Tail.from_scores(rng.normal(0.5, 0.05, 500_000))
    table = thresholds(tail)
    for n in LIST_SIZES:
        for f in FPIRS:
            t = table[str(n)][fpir_key(f)]
            assert predicted_fpir(tail, n, t) <= f * 1.001  # rounded up: never above target
            assert predicted_fpir(tail, n, t - 2e-4) > f * 0.5  # and not far below it
    assert pair_p(1, 1e-3) == pytest.approx(1e-3)
    assert pair_p(1000, 1e-3) == pytest.approx(1e-6, rel=1e-3)


def test_templates_are_unit_means_of_k_consecutive_rows() -> None:
    rows = np.eye(4)
    t = templates(rows, 2)
    assert t.shape == (2, 4)
    assert np.allclose(t[0], [math.sqrt(0.5), math.sqrt(0.5), 0, 0])


TABLE = {"10": {"1e-03": 0.70}, "100": {"1e-03": 0.75}, "1000": {"1e-03": 0.80}}


def test_interpolation_by_list_size() -> None:
    assert interpolate(TABLE, 3, 1e-3) == 0.70
    assert interpolate(TABLE, 100, 1e-3) == 0.75
    assert interpolate(TABLE, 1000, 1e-3) == 0.80
    assert 0.75 < interpolate(TABLE, 316, 1e-3) <= 0.7751  # halfway in log N
    with pytest.raises(ValueError, match="largest list"):
        interpolate(TABLE, 1001, 1e-3)
    with pytest.raises(ValueError, match=r"no calibration at FPIR 0\.01"):
        interpolate(TABLE, 10, 1e-2)


def test_seal_picks_the_calibrated_threshold_for_the_list_and_never_below_1_to_1() -> None:
    _, manifest = _stored()
    accurate = manifest["profiles"]["accurate"]
    table = accurate["calibration_1n"]["thresholds"]["3"]
    t, why = choose(accurate["id"], 1680, fpir=1e-3, k=3)
    assert t.basis == CALIBRATED and (t.fpir, t.k, t.list_size) == (1e-3, 3, 1680)
    assert table["1000"]["1e-03"] <= t.value <= table["10000"]["1e-03"]
    assert "1680 entries at FPIR 0.001, K=3" in why
    small, _ = choose(accurate["id"], 4, fpir=1e-2, k=3)
    assert small.value >= accurate["recommended_threshold"]
    policy, _ = choose(accurate["id"], 1680, explicit=0.9)
    assert (policy.basis, policy.value) == (POLICY, 0.9)
    with pytest.raises(UsageError, match="below the profile's 1:1 threshold"):
        choose(accurate["id"], 10, explicit=0.5)
    with pytest.raises(UsageError, match="largest list"):
        choose(accurate["id"], 100_001)
    with pytest.raises(UsageError, match="--threshold"):
        choose("e" * 64, 10)
