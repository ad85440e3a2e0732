"""Attacks on the wire formats, observed through the running system.

One fleet of three devices on a real TLS Mosquitto: ``lfr-agent`` runs for cam-01 (watchlist
attacks; its clip shows a watchlisted person, so matching proves the old list is in force) and
for cam-02 (command attacks, and the watchlist ops pushed to the wrong device); ``lfr-alerts
listen`` stores what cam-03's certificate publishes on cam-03's own events topic (event
attacks; no agent runs for cam-03, so the test can use its certificate without taking over a
session). Every refusal is observed where an operator would see it: the agent's log line and
its retained status document (``last_rejection``), the listener's rejections table and log.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.io.identity import load_identity
from agent.synthetic_vision import PROFILE_ID
from central.store import AlertStore
from lfrkit.mqtt import MqttLink
from protocol import hpke
from protocol.command import TYP as COMMAND_TYP
from protocol.command import Action, Command, sign_command
from protocol.encoding import b64url_decode, b64url_encode, canonical_json, format_time
from protocol.event import TYP as EVENT_TYP
from protocol.event import MatchEvent, new_event_id, seal_probe, sign_event
from protocol.jws import sign_compact, sign_general
from protocol.keys import key_id
from protocol.limits import DEFAULT_LIMITS
from protocol.watchlist import TYP as WATCHLIST_TYP
from protocol.watchlist import WatchlistHeader, seal_bundle
from provisioning.authority import load_ops_signer
from provisioning.registry import Registry
from tests.integration.synthetic import Appearance, make_clip, synthetic_entries
from tests.reliability.conftest import Recorder
from tests.reliability.procs import Proc, Rig, set_section, wait_until

Signer = tuple[ed25519.Ed25519PrivateKey, str]
REFUSAL = re.compile(r"(watchlist|command) rejected \((\w+)\): (.*)")
LISTENER_REFUSAL = re.compile(r"event refused on (\S+) \((\w+)\): (.*)")
CAM02_COLOURS = [9]  # nobody in the clip: cam-02 never matches, so it never sends events


# -- the running system -------------------------------------------------------------------


class StatusWatch:
    """The ops client: reads every device's retained status and publishes as ops.

    One connection only: the broker uses the certificate name as the client id, so a second
    ``ops`` connection would take this one's session over.
    """

    def __init__(self, link: MqttLink) -> None:
        self.link = link
        self.latest: dict[str, dict[str, Any]] = {}
        link.subscribe([("lfr/v1/+/+/status", 1)])

    def pump(self, timeout: float) -> None:
        message = self.link.receive(timeout)
        while message is not None:
            self.latest[message.topic.split("/")[3]] = json.loads(message.payload)
            message = self.link.receive(0)

    def wait(
        self, device: str, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.2)
            doc = self.latest.get(device)
            if doc is not None and predicate(doc):
                return doc
        raise AssertionError(
            f"timed out after {timeout:.0f}s waiting for {what}; "
            f"last status of {device}: {self.latest.get(device)}"
        )

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        code = self.link.wait_ack(self.link.publish(topic, payload, retain=retain), timeout=180)
        assert code in (0, 16), f"broker refused the ops publish on {topic} ({code:#x})"


@dataclass
class System:
    rig: Rig
    watch: StatusWatch
    agents: dict[str, Proc]
    listener: Proc
    db: str
    installed: dict[str, bytes] = field(default_factory=dict)  # bundle in force, by device
    old: dict[str, bytes] = field(default_factory=dict)  # what it replaced, by device
    commands: dict[int, bytes] = field(default_factory=dict)  # cam-02's commands, by counter
    valid_event: bytes = b""

    def signers(self, count: int = 2) -> list[Signer]:
        return [load_ops_signer(Path(k)) for k in self.rig.index["ops_keys"][:count]]

    def store(self) -> AlertStore:
        return AlertStore(self.db)

    def stored(self) -> int:
        store = self.store()
        try:
            return store.count()
        finally:
            store.close()


def rogue_signer() -> Signer:
    key = ed25519.Ed25519PrivateKey.generate()
    return key, key_id(key.public_key())


def bundle(
    rig: Rig,
    device: str,
    version: int,
    signers: list[Signer],
    colours: list[int] | None = None,
    lifetime: timedelta = timedelta(hours=1),
    issued: datetime | None = None,
) -> bytes:
    record = Registry.load(Path(rig.index["registry"])).get(device)
    issued = issued or datetime.now(UTC).replace(microsecond=0)
    return seal_bundle(
        synthetic_entries(colours if colours is not None else [0]),
        device_id=device,
        site=record.site,
        deployment_id="attack-suite",
        version=version,
        issued_at=issued,
        expires_at=issued + lifetime,
        recipient=record.hpke_key(hpke.X25519_CHACHA),
        signers=signers,
    )


def command(
    rig: Rig,
    device: str,
    action: Action,
    counter: int,
    signers: list[Signer],
    issued: datetime | None = None,
) -> bytes:
    issued = issued or datetime.now(UTC).replace(microsecond=0)
    site = rig.device(device)["site"]
    return sign_command(
        Command(device, site, action, counter, issued, issued + timedelta(minutes=10)), signers
    )


def event(rig: Rig, device: str, **claims: Any) -> MatchEvent:
    identity = load_identity(Path(rig.device(device)["state_dir"]))
    event_id = new_event_id()
    values: dict[str, Any] = {
        "event_id": event_id,
        "device_id": device,
        "site": rig.device(device)["site"],
        "deployment_id": "attack-suite",
        "watchlist_version": 1,
        "subject_ref": "WL-0009",
        "category": "wanted",
        "score": 0.9,
        "threshold": 0.6,
        "margin": 0.3,
        "observed_at": datetime.now(UTC).replace(microsecond=0),
        "track_id": 1,
        "embedder_sha256": PROFILE_ID,
        "probe_suite": hpke.X25519_CHACHA,
        "probe": seal_probe(
            b"\xff\xd8 not really a face \xff\xd9",
            identity.trust.adjudication_key,
            event_id=event_id,
            device_id=device,
        ),
    }
    values.update(claims)
    return MatchEvent(**values)


def signing_key(rig: Rig, device: str) -> ed25519.Ed25519PrivateKey:
    return load_identity(Path(rig.device(device)["state_dir"])).signing_key


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, artefacts: Path) -> Iterator[System]:
    root = tmp_path_factory.mktemp("attacks")
    rig = Rig.create(root, devices=3, logs=artefacts / "attacks", loop=True)
    try:
        for device in ("cam-01", "cam-02"):
            set_section(Path(rig.device(device)["config"]), "status", interval_seconds=1.0)
        watch = StatusWatch(rig.client("ops"))
        # Short (a GIF of many frames takes long to encode on a busy machine) and looping:
        # colour 0 (on cam-01's list) and colour 1 (a stranger) are always in view.
        clip = make_clip(
            root / "two.gif", 12, [Appearance(0, 0, 11, row=0), Appearance(1, 0, 11, row=1)]
        )
        db = f"sqlite:///{root / 'alerts.db'}"
        listener = rig.listener("attacks-listener", rig.index["clients"]["alerts"]["cert"], db)
        listener.start()
        system = System(rig, watch, {}, listener, db)
        # Both agents start together (start-up is the slow part on a busy machine): cam-01
        # with version 1, cam-02 with version 1 of its own list.
        v1 = bundle(rig, "cam-01", 1, system.signers())
        cam02 = bundle(rig, "cam-02", 1, system.signers(), colours=CAM02_COLOURS)
        watch.publish(rig.topic("cam-01", "watchlist"), v1, retain=True)
        watch.publish(rig.topic("cam-02", "watchlist"), cam02, retain=True)
        for device in ("cam-01", "cam-02"):
            system.agents[device] = rig.agent(device, "--source", str(clip)).start()
        # cam-01 then gets version 2 (version 1 is what a replay will resend).
        watch.wait("cam-01", lambda d: d["watchlist_version"] == 1, 120, "cam-01 on version 1")
        v2 = bundle(rig, "cam-01", 2, system.signers())
        watch.publish(rig.topic("cam-01", "watchlist"), v2, retain=True)
        system.installed["cam-01"], system.old["cam-01"] = v2, v1
        # cam-02 is paused, resumed and paused by ops.
        watch.wait("cam-02", lambda d: d["watchlist_version"] == 1, 120, "cam-02 on version 1")
        system.installed["cam-02"] = cam02
        for counter, action in ((10, Action.PAUSE), (11, Action.RESUME), (12, Action.PAUSE)):
            system.commands[counter] = command(rig, "cam-02", action, counter, system.signers())
            watch.publish(rig.topic("cam-02", "command"), system.commands[counter], retain=True)
            watch.wait("cam-02", ran(counter), 30, f"cam-02 to run command {counter}")
        watch.wait("cam-02", lambda d: d["state"] == "paused", 10, "cam-02 paused")
        watch.wait("cam-01", lambda d: d["watchlist_version"] == 2, 30, "cam-01 on version 2")
        # The listener stores one valid event from cam-03 (the baseline for event attacks).
        wait_until(lambda: "listening for events" in listener.text(), 60, "the listener")
        system.valid_event = sign_event(event(rig, "cam-03"), signing_key(rig, "cam-03"))
        publish_as_device(rig, "cam-03", system.valid_event)
        wait_until(lambda: system.stored() >= 1, 30, "the valid event to be stored")
        yield system
    finally:
        rig.close()
        if "watch" in locals():
            watch.link.close()


def ran(counter: int) -> Callable[[dict[str, Any]], bool]:
    return lambda doc: bool(doc["command_counter"] == counter)


# -- observing refusals -------------------------------------------------------------------


def next_second() -> datetime:
    """Sleep to the start of the next second and return it: a status whose ``last_rejection``
    is at or after it reports this refusal, not an earlier one with the same reason."""
    now = datetime.now(UTC)
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    time.sleep((start - now).total_seconds())
    return start


def observe_agent_refusal(
    system: System,
    device: str,
    what: str,
    reason: str,
    send: Callable[[], None],
    record: Recorder,
) -> dict[str, Any]:
    agent = system.agents[device]
    since = format_time(next_second())
    offset = len(agent.text())
    send()
    wait_until(
        lambda: REFUSAL.search(agent.text()[offset:]) is not None,
        180,  # the 96 MiB bundle takes a while on a busy machine
        f"{device} to log a {what} refusal",
    )
    line = REFUSAL.search(agent.text()[offset:])
    assert line is not None and agent.alive, agent.text()[offset:][-2000:]
    record("attacks", line.group(0))
    assert (line.group(1), line.group(2)) == (what, reason), line.group(0)
    doc = system.watch.wait(
        device,
        lambda d: (
            d["last_rejection"] is not None
            and d["last_rejection"]["what"] == what
            and d["last_rejection"]["reason"] == reason
            and d["last_rejection"]["at"] >= since
        ),
        15,
        f"{device}'s status to report the {reason} refusal",
    )
    record("attacks", json.dumps(doc["last_rejection"]))
    return doc


def publish_as_device(rig: Rig, device: str, payload: bytes) -> None:
    link = rig.client(device)
    try:
        code = link.wait_ack(link.publish(rig.topic(device, "events"), payload), timeout=30)
        assert code in (0, 16), f"broker refused {device}'s own events topic ({code:#x})"
    finally:
        link.close()


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
    # Still in force: the watchlisted person in the looping clip keeps matching.
    system.watch.wait(
        "cam-01",
        lambda d: d["matches"] > before["matches"] and d["watchlist_version"] == 2,
        30,
        "cam-01 to keep matching with version 2",
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
