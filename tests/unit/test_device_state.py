"""The device's trusted state, driven with bytes and ``now`` only (no disk, no clock): every
decision it makes, every rejection, and that deciding changes nothing until it is applied."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from agent.core.device_state import (
    EXPIRED,
    INSTALLED,
    NONE,
    WIPED,
    AlreadyApplied,
    Decision,
    DeviceState,
    Floors,
    Install,
    Nothing,
    Pause,
    Refuse,
    Resume,
    TrustRoot,
    Wipe,
)
from protocol import hpke
from protocol.command import Action, Command, sign_command
from protocol.limits import Limits
from protocol.status import Rejection
from tests.conftest import EMBEDDER, NOW, Fleet
from tests.unit.test_watchlist_bundle import _sealed_with

LATER = NOW + timedelta(seconds=30, microseconds=250)


def state(fleet: Fleet, floors: Floors | None = None, **root: object) -> DeviceState:
    base = TrustRoot("cam-01", "kx", fleet.trust, fleet.device_keys, EMBEDDER)
    return DeviceState(dataclasses.replace(base, **root), floors or Floors())  # type: ignore[arg-type]


def command(
    fleet: Fleet,
    action: Action,
    counter: int,
    *,
    keys: int = 2,
    device_id: str = "cam-01",
    issued: datetime = NOW,
) -> bytes:
    signed = Command(device_id, "kx", action, counter, issued, issued + timedelta(minutes=10))
    return sign_command(signed, fleet.signers(*range(keys)))


def installed(fleet: Fleet, version: int = 1, **bundle: object) -> tuple[DeviceState, bytes]:
    """A state with watchlist ``version`` in force (decided, carried out, applied)."""
    s = state(fleet, Floors(version - 1, 0))
    data = fleet.bundle(version, **bundle)  # type: ignore[arg-type]
    decision = s.on_watchlist(data, NOW)
    assert isinstance(decision, Install)
    s.apply(decision)
    return s, data


def test_nothing_stored_at_start(fleet: Fleet) -> None:
    s = state(fleet)
    decision = s.load_stored(None, NOW)
    assert isinstance(decision, Nothing)
    s.apply(decision)
    assert s.watchlist is None and s.note == NONE


def test_the_stored_bundle_is_reinstated_and_a_lagging_floor_raised(fleet: Fleet) -> None:
    s = state(fleet, Floors(1, 4))
    # A power cut between writing bundle v2 and raising the floor: v2 stands, floor follows.
    decision = s.load_stored(fleet.bundle(2), NOW)
    assert isinstance(decision, Install) and decision.stored
    assert decision.floors == Floors(2, 4)
    assert s.watchlist is None  # decided, not yet applied
    s.apply(decision)
    assert s.header is not None and s.header.version == 2
    assert (s.note, s.floors) == (INSTALLED, Floors(2, 4))
    # Nothing to raise when the floor is where it should be.
    again = state(fleet, Floors(2, 4)).load_stored(fleet.bundle(2), NOW)
    assert isinstance(again, Install) and again.floors is None


def test_an_expired_stored_bundle_is_wiped_without_a_rejection(fleet: Fleet) -> None:
    s = state(fleet, Floors(1, 0))
    decision = s.load_stored(fleet.bundle(1, lifetime=timedelta(minutes=1)), NOW)
    assert decision == Wipe("expired", EXPIRED)
    s.apply(decision)
    assert (s.watchlist, s.note, s.last_rejection) == (None, EXPIRED, None)


def test_a_stored_bundle_rolled_back_on_disk_is_refused_and_wiped(fleet: Fleet) -> None:
    s = state(fleet, Floors(3, 0))
    decision = s.load_stored(fleet.bundle(2), NOW)
    assert isinstance(decision, Wipe) and decision.refusal is not None
    assert decision.reason == "failed re-verification: rollback"
    assert (decision.note, decision.refusal.what) == (NONE, "stored watchlist")
    s.apply(decision)
    assert s.watchlist is None
    assert s.last_rejection == Rejection("stored watchlist", "rollback", NOW)
    assert s.floors == Floors(3, 0)


def test_a_new_watchlist_is_installed_only_when_applied(fleet: Fleet) -> None:
    s, _ = installed(fleet, 1)
    data = fleet.bundle(2)
    decision = s.on_watchlist(data, NOW)
    assert isinstance(decision, Install) and not decision.stored
    assert decision.bundle == data and decision.floors == Floors(2, 0)
    # The disk refused: nothing applied, v1 stays, and the same bundle is decided again.
    assert s.header is not None and s.header.version == 1 and s.floors == Floors(1, 0)
    again = s.on_watchlist(data, NOW)
    assert isinstance(again, Install) and again.floors == decision.floors
    s.apply(decision)
    assert s.header is not None and s.header.version == 2 and s.floors == Floors(2, 0)


def test_empty_and_retained_copies_change_nothing(fleet: Fleet) -> None:
    s, data = installed(fleet, 1)
    assert isinstance(s.on_watchlist(b"", NOW), Nothing)  # ops cleared the retained message
    assert isinstance(s.on_watchlist(data, NOW), Nothing)  # re-delivered on reconnect
    assert s.last_rejection is None


def _hostile_bundles(fleet: Fleet) -> dict[str, bytes]:
    return {
        "bad_json": b"{not json",
        "too_few_signatures": fleet.bundle(2, signers=(0,)),
        "wrong_device": fleet.bundle(2, device_id="cam-02"),
        "rollback": fleet.bundle(1),
        "expired": fleet.bundle(2, issued=NOW - timedelta(hours=13)),
        "not_yet_valid": fleet.bundle(2, issued=NOW + timedelta(hours=2)),
        "malformed_entries": _sealed_with(fleet, b'{"dtype":"float16","entries":[]}'),
    }


def test_every_rejection_keeps_the_watchlist_in_force_and_is_recorded(fleet: Fleet) -> None:
    bundles = _hostile_bundles(fleet)
    for reason, data in bundles.items():
        # malformed_entries is sealed as version 1: judge it against an empty floor.
        s, _ = installed(fleet, 1) if reason != "malformed_entries" else (state(fleet), b"")
        before = s.watchlist
        decision = s.on_watchlist(data, LATER)
        assert isinstance(decision, Refuse), reason
        assert (decision.what, decision.reason) == ("watchlist", reason)
        s.apply(decision)
        assert s.watchlist is before
        assert s.last_rejection == Rejection("watchlist", reason, LATER.replace(microsecond=0))


def test_rejections_that_depend_on_the_device(fleet: Fleet) -> None:
    data = fleet.bundle(1, suite=hpke.HYBRID_CHACHA)
    cases: dict[str, tuple[DeviceState, bytes]] = {
        "oversize": (state(fleet, limits=Limits(bundle_bytes=1024)), fleet.bundle(1)),
        "embedder_mismatch": (state(fleet, embedder_sha256="f" * 64), fleet.bundle(1)),
        # No key of the suite the bundle was sealed with.
        "decryption_failed": (
            state(fleet, hpke_keys={hpke.X25519_CHACHA: fleet.device_keys[hpke.X25519_CHACHA]}),
            data,
        ),
    }
    for reason, (s, payload) in cases.items():
        decision = s.on_watchlist(payload, NOW)
        assert isinstance(decision, Refuse) and decision.reason == reason


def test_verify_raises_for_one_shot_callers(fleet: Fleet) -> None:
    s, _ = installed(fleet, 2)
    with pytest.raises(Exception, match="not greater") as caught:
        s.verify_new(fleet.bundle(2), NOW)
    assert getattr(caught.value, "reason", None) == "rollback"
    assert s.verify_stored(fleet.bundle(2), NOW).floors is None


def _obey(s: DeviceState, payload: bytes, now: datetime = NOW) -> Decision:
    decision = s.on_command(payload, now)
    s.apply(decision)
    return decision


def test_commands_pause_resume_and_wipe(fleet: Fleet) -> None:
    s, _ = installed(fleet, 3)
    pause = command(fleet, Action.PAUSE, 1)
    decision = s.on_command(pause, NOW)
    assert isinstance(decision, Pause) and decision.floors == Floors(3, 1, paused=True)
    assert (decision.command.action, decision.command.counter) == (Action.PAUSE, 1)
    assert not s.paused  # not before it is applied
    s.apply(decision)
    assert s.paused and s.floors == Floors(3, 1, paused=True)
    # Retained: the same command comes back on reconnect. Already done, not a replay.
    assert isinstance(_obey(s, pause), AlreadyApplied)
    assert s.paused and s.last_rejection is None
    assert isinstance(_obey(s, command(fleet, Action.RESUME, 2)), Resume)
    assert not s.paused and s.floors == Floors(3, 2)
    wipe = _obey(s, command(fleet, Action.WIPE, 3))
    assert isinstance(wipe, Wipe) and (wipe.reason, wipe.note) == ("wipe command", WIPED)
    assert wipe.command is not None and wipe.command.counter == 3
    assert (s.watchlist, s.note, s.floors) == (None, WIPED, Floors(3, 3, wiped=True))
    # The wiped list cannot be sent again: its version is still the floor.
    refused = s.on_watchlist(fleet.bundle(3), NOW)
    assert isinstance(refused, Refuse) and refused.reason == "rollback"


def test_the_applied_command_state_is_restored_from_the_floors(fleet: Fleet) -> None:
    """Issue 17 finding 3: a restart starts from the floors on disk, pause and wipe included;
    the retained pause then comes back as already applied and must not resume matching."""
    s, _ = installed(fleet, 3)
    pause = command(fleet, Action.PAUSE, 1)
    _obey(s, pause)
    again = DeviceState(s.root, s.floors)  # what the disk holds after a kill -9
    assert again.paused and isinstance(_obey(again, pause), AlreadyApplied) and again.paused
    _obey(again, command(fleet, Action.WIPE, 2))
    after_wipe = DeviceState(s.root, again.floors)
    assert (after_wipe.paused, after_wipe.note) == (True, WIPED)
    after_wipe.apply(after_wipe.on_watchlist(fleet.bundle(4), NOW))  # ops send a new list
    assert after_wipe.note != WIPED and after_wipe.floors == Floors(4, 2, paused=True)


def test_command_refusals(fleet: Fleet) -> None:
    s, _ = installed(fleet, 1)
    _obey(s, command(fleet, Action.RESUME, 5))
    hostile = {
        "rollback": command(fleet, Action.PAUSE, 4),  # an older command replayed
        "too_few_signatures": command(fleet, Action.PAUSE, 6, keys=1),
        "wrong_device": command(fleet, Action.PAUSE, 6, device_id="cam-02"),
        "expired": command(fleet, Action.PAUSE, 6, issued=NOW - timedelta(minutes=20)),
        "not_yet_valid": command(fleet, Action.PAUSE, 6, issued=NOW + timedelta(minutes=20)),
        "bad_json": b"\xff",
    }
    for reason, payload in hostile.items():
        decision = _obey(s, payload)
        assert isinstance(decision, Refuse) and (decision.what, decision.reason) == (
            "command",
            reason,
        ), reason
        assert not s.paused and s.floors == Floors(1, 5)
        assert s.last_rejection is not None and s.last_rejection.reason == reason
    assert isinstance(_obey(s, b""), Nothing)


def test_a_command_obeyed_without_its_counter_saved(fleet: Fleet) -> None:
    s, _ = installed(fleet, 1)
    pause = command(fleet, Action.PAUSE, 1)
    decision = s.on_command(pause, NOW)
    assert isinstance(decision, Pause)
    # The shell could not save the counter: obeyed, the floor stays what the disk holds, so
    # the retained command is applied again when it comes back (harmless).
    s.apply(dataclasses.replace(decision, floors=None))
    assert s.paused and s.floors == Floors(1, 0)
    assert isinstance(s.on_command(pause, NOW), Pause)


def test_expiry(fleet: Fleet) -> None:
    s, _ = installed(fleet, 1, lifetime=timedelta(minutes=30))
    assert s.header is not None
    expires = s.header.expires_at
    assert isinstance(s.check_expiry(expires - timedelta(microseconds=1)), Nothing)
    decision = s.check_expiry(expires)
    assert decision == Wipe("expired", EXPIRED)
    s.apply(decision)
    assert (s.watchlist, s.note) == (None, EXPIRED)
    assert isinstance(s.check_expiry(expires + timedelta(days=1)), Nothing)


def test_a_stale_install_is_a_programming_error(fleet: Fleet) -> None:
    s = state(fleet)
    v1 = s.on_watchlist(fleet.bundle(1), NOW)
    v2 = s.on_watchlist(fleet.bundle(2), NOW)
    s.apply(v2)
    with pytest.raises(RuntimeError, match="stale"):
        s.apply(v1)


def test_report(fleet: Fleet) -> None:
    s, _ = installed(fleet, 4)
    _obey(s, command(fleet, Action.PAUSE, 9, keys=1), LATER)
    report = s.report()
    assert s.header is not None
    assert (report.version, report.deployment_id, report.expires_at) == (
        4,
        "kx-2026-11-28",
        s.header.expires_at,
    )
    assert (report.note, report.version_floor, report.command_counter) == (INSTALLED, 4, 0)
    assert report.last_rejection == Rejection(
        "command", "too_few_signatures", LATER.replace(microsecond=0)
    )
    assert state(fleet).report().version is None
