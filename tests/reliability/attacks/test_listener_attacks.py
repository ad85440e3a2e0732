"""Attacks on lfr-alerts listen: events published with cam-03's certificate on its own topic,
each refused and counted with nothing stored; a replay is stored once; after every attack
the store holds only what the agents produced."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.encoding import b64url_decode, canonical_json
from protocol.event import TYP as EVENT_TYP
from protocol.event import sign_event
from protocol.jws import sign_compact
from protocol.limits import DEFAULT_LIMITS
from tests.reliability.attacks.fleet import System, event, publish_as_device, signing_key
from tests.reliability.conftest import Recorder
from tools.processes import wait_until

LISTENER_REFUSAL = re.compile(r"event refused on (\S+) \((\w+)\): (.*)")


# -- events (cam-03's certificate on cam-03's own topic, into lfr-alerts listen) ----------


def _nested_event(system: System) -> bytes:
    payload = b'{"event_id":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    return sign_compact(payload, signing_key(system.rig, "cam-03"), "cam-03", EVENT_TYP)


def _huge_score(system: System) -> bytes:
    """Valid signature, a score beyond float range (found by the fuzzing campaign: before
    the fix it raised OverflowError, which killed every listener the broker handed it to)."""
    claims = event(system.rig, "cam-03").to_json()
    payload = canonical_json(claims).replace(b'"score":0.9', b'"score":1' + b"0" * 400)
    return sign_compact(payload, signing_key(system.rig, "cam-03"), "cam-03", EVENT_TYP)


def _captured_from_another_device(system: System) -> bytes:
    """A real event of cam-01 as the control room stored it, re-sent by cam-03."""
    store = system.store()
    try:
        wait_until(
            lambda: any(a.device_id == "cam-01" for a in store.recent()),
            60,
            "a real cam-01 event in the store",
        )
        return next(a.token for a in store.recent() if a.device_id == "cam-01")
    finally:
        store.close()


EVENT_ATTACKS: dict[str, tuple[str, Callable[[System], bytes]]] = {
    "forged-signature": (
        "bad_signature",
        lambda s: sign_event(event(s.rig, "cam-03"), ed25519.Ed25519PrivateKey.generate()),
    ),
    "re-signed-by-another-devices-key": (
        "bad_signature",
        lambda s: sign_compact(
            canonical_json(event(s.rig, "cam-03").to_json()),
            signing_key(s.rig, "cam-02"),
            "cam-03",
            EVENT_TYP,
        ),
    ),
    "unknown-device": (
        "unknown_signer",
        lambda s: sign_event(
            event(s.rig, "cam-03", device_id="cam-99"), ed25519.Ed25519PrivateKey.generate()
        ),
    ),
    "replayed-on-another-devices-topic": ("wrong_device", _captured_from_another_device),
    "truncated": ("bad_json", lambda s: s.valid_event[: len(s.valid_event) - 20]),
    "oversize": (
        "oversize",
        lambda s: s.valid_event + b" " * (DEFAULT_LIMITS.event_bytes + 1 - len(s.valid_event)),
    ),
    "deeply-nested-behind-valid-signature": ("bad_json", _nested_event),
    "score-beyond-float-range-behind-valid-signature": ("bad_json", _huge_score),
}


def _event_id(token: bytes) -> str | None:
    try:
        claims = json.loads(b64url_decode(token.split(b".")[1], "payload"))
    except (ValueError, IndexError, RecursionError):
        return None
    value = claims.get("event_id") if isinstance(claims, dict) else None
    return value if isinstance(value, str) else None


@pytest.mark.parametrize("attack", list(EVENT_ATTACKS))
def test_event_attack_is_refused_and_nothing_is_stored(
    system: System, attack: str, record: Recorder
) -> None:
    reason, make = EVENT_ATTACKS[attack]
    payload = make(system)
    store = system.store()
    try:
        before = store.rejections().get(reason, 0)
        offset = len(system.listener.text())
        publish_as_device(system.rig, "cam-03", payload)
        wait_until(
            lambda: store.rejections().get(reason, 0) > before,
            30,
            f"the listener to count a {reason} refusal",
        )
        assert store.rejections()[reason] == before + 1
        # The store counts the refusal before the listener's log line reaches its output.
        wait_until(
            lambda: LISTENER_REFUSAL.search(system.listener.text()[offset:]) is not None,
            10,
            "the listener to log the refusal",
        )
        line = LISTENER_REFUSAL.search(system.listener.text()[offset:])
        assert line is not None and line.group(2) == reason, system.listener.text()[offset:]
        assert line.group(1) == system.rig.topic("cam-03", "events")
        record("attacks", line.group(0))
        assert system.listener.alive
        # Nothing from cam-03 but the one valid event; an attack's own event id is not stored.
        assert [a.device_id for a in store.recent(1000)].count("cam-03") == 1
        event_id = _event_id(payload)
        if event_id not in (None, _event_id(system.valid_event)) and "replayed" not in attack:
            assert store.get(str(event_id)) is None
    finally:
        store.close()


def test_replayed_event_is_stored_once(system: System, record: Recorder) -> None:
    """The valid event again, from the same device on its own topic: idempotent by event_id.
    A forged event sent after it marks when the listener has handled the replay."""
    store = system.store()
    try:
        stored = [a for a in store.recent(1000) if a.device_id == "cam-03"]
        assert len(stored) == 1 and stored[0].token == system.valid_event
        before = store.rejections().get("bad_signature", 0)
        publish_as_device(system.rig, "cam-03", system.valid_event)
        marker = sign_event(event(system.rig, "cam-03"), ed25519.Ed25519PrivateKey.generate())
        publish_as_device(system.rig, "cam-03", marker)
        wait_until(
            lambda: store.rejections().get("bad_signature", 0) > before,
            30,
            "the listener to handle the replay and the marker",
        )
        again = [a for a in store.recent(1000) if a.device_id == "cam-03"]
        assert [a.event_id for a in again] == [stored[0].event_id]
        assert system.listener.alive
        record("attacks", f"replayed event {stored[0].event_id}: stored once")
    finally:
        store.close()


def test_listener_stored_only_what_agents_produced(system: System) -> None:
    """After every attack: each stored alert is the valid cam-03 event or one that cam-01's
    agent logged as produced (its outbox), nothing else."""
    store = system.store()
    try:
        stored = {a.event_id for a in store.recent(100_000)}
    finally:
        store.close()
    produced = set(system.agents["cam-01"].queued_ids()) | set(system.agents["cam-02"].queued_ids())
    valid = _event_id(system.valid_event)
    assert valid in stored
    assert stored - {valid} <= produced
