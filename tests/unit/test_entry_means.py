"""Entries of several photos matched also by the mean of their photos (``seal --entry-means``):
the node adds that row only when the signed threshold says it counted it; ``seal`` counts every
photo as a row and each mean row as the photo rows it is worth, from the K = 1 tail."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.control import MatchingPolicy
from agent.core.matcher import Matcher
from central.thresholds import _settle, choose, mean_row_weight, row_tail
from lfrkit.console import UsageError
from protocol import errors
from protocol.entries import Entry
from protocol.watchlist import CALIBRATED, MatchThreshold, read_signed
from tests.conftest import Fleet
from tests.unit.test_watchlist_bundle import _resign, open_as_device

ROOT = Path(__file__).resolve().parents[2]


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    out: np.ndarray = a / np.linalg.norm(a)
    return out


def two_photo_list() -> list[Entry]:
    a, b = unit([1, 0.3, 0, 0]), unit([1, -0.3, 0, 0])
    return [
        Entry("WL-0", "wanted", None, np.stack([a, b])),
        Entry("WL-1", "wanted", None, unit([0, 0, 1, 0])[None]),
    ]


def test_the_mean_row_scores_an_entry_by_the_mean_of_its_photos_only_when_asked() -> None:
    probe = unit([1, 0, 0, 0])  # between the two photos: closer to their mean than to either
    plain, means = (
        Matcher(two_photo_list(), 0.99),
        Matcher(two_photo_list(), 0.99, entry_means=True),
    )
    assert (plain.rows, means.rows) == (3, 4)  # the one-photo entry gets no mean row
    assert plain.entry_scores(probe)[0] == pytest.approx(float(unit([1, 0.3, 0, 0])[0]))
    assert means.entry_scores(probe)[0] == pytest.approx(1.0)
    assert plain.match(probe) is None
    found = means.match(probe)
    assert found is not None and found.subject_ref == "WL-0"
    assert means.entry_scores(probe)[1] == plain.entry_scores(probe)[1]
    # Photos that cancel out have no mean direction: no row, not a NaN.
    opposite = [Entry("WL-2", "wanted", None, np.stack([unit([1, 0, 0, 0]), unit([-1, 0, 0, 0])]))]
    assert Matcher(opposite, 0.9, entry_means=True).rows == 2


def test_the_node_adds_mean_rows_only_when_the_signed_threshold_counted_them(fleet: Fleet) -> None:
    counted = MatchThreshold(0.8301, CALIBRATED, 1e-3, 3, 1000, None, True)
    plain = MatchThreshold(0.8301, CALIBRATED, 1e-3, 3, 1000)
    for threshold, config, added in (
        (counted, True, True),
        (plain, True, False),
        (counted, False, False),
    ):
        watchlist = open_as_device(fleet, fleet.bundle(threshold=threshold))
        photos = [len(e.embeddings) for e in watchlist.entries]
        assert max(photos) >= 2  # the test list has entries of several photos
        matcher = MatchingPolicy(entry_means=config).matcher(watchlist)
        assert matcher.rows == sum(photos) + (sum(n >= 2 for n in photos) if added else 0)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(means=st.booleans(), value=st.floats(0.5, 1.0))
def test_entry_means_round_trips_in_the_signed_header(
    fleet: Fleet, means: bool, value: float
) -> None:
    threshold = MatchThreshold(value, CALIBRATED, 1e-3, 3, 1000, None, means)
    got = open_as_device(fleet, fleet.bundle(threshold=threshold)).header.threshold
    assert got == threshold
    assert ("entry_means" in threshold.to_json()) is means


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ({"value": 0.8, "basis": "policy", "entry_means": True}, "policy threshold has no"),
        ({**MatchThreshold(0.83, CALIBRATED, 1e-3, 3, 10).to_json(), "entry_means": 1}, "true"),
    ],
)
def test_entry_means_on_a_policy_threshold_or_not_a_boolean_is_refused(
    fleet: Fleet, member: dict[str, Any], message: str
) -> None:
    def put(p: dict[str, Any]) -> None:
        p["threshold"] = member

    with pytest.raises(errors.BadEncoding, match=message):
        read_signed(_resign(fleet, fleet.bundle(), put), fleet.trust)
    with pytest.raises(ValueError, match="only a calibrated"):
        MatchThreshold(0.8, "policy", entry_means=True)


# -- sealing ------------------------------------------------------------------------------------


def accurate() -> tuple[str, dict[str, Any]]:
    profile = json.loads((ROOT / "models" / "MANIFEST.json").read_text())["profiles"]["accurate"]
    return profile["id"], profile["calibration_1n"]["thresholds"]


def test_a_mean_row_counts_as_more_photo_rows_the_less_coherent_its_photos() -> None:
    _, tables = accurate()
    xs, ys = row_tail(tables["1"])
    assert xs == sorted(xs) and all(b <= a for a, b in itertools.pairwise(ys))
    weights = [mean_row_weight((xs, ys), 0.83, c) for c in (1.0, 0.98, 0.96, 0.9)]
    assert weights[0] == 1.0 and weights == sorted(weights)
    # One photo at threshold x coherence: the K = 1 tail's rate there over its rate at 0.83.
    assert 2.0 < weights[1] < weights[2] < 20.0 < weights[3]


def test_seal_counts_photos_and_mean_rows_and_flags_them() -> None:
    sha, tables = accurate()
    singles = [(1, 1.0)] * 950
    one_row_each, _ = choose(sha, 1000)
    photos, why1 = choose(sha, 1000, photos=[(2, 0.96)] * 50 + singles)
    means, why2 = choose(sha, 1000, photos=[(2, 0.96)] * 50 + singles, entry_means=True)
    assert not photos.entry_means and means.entry_means
    assert one_row_each.value <= photos.value < means.value
    assert "1050 rows counted: 1050 photos)" in why1
    assert "1050 photos, 50 mean rows)" in why2 and "K=3" in why2
    assert means.list_size == 1000  # the header still states the entries
    value, counted, kept = _settle(tables["3"], tables["1"], 1050, [0.96] * 50, 1e-3)
    assert value == means.value and kept == [0.96] * 50
    assert counted == pytest.approx(1050 + 50 * mean_row_weight(row_tail(tables["1"]), value, 0.96))
    # Nothing to add (one photo each): no flag, so older nodes still open the bundle.
    plain, _ = choose(sha, 1000, photos=singles + [(1, 1.0)] * 50, entry_means=True)
    assert not plain.entry_means and plain.value == one_row_each.value
    with pytest.raises(UsageError, match="needs a calibrated threshold"):
        choose(sha, 1000, explicit=0.85, photos=singles, entry_means=True)
    with pytest.raises(UsageError, match="largest list"):
        choose(sha, 90_000, photos=[(2, 0.8)] * 90_000, entry_means=True)
