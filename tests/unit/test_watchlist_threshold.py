"""The match threshold in the signed watchlist header (issue 16 §2): it round-trips, a bundle
without one, with a lower one than the device's 1:1 threshold, or with one calibrated for a
shorter list is refused with its own reason, and tampering with it breaks the signatures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli import main as agent_main
from protocol import errors
from protocol.encoding import b64url_decode, b64url_encode
from protocol.watchlist import (
    CALIBRATED,
    POLICY,
    MatchThreshold,
    read_signed,
)
from tests.conftest import EMBEDDER, NOW, Fleet, make_entries
from tests.unit.test_cli_foundation import enrolled, install, seal  # noqa: F401 - fixture
from tests.unit.test_watchlist_bundle import _resign, open_as_device

calibrated = st.builds(
    MatchThreshold,
    value=st.floats(0.0, 1.0, exclude_min=True),
    basis=st.just(CALIBRATED),
    fpir=st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
    k=st.integers(1, 64),
    list_size=st.integers(3, 10_000_000),  # the test bundles hold 3 entries
)
policy = st.builds(
    MatchThreshold, value=st.floats(0.0, 1.0, exclude_min=True), basis=st.just(POLICY)
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(threshold=st.one_of(calibrated, policy))
def test_the_threshold_round_trips_in_the_signed_header(
    fleet: Fleet, threshold: MatchThreshold
) -> None:
    watchlist = open_as_device(fleet, fleet.bundle(threshold=threshold))
    assert watchlist.header.threshold == threshold


def test_a_bundle_without_a_threshold_is_refused(fleet: Fleet) -> None:
    def drop(p: dict[str, Any]) -> None:
        del p["threshold"]

    with pytest.raises(errors.ThresholdMissing, match="no match threshold"):
        open_as_device(fleet, _resign(fleet, fleet.bundle(), drop))


def test_a_format_1_bundle_is_refused_as_having_no_threshold(fleet: Fleet) -> None:
    """Old bundles (lfr-watchlist/1) are refused, not matched at a 1:1 value: re-seal them."""

    def old(p: dict[str, Any]) -> None:
        del p["threshold"]
        p["format"] = "lfr-watchlist/1"

    with pytest.raises(errors.ThresholdMissing, match="re-seal"):
        open_as_device(fleet, _resign(fleet, fleet.bundle(), old))


def test_a_threshold_below_the_profiles_1_to_1_threshold_is_refused(fleet: Fleet) -> None:
    data = fleet.bundle(threshold=MatchThreshold(0.6, POLICY))

    def as_device(min_threshold: float) -> float:
        return open_as_device(fleet, data, min_threshold=min_threshold).header.threshold.value

    assert as_device(0.6) == 0.6
    with pytest.raises(errors.ThresholdTooLow, match=r"0\.6000 \(policy\) is below .* 0\.7060"):
        as_device(0.706)


def test_a_threshold_calibrated_for_a_shorter_list_is_refused(fleet: Fleet) -> None:
    short = MatchThreshold(0.8, CALIBRATED, 1e-3, 3, 2)
    with pytest.raises(errors.ThresholdTooLow, match="fewer entries than its 3"):
        open_as_device(fleet, fleet.bundle(threshold=short, entries=make_entries(count=3)))


def test_a_tampered_threshold_breaks_the_signatures(fleet: Fleet) -> None:
    data = json.loads(fleet.bundle(threshold=MatchThreshold(0.8, POLICY)))
    payload = json.loads(b64url_decode(data["payload"], "payload"))
    payload["threshold"]["value"] = 0.1
    data["payload"] = b64url_encode(json.dumps(payload).encode())
    with pytest.raises(errors.InsufficientSignatures):
        open_as_device(fleet, json.dumps(data).encode())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)
threshold_objects = (
    st.fixed_dictionaries(
        {},
        optional={
            "value": st.one_of(st.floats(-2, 2), json_values),
            "basis": st.one_of(st.sampled_from([CALIBRATED, POLICY, ""]), json_values),
            "fpir": st.one_of(st.floats(-1, 2), json_values),
            "k": st.one_of(st.integers(-2, 70), json_values),
            "list_size": st.one_of(st.integers(-2, 10**8), json_values),
        },
    )
    | json_values
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(obj=threshold_objects)
def test_any_signed_threshold_object_parses_to_a_valid_threshold_or_is_refused(
    fleet: Fleet, obj: Any
) -> None:
    """The parser behind valid signatures: a MatchThreshold that keeps its invariants, or a
    BadEncoding naming the threshold; nothing else."""

    def put(p: dict[str, Any]) -> None:
        p["threshold"] = obj

    data = _resign(fleet, fleet.bundle(), put)
    try:
        header = read_signed(data, fleet.trust).header
    except errors.BadEncoding as exc:
        assert "threshold" in str(exc)
        return
    t = header.threshold
    assert 0.0 < t.value <= 1.0 and t.basis in (CALIBRATED, POLICY)
    if t.basis == CALIBRATED:
        assert t.fpir is not None and 0.0 < t.fpir < 1.0
        assert t.k is not None and 1 <= t.k <= 64
        assert t.list_size is not None and t.list_size >= 1
    else:
        assert (t.fpir, t.k, t.list_size) == (None, None, None)
    assert MatchThreshold(**vars(t)) == t


def test_the_agent_cli_refuses_a_too_low_or_tampered_bundle_with_exit_2(
    enrolled: Path,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert seal(1, "ops-1", "ops-2") == 0  # signed with the policy threshold 0.6
    argv = ["watchlist", "install", "wl1.jws", "--state", "dev", "--embedder", EMBEDDER]
    capsys.readouterr()
    assert agent_main([*argv, "--min-threshold", "0.7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[threshold_too_low]" in err
    data = json.loads(Path("wl1.jws").read_bytes())
    payload = json.loads(b64url_decode(data["payload"], "payload"))
    payload["threshold"]["value"] = 0.99
    data["payload"] = b64url_encode(json.dumps(payload).encode())
    Path("wl1.jws").write_text(json.dumps(data))
    assert install(1) == 2
    assert "[too_few_signatures]" in capsys.readouterr().err


def test_the_device_keeps_its_list_when_a_too_low_one_arrives(tmp_path: Path) -> None:
    """Through the device state: a bundle below the profile's 1:1 threshold is refused with
    its reason and the list in force stays."""
    from agent.core.device_state import Install, Refuse
    from agent.io.watchlist_store import WatchlistStore
    from tests.unit.test_watchlist_store import make_node

    node = make_node(tmp_path)
    store = WatchlistStore(node.identity, EMBEDDER, min_threshold=0.7)
    state = store.open_state()
    first = state.on_watchlist(node.bundle(1, threshold=MatchThreshold(0.8, POLICY)), NOW)
    assert isinstance(first, Install)
    store.commit(first)
    state.apply(first)
    low = state.on_watchlist(node.bundle(2, threshold=MatchThreshold(0.65, POLICY)), NOW)
    assert isinstance(low, Refuse) and low.reason == "threshold_too_low"
    state.apply(low)
    assert state.header is not None and state.header.version == 1
    assert state.header.threshold.value == 0.8
    assert state.report().last_rejection is not None
