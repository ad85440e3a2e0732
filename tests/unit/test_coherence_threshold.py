"""The threshold by a track template's coherence (issue 16): a template of K near-identical
video frames is judged like one face (the K = 1 end of the signed schedule), a template of K
different faces at the K threshold; the schedule travels in the signed header and is checked
there; ``lfr-watchlist seal`` takes it from the calibration, never below the K = 1 or the 1:1
threshold."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.control import MatchingPolicy
from agent.core.matcher import Matcher
from agent.core.template import Template
from agent.pipeline import Rule
from agent.synthetic_vision import colour_embedding
from central.thresholds import by_coherence, interpolate
from protocol import errors
from protocol.encoding import b64url_decode, b64url_encode
from protocol.entries import Entry
from protocol.watchlist import CALIBRATED, MatchThreshold, check_bins, read_signed
from tests.conftest import NOW, Fleet
from tests.unit.test_track_decision import (
    STEP,
    ScriptedEmbedder,
    lookalike,
    pause,
    stage,
    unit,
    walk,
)
from tests.unit.test_watchlist_bundle import _resign, open_as_device
from tools.evaluation.calibration_1n import (
    Tail,
    bin_index,
    coherence,
    coherence_edges,
    template_of,
    threshold_for,
)
from tools.evaluation.calibration_1n import by_coherence as fit_by_coherence

# The accurate profile's figures at 1,000 entries, FPIR 1e-3: K = 3 0.8301, K = 1 0.8025.
BINS = ((0.0, 0.8301), (0.9, 0.82), (0.97, 0.8025))
SCHEDULE = MatchThreshold(0.8301, CALIBRATED, 1e-3, 3, 1000, BINS)


def listed(count: int = 2) -> list[Entry]:
    return [Entry(f"WL-{i}", "wanted", None, colour_embedding(i)[None, :]) for i in range(count)]


def test_the_template_coherence_is_the_norm_of_the_mean_of_its_unit_faces() -> None:
    t: Template[None] = Template(3)
    e = colour_embedding(1)
    for _ in range(3):
        t.add(5 * e, 0.5)  # unit-normalised on the way in
    assert t.coherence() == pytest.approx(1.0)
    different: Template[None] = Template(3)
    axes = np.eye(len(e), dtype=np.float32)
    for i in range(3):
        different.add(axes[i], 0.5)  # orthogonal: |mean| = 1/sqrt(3)
    assert different.coherence() == pytest.approx(1 / np.sqrt(3), abs=1e-6)
    # The identity behind the schedule: score of the template = mean of the scores / c.
    g = unit(np.arange(1.0, len(e) + 1))
    rows = axes[:3]
    assert float(different.vector() @ g) == pytest.approx(
        float((rows @ g).mean()) / different.coherence(), abs=1e-6
    )


def test_the_matcher_judges_a_template_at_its_coherences_threshold() -> None:
    entries = listed()
    entries.append(Entry("WL-9", "wanted", 0.9, colour_embedding(9)[None, :]))
    m = Matcher(entries, 0.8301, by_coherence=BINS)
    assert [m.threshold(0, c) for c in (None, 0.5, 0.9, 0.95, 0.97, 1.0)] == pytest.approx(
        [0.8301, 0.8301, 0.82, 0.82, 0.8025, 0.8025]
    )
    assert m.threshold(2, 1.0) == pytest.approx(0.9)  # a per-entry threshold still raises it
    probe = lookalike(colour_embedding(0), 0.81, 3)  # between the K = 1 and K = 3 values
    assert m.match(probe) is None and m.match(probe, coherence=0.88) is None
    got = m.match(probe, coherence=0.99)
    assert got is not None and got.threshold == pytest.approx(0.8025)
    # Without a schedule (an older bundle, or [matching] coherence = false): the value.
    assert Matcher(entries, 0.8301).match(probe, coherence=0.99) is None


def test_a_local_floor_raises_every_bin_and_coherence_false_turns_the_schedule_off() -> None:
    watchlist: Any = type("W", (), {})()
    watchlist.header = type("H", (), {"threshold": SCHEDULE})()
    assert MatchingPolicy(local_floor=0.81).by_coherence(watchlist) == (
        (0.0, 0.8301),
        (0.9, 0.82),
        (0.97, 0.81),
    )
    assert MatchingPolicy(coherence=False).by_coherence(watchlist) is None


def near_identical(target: np.ndarray, score: float, seed: int, count: int = 40) -> list[Any]:
    """Video frames of one photo: the same face, each a little off (coherence near 1)."""
    base = lookalike(target, score, seed)
    rng = np.random.default_rng(seed)
    return [unit(base + 0.05 * unit(rng.normal(size=base.shape))) for _ in range(count)]


def test_a_listed_person_with_a_coherent_template_alerts_once_per_appearance() -> None:
    """Their frames score 0.81: under the K = 3 value 0.8301, over the coherent bin's 0.8025."""
    frames = near_identical(colour_embedding(1), 0.81, 7)
    schedule = Matcher(listed(), 0.8301, by_coherence=BINS)
    pipeline = stage(Rule.TRACK, ScriptedEmbedder(frames + frames))
    first = walk(pipeline, schedule, 1, 20, NOW)
    pause(pipeline, schedule, NOW + 20 * STEP)  # the track ends
    assert [a.match.subject_ref for a in first] == ["WL-1"]
    assert first[0].match.threshold == pytest.approx(0.8025)
    second = walk(pipeline, schedule, 1, 20, NOW + 40 * STEP)
    assert [a.match.subject_ref for a in second] == ["WL-1"]
    # The same person judged at the fixed K = 3 value is missed: what the schedule fixes.
    fixed = stage(Rule.TRACK, ScriptedEmbedder(frames))
    assert walk(fixed, Matcher(listed(), 0.8301), 1, 20, NOW) == []


def test_a_stranger_is_judged_at_the_threshold_of_their_templates_coherence() -> None:
    """A stranger whose near-identical frames each pass the K = 3 threshold is judged at the
    coherent bin's (here they alert: at K = 1 that is what the calibration counts as a false
    alert at the target FPIR); one whose three different faces average just under the K = 1
    value but whose template scores over the coherent bin's threshold raises nothing, as its
    template's coherence puts it in the K = 3 bin."""
    wanted = colour_embedding(1)
    schedule = Matcher(listed(), 0.8301, by_coherence=BINS)
    coherent = stage(Rule.TRACK, ScriptedEmbedder(near_identical(wanted, 0.84, 11)))
    (alert,) = walk(coherent, schedule, 2, 10, NOW)
    assert alert.match.threshold == pytest.approx(0.8025) and alert.match.score > 0.8301
    # Three faces scoring 0.72 against WL-1, otherwise unlike each other: coherence ~0.87,
    # template score ~0.72 / 0.87 = 0.83 > 0.8025, but under the K = 3 bin's 0.8301 + margin.
    # w and four orthonormal directions: shared noise s and each face's own o_i (n_i . n_j = 0.3).
    basis, _ = np.linalg.qr(
        np.column_stack([wanted, np.random.default_rng(5).normal(size=(len(wanted), 4))])
    )
    w, shared, own = basis[:, 0] * np.sign(basis[:, 0] @ wanted), basis[:, 1], basis[:, 2:].T
    spread = [
        unit(0.72 * w + np.sqrt(1 - 0.72**2) * (np.sqrt(0.3) * shared + np.sqrt(0.7) * o))
        for o in own
    ]
    t: Template[None] = Template(3)
    for v in spread:
        t.add(v, 0.5)
    assert t.coherence() < 0.9 and 0.8025 < float(t.vector() @ wanted) < 0.8301
    different = stage(Rule.TRACK, ScriptedEmbedder(spread))
    assert walk(different, schedule, 2, 10, NOW) == []


# -- the signed header ------------------------------------------------------------------------

bins_strategy = st.lists(
    st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 1.0)), min_size=0, max_size=6
).map(
    lambda raw: (
        (0.0, 0.9),
        *zip(
            sorted({round(c, 4) for c, _ in raw} - {0.0}),
            sorted((min(t, 0.9) for _, t in raw), reverse=True),
            strict=False,
        ),
    )
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bins=bins_strategy)
def test_a_schedule_round_trips_in_the_signed_header(fleet: Fleet, bins: Any) -> None:
    threshold = MatchThreshold(0.9, CALIBRATED, 1e-3, 3, 1000, tuple(bins))
    assert check_bins(threshold.by_coherence or (), 0.9) is None
    watchlist = open_as_device(fleet, fleet.bundle(threshold=threshold))
    assert watchlist.header.threshold == threshold


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
bin_lists = st.one_of(
    st.lists(st.lists(st.floats(-0.5, 1.5), min_size=2, max_size=2), max_size=40),
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)).map(list), max_size=5),
    json_values,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.floats(0.01, 1.0), bins=bin_lists)
def test_any_signed_schedule_parses_to_a_valid_one_or_is_refused(
    fleet: Fleet, value: float, bins: Any
) -> None:
    """The parser of by_coherence behind valid signatures: a schedule that keeps its
    invariants, or a BadEncoding / Oversize naming the threshold; nothing else."""

    def put(p: dict[str, Any]) -> None:
        p["threshold"] = {
            "value": value,
            "basis": CALIBRATED,
            "fpir": 1e-3,
            "k": 3,
            "list_size": 1000,
            "by_coherence": bins,
        }

    try:
        t = read_signed(_resign(fleet, fleet.bundle(), put), fleet.trust).header.threshold
    except (errors.BadEncoding, errors.Oversize) as exc:
        assert "threshold" in str(exc)
        return
    assert t.by_coherence is not None and check_bins(t.by_coherence, t.value) is None
    assert t.by_coherence[0] == (0.0, t.value)
    assert all(b[1] <= a[1] and b[0] > a[0] for a, b in itertools.pairwise(t.by_coherence))


def test_a_schedule_on_a_policy_threshold_or_rising_with_coherence_is_refused(
    fleet: Fleet,
) -> None:
    for threshold, message in (
        ({"value": 0.8, "basis": "policy", "by_coherence": [[0, 0.8]]}, "policy"),
        (
            {**SCHEDULE.to_json(), "by_coherence": [[0, 0.8301], [0.9, 0.85]]},
            "never rise",
        ),
        ({**SCHEDULE.to_json(), "by_coherence": [[0.1, 0.8301]]}, "start at coherence 0"),
        ({**SCHEDULE.to_json(), "by_coherence": [[0, 0.8301], [0.9]]}, "coherence, threshold"),
    ):

        def put(p: dict[str, Any], t: dict[str, Any] = threshold) -> None:
            p["threshold"] = t

        with pytest.raises(errors.BadEncoding, match=message):
            read_signed(_resign(fleet, fleet.bundle(), put), fleet.trust)


def test_a_schedule_reaching_below_the_devices_1_to_1_threshold_is_refused(fleet: Fleet) -> None:
    data = fleet.bundle(threshold=SCHEDULE)

    def as_device(min_threshold: float) -> float:
        return open_as_device(fleet, data, min_threshold=min_threshold).header.threshold.lowest

    assert as_device(0.8025) == 0.8025
    with pytest.raises(errors.ThresholdTooLow, match="below"):
        as_device(0.81)  # the value 0.8301 is above it, the coherent bin 0.8025 is not


def test_a_tampered_schedule_breaks_the_signatures(fleet: Fleet) -> None:
    data = json.loads(fleet.bundle(threshold=SCHEDULE))
    payload = json.loads(b64url_decode(data["payload"], "payload"))
    payload["threshold"]["by_coherence"][-1][1] = 0.71
    data["payload"] = b64url_encode(json.dumps(payload).encode())
    with pytest.raises(errors.InsufficientSignatures):
        open_as_device(fleet, json.dumps(data).encode())


def test_a_bundle_without_a_schedule_still_opens_and_matches_at_its_value(fleet: Fleet) -> None:
    plain = MatchThreshold(0.8301, CALIBRATED, 1e-3, 3, 1000)
    watchlist = open_as_device(fleet, fleet.bundle(threshold=plain))
    assert watchlist.header.threshold.by_coherence is None
    assert "by_coherence" not in watchlist.header.threshold.to_json()
    assert MatchingPolicy().by_coherence(watchlist) is None


# -- sealing and calibration --------------------------------------------------------------------


def table(value: float) -> dict[str, dict[str, float]]:
    return {str(n): {"1e-03": value + 0.01 * i} for i, n in enumerate((10, 100, 1000))}


def test_seal_never_goes_below_the_k1_or_1_to_1_threshold_and_never_rises() -> None:
    one = table(0.80)
    calib: dict[str, Any] = {
        "thresholds": {"1": one, "3": table(0.83)},
        "by_coherence": {
            "3": [
                {"from": 0.0, "thresholds": table(0.84)},
                {"from": 0.9, "thresholds": table(0.845)},  # rises: raised bin 0 to it
                {"from": 0.97, "thresholds": table(0.70)},  # below K = 1: raised to it
            ]
        },
    }
    bins = by_coherence(calib, 3, 1000, 1e-3, 0.706)
    assert bins is not None
    assert [c for c, _ in bins] == [0.0, 0.9, 0.97]
    assert [t for _, t in bins] == pytest.approx([0.865, 0.865, 0.82])
    assert bins[-1][1] == interpolate(one, 1000, 1e-3)
    assert by_coherence(calib, 3, 1000, 1e-3, 0.9) == ((0.0, 0.9), (0.9, 0.9), (0.97, 0.9))
    assert by_coherence({"thresholds": calib["thresholds"]}, 3, 1000, 1e-3, 0.706) is None


def test_the_calibration_bins_by_coherence_and_fits_a_monotone_schedule() -> None:
    rng = np.random.default_rng(0)
    dim = 24
    # Video-like templates (one face, small noise) and templates of three different faces.
    faces = rng.normal(size=(600, dim))
    video = np.stack([faces[i] + 0.1 * rng.normal(size=(3, dim)) for i in range(300)])
    mixed = np.stack([faces[300 + 3 * j : 303 + 3 * j] for j in range(100)])
    unit_rows = np.concatenate([video, mixed])
    unit_rows /= np.linalg.norm(unit_rows, axis=2, keepdims=True)
    c = coherence(unit_rows)
    assert c[:300].min() > 0.95 and c[300:].max() < 0.8
    edges = coherence_edges(c, 3)
    assert edges[0] == 0.0 and edges == sorted(edges) and len(edges) <= 3
    which = bin_index(c, edges)
    gallery = rng.normal(size=(200, dim))
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = template_of(unit_rows) @ gallery.T
    tails = [Tail.from_scores(scores[which == i]) for i in range(len(edges))]
    bins = fit_by_coherence(tails, edges)
    for n in ("10", "1000"):
        values = [b.thresholds[n]["1e-03"] for b in bins]
        assert values == sorted(values, reverse=True)  # never rises with coherence
    per_template = threshold_for(bins, c, 1000, 1e-3)
    assert per_template.shape == c.shape
    assert per_template[which == 0].min() == bins[0].thresholds["1000"]["1e-03"]


def test_the_schedule_is_on_by_default_and_matching_coherence_false_turns_it_off() -> None:
    from pathlib import Path

    from agent.app import matching_policy
    from agent.config import ConfigError, parse_config
    from tests.unit.test_agent_edges import MINIMAL

    assert matching_policy(parse_config(MINIMAL, Path("a.toml"))).coherence
    off = parse_config(MINIMAL + "[matching]\ncoherence = false\n", Path("a.toml"))
    assert not matching_policy(off).coherence
    with pytest.raises(ConfigError, match=r"matching\.coherence"):
        parse_config(MINIMAL + "[matching]\ncoherence = 'no'\n", Path("a.toml"))
