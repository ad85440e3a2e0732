"""Attacks on lfr-agent: watchlists (cam-01; the wrong-device case on cam-02) and commands
(cam-02), each refused with the list or state in force kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.synthetic_vision import PROFILE_ID
from protocol import hpke
from protocol.command import TYP as COMMAND_TYP
from protocol.command import Action
from protocol.encoding import b64url_decode, b64url_encode, canonical_json
from protocol.jws import sign_general
from protocol.limits import DEFAULT_LIMITS
from protocol.watchlist import POLICY, MatchThreshold, WatchlistHeader
from protocol.watchlist import TYP as WATCHLIST_TYP
from provisioning.registry import Registry
from tests.reliability.attacks.fleet import (
    System,
    bundle,
    command,
    observe_agent_refusal,
    rogue_signer,
)
from tests.reliability.conftest import Recorder
from tools.synthetic import synthetic_entries

# -- watchlists (cam-01; the wrong-device case on cam-02) ---------------------------------


def _tampered(system: System) -> bytes:
    """A valid version 3 whose payload is edited after signing (expiry pushed back)."""
    envelope = json.loads(bundle(system.rig, "cam-01", 3, system.signers()))
    payload = json.loads(b64url_decode(envelope["payload"], "payload"))
    payload["expires_at"] = "2099-01-01T00:00:00Z"
    envelope["payload"] = b64url_encode(canonical_json(payload))
    return canonical_json(envelope)


def _resigned_by_wrong_key(system: System) -> bytes:
    """The payload of a valid version 3, signed by one ops key and a key nobody pinned."""
    envelope = json.loads(bundle(system.rig, "cam-01", 3, system.signers()))
    payload = b64url_decode(envelope["payload"], "payload")
    return sign_general(payload, [system.signers(1)[0], rogue_signer()], WATCHLIST_TYP)


def _nested_behind_signatures(system: System) -> bytes:
    """Deep nesting inside a payload that both ops keys really signed."""
    payload = b'{"format":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    return sign_general(payload, system.signers(), WATCHLIST_TYP)


def _signed_and_sealed(system: System, entries: list[dict[str, Any]], dtype: str) -> bytes:
    """Valid signatures and a ciphertext that opens, around hand-made entries."""
    record = Registry.load(Path(system.rig.index["registry"])).get("cam-01")
    now = datetime.now(UTC).replace(microsecond=0)
    header = WatchlistHeader(
        "cam-01",
        record.site,
        "attack-suite",
        3,
        now,
        now + timedelta(hours=1),
        PROFILE_ID,
        synthetic_entries([0]).dim,
        hpke.X25519_CHACHA,
        MatchThreshold(0.9, POLICY),
    )
    plaintext = canonical_json({"dtype": dtype, "entries": entries})
    sealed = hpke.seal(
        hpke.X25519_CHACHA,
        record.hpke_key(hpke.X25519_CHACHA),
        plaintext,
        header.hpke_info(),
    )
    payload = canonical_json({**header.to_json(), "ciphertext": b64url_encode(sealed)})
    return sign_general(payload, system.signers(), WATCHLIST_TYP)


def _entry(dim: int, **members: Any) -> dict[str, Any]:
    return {
        "subject_ref": "WL-0000",
        "category": "wanted",
        "threshold": None,
        "embeddings": b64url_encode(b"\x00\x3c" * dim),
        **members,
    }


def _malformed_scales(system: System) -> bytes:
    """int8 entries whose scales are not whole float32 values (found by the fuzzing
    campaign: the decoder raised ValueError, which stopped the agent)."""
    dim = synthetic_entries([0]).dim
    entry = _entry(
        dim,
        embeddings=b64url_encode(b"\x01" * dim),
        scales=b64url_encode(b"\x00\x00\x80\x3f\x00"),
    )
    return _signed_and_sealed(system, [entry], "int8")


def _repeated_subject(system: System) -> bytes:
    """The same subject twice (found by the fuzzing campaign: the refusal named the
    subject, so decrypted watchlist content reached the agent's log; the hygiene scan
    reads the refusal recorded here)."""
    dim = synthetic_entries([0]).dim
    return _signed_and_sealed(system, [_entry(dim), _entry(dim)], "float16")


WATCHLIST_ATTACKS: dict[str, tuple[str, Callable[[System], bytes]]] = {
    "forged-by-two-unpinned-keys": (
        "too_few_signatures",
        lambda s: bundle(s.rig, "cam-01", 3, [rogue_signer(), rogue_signer()]),
    ),
    "payload-edited-after-signing": ("too_few_signatures", _tampered),
    "re-signed-by-wrong-key": ("too_few_signatures", _resigned_by_wrong_key),
    "one-ops-signature-only": (
        "too_few_signatures",
        lambda s: bundle(s.rig, "cam-01", 3, s.signers(1)),
    ),
    "replayed-older-version": ("rollback", lambda s: s.old["cam-01"]),
    "truncated": (
        "bad_json",
        lambda s: (b := bundle(s.rig, "cam-01", 3, s.signers()))[: len(b) // 2],
    ),
    "oversize": (
        "oversize",
        lambda s: (
            (b := bundle(s.rig, "cam-01", 3, s.signers()))
            + b" " * (DEFAULT_LIMITS.bundle_bytes + 1 - len(b))
        ),
    ),
    "deeply-nested": ("bad_json", lambda s: b"[" * 100_000 + b"]" * 100_000),
    "deeply-nested-behind-valid-signatures": ("bad_json", _nested_behind_signatures),
    "bad-int8-scales-behind-valid-signatures": ("malformed_entries", _malformed_scales),
    "repeated-subject-behind-valid-signatures": ("malformed_entries", _repeated_subject),
    "expired": (
        "expired",
        lambda s: bundle(
            s.rig,
            "cam-01",
            3,
            s.signers(),
            lifetime=timedelta(minutes=30),
            issued=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1),
        ),
    ),
}


@pytest.mark.parametrize("attack", list(WATCHLIST_ATTACKS))
def test_watchlist_attack_is_refused_and_the_old_list_stays(
    system: System, attack: str, record: Recorder
) -> None:
    reason, make = WATCHLIST_ATTACKS[attack]
    payload = make(system)
    before = system.watch.wait("cam-01", lambda d: True, 10, "cam-01's status")
    topic = system.rig.topic("cam-01", "watchlist")
    doc = observe_agent_refusal(
        system,
        "cam-01",
        "watchlist",
        reason,
        lambda: system.watch.publish(topic, payload),
        record,
    )
    assert doc["watchlist_version"] == 2 and doc["watchlist"] == "installed"
    assert doc["version_floor"] == 2
    state = Path(system.rig.device("cam-01")["state_dir"])
    assert (state / "watchlist.jws").read_bytes() == system.installed["cam-01"]
    # Still in force: the node keeps looking for faces, which it does only while a list is in
    # force (no list or paused: frames are not even searched), and with version 2. Embedding
    # is no sign of it: under the track rule a track whose template is full (the looping
    # clip's two people) costs detection only until a clearly better face appears.
    system.watch.wait(
        "cam-01",
        lambda d: (
            d["faces_detected"] > before["faces_detected"]
            and d["watchlist_version"] == 2
            and d["state"] == "online"
        ),
        30,
        "cam-01 to keep looking for faces with version 2 in force",
    )


def test_watchlist_for_another_device_pushed_by_mistake(system: System, record: Recorder) -> None:
    """Ops push cam-01's list to cam-02's topic (retained, as a real push): cam-02 refuses
    it and keeps its own list; cam-01's list never opens there (it is sealed to cam-01)."""
    payload = bundle(system.rig, "cam-01", 7, system.signers())
    topic = system.rig.topic("cam-02", "watchlist")
    try:
        doc = observe_agent_refusal(
            system,
            "cam-02",
            "watchlist",
            "wrong_device",
            lambda: system.watch.publish(topic, payload, retain=True),
            record,
        )
    finally:  # ops put the right list back on the topic
        system.watch.publish(topic, system.installed["cam-02"], retain=True)
    assert doc["watchlist_version"] == 1 and doc["watchlist"] == "installed"
    state = Path(system.rig.device("cam-02")["state_dir"])
    assert (state / "watchlist.jws").read_bytes() == system.installed["cam-02"]


# -- commands (cam-02: paused by command 12) ----------------------------------------------


def _nested_command(system: System) -> bytes:
    return b'{"payload":' + b"[" * 5_000 + b"]" * 5_000 + b"}"


def _expired_command(system: System) -> bytes:
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return command(system.rig, "cam-02", Action.RESUME, 13, system.signers(), issued=issued)


def _resigned_command(system: System) -> bytes:
    valid = json.loads(command(system.rig, "cam-02", Action.RESUME, 13, system.signers()))
    payload = b64url_decode(valid["payload"], "payload")
    return sign_general(payload, [system.signers(1)[0], rogue_signer()], COMMAND_TYP)


COMMAND_ATTACKS: dict[str, tuple[str, Callable[[System], bytes]]] = {
    "forged-by-two-unpinned-keys": (
        "too_few_signatures",
        lambda s: command(s.rig, "cam-02", Action.RESUME, 13, [rogue_signer(), rogue_signer()]),
    ),
    "re-signed-by-wrong-key": ("too_few_signatures", _resigned_command),
    "replayed-older-command": ("rollback", lambda s: s.commands[11]),
    "truncated": (
        "bad_json",
        lambda s: (c := command(s.rig, "cam-02", Action.RESUME, 13, s.signers()))[: len(c) - 9],
    ),
    "oversize": (
        "oversize",
        lambda s: (
            (c := command(s.rig, "cam-02", Action.RESUME, 13, s.signers()))
            + b" " * (DEFAULT_LIMITS.command_bytes + 1 - len(c))
        ),
    ),
    "deeply-nested": ("bad_json", _nested_command),
    "for-another-device": (
        "wrong_device",
        lambda s: command(s.rig, "cam-01", Action.RESUME, 13, s.signers()),
    ),
    "expired": ("expired", _expired_command),
}


@pytest.mark.parametrize("attack", list(COMMAND_ATTACKS))
def test_command_attack_is_refused_and_nothing_runs(
    system: System, attack: str, record: Recorder
) -> None:
    reason, make = COMMAND_ATTACKS[attack]
    payload = make(system)
    topic = system.rig.topic("cam-02", "command")
    doc = observe_agent_refusal(
        system,
        "cam-02",
        "command",
        reason,
        lambda: system.watch.publish(topic, payload),
        record,
    )
    assert doc["state"] == "paused" and doc["command_counter"] == 12
    assert doc["watchlist"] == "installed" and doc["watchlist_version"] == 1
