"""The attack suite's running system (the fleet, the ops status watch, what a test can
sign and send) and how a refusal is observed where an operator would see it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.io.identity import load_identity
from agent.synthetic_vision import PROFILE_ID
from central.store import AlertStore
from protocol import hpke
from protocol.command import Action, Command, sign_command
from protocol.encoding import format_time
from protocol.event import MatchEvent, new_event_id, seal_probe
from protocol.keys import key_id
from protocol.watchlist import POLICY, MatchThreshold, seal_bundle
from provisioning.authority import load_ops_signer
from provisioning.registry import Registry
from tests.reliability.conftest import Recorder
from tests.reliability.status_watch import StatusWatch
from tools.processes import Proc, Rig, wait_until
from tools.synthetic import synthetic_entries

Signer = tuple[ed25519.Ed25519PrivateKey, str]
REFUSAL = re.compile(r"(watchlist|command) rejected \((\w+)\): (.*)")
CAM02_COLOURS = [9]  # nobody in the clip: cam-02 never matches, so it never sends events


# -- the running system -------------------------------------------------------------------


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
        threshold=MatchThreshold(0.9, POLICY),  # the synthetic backend's 1:1 threshold
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
