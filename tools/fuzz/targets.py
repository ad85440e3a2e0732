"""The parsers under test: for each format, its size limit, valid seeds, the parser entry
points held to the contract, and a generator of hostile structures behind valid signatures."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol import hpke
from protocol.command import TYP as COMMAND_TYP
from protocol.command import open_command
from protocol.encoding import canonical_json
from protocol.entries import encode_sealed_plaintext
from protocol.event import TYP as EVENT_TYP
from protocol.event import open_probe, parse_stored_event, verify_event
from protocol.limits import DEFAULT_LIMITS
from protocol.status import parse_status
from protocol.watchlist import _INFO_PREFIX as WATCHLIST_INFO_PREFIX
from protocol.watchlist import TYP as WATCHLIST_TYP
from protocol.watchlist import open_bundle
from tools.fuzz.contract import Check
from tools.fuzz.jsontext import b64, dumps, to_bytes, unb64
from tools.fuzz.mutators import byte_op, general_jws, mutate_json
from tools.fuzz.values import interesting, value_pools
from tools.fuzz.world import (
    DEVICE,
    EMBEDDER,
    INSTALLED_VERSION,
    JPEG,
    LAST_COUNTER,
    MIN_THRESHOLD,
    NOW,
    OTHER_DEVICE,
    SITE,
    World,
    command_seeds,
    event_seeds,
    seed_entries,
    watchlist_seeds,
)

TARGETS = ("watchlist", "event", "command", "status")
Generator = Callable[[random.Random], bytes]


@dataclass
class Target:
    name: str
    limit: int  # the size limit of this format
    seeds: list[bytes]
    checks: list[tuple[str, Check]]  # parser entry points, each held to the contract
    generate: Generator  # structure-aware inputs behind valid signatures
    # Words no refusal message may contain: what only the sealed entries hold (a message
    # ends up in the device's log; the watchlist is secret).
    secrets: tuple[str, ...] = ()


@dataclass
class _WatchlistParts:
    header: dict[str, Any]
    plaintext: dict[str, Any]


def _watchlist_target(world: World) -> Target:
    seeds = watchlist_seeds(world)
    pools = value_pools(world)
    entries = seed_entries(world.seed)
    parts = []
    for seed in seeds:
        payload = json.loads(unb64(json.loads(seed)["payload"]))
        del payload["ciphertext"]
        dtype = "int8" if payload["version"] == 3 else "float16"
        parts.append(
            _WatchlistParts(payload, json.loads(encode_sealed_plaintext(entries.entries, dtype)))
        )

    def seal(header_text: str, plaintext: bytes, rng: random.Random) -> bytes:
        try:
            header = json.loads(header_text)
            info = WATCHLIST_INFO_PREFIX + canonical_json(header)
            suite = header.get("hpke_suite")
        except (ValueError, AttributeError, RecursionError):
            info, suite = b"", None  # a header the parser refuses anyway
        if suite not in hpke.SUITES or rng.random() < 0.03:
            suite = rng.choice(hpke.SUITES)
        return hpke.seal(suite, world.device_hpke[suite].public_key(), plaintext, info)

    def generate(rng: random.Random) -> bytes:
        base = rng.choice(parts)
        header, plaintext = copy.deepcopy(base.header), to_bytes(dumps(base.plaintext))
        roll = rng.random()
        if roll < 0.3:
            # One top-level header field from its pool: the checks behind the signatures
            # (version, validity, embedder, threshold) stay reachable however many members the
            # nested threshold object adds to mutate_json's choice of paths.
            key = rng.choice(sorted(header))
            header[key] = interesting(key, rng, pools)
        elif roll < 0.5:
            header = mutate_json(header, rng, pools, rng.choice([1, 1, 1, 2, 3]))
        elif roll < 0.75:
            mutated = mutate_json(base.plaintext, rng, pools, rng.choice([1, 1, 2, 3]))
            plaintext = to_bytes(dumps(mutated))
        elif roll < 0.85:
            plaintext, _ = byte_op(plaintext, rng, [plaintext])
        header_text = dumps(header)
        ct_roll = rng.random()
        if ct_roll < 0.8:
            ciphertext = seal(header_text, plaintext, rng)
        elif ct_roll < 0.95:
            ciphertext = unb64(json.loads(unb64(json.loads(seeds[0])["payload"]))["ciphertext"])
        else:
            ciphertext = rng.randbytes(rng.choice([0, 16, 47, 48, 100, 1200]))
        if isinstance(header, dict):
            payload_text = dumps({**header, "ciphertext": b64(ciphertext)})
        else:
            payload_text = dumps(header)
        data, _ = general_jws(to_bytes(payload_text), WATCHLIST_TYP, world, rng, pools)
        return data

    def check(data: bytes) -> object:
        return open_bundle(
            data,
            trust=world.trust,
            device_id=DEVICE,
            site=SITE,
            hpke_key=world.device_hpke,
            embedder_sha256=EMBEDDER,
            min_version=INSTALLED_VERSION + 1,
            now=NOW,
            min_threshold=MIN_THRESHOLD,
        )

    return Target(
        "watchlist",
        DEFAULT_LIMITS.bundle_bytes,
        seeds,
        [("open_bundle", check)],
        generate,
        secrets=tuple(entry.subject_ref for entry in entries.entries),
    )


def _command_target(world: World) -> Target:
    seeds = command_seeds(world)
    pools = value_pools(world)
    bases = [json.loads(unb64(json.loads(s)["payload"])) for s in seeds]

    def generate(rng: random.Random) -> bytes:
        payload: Any = rng.choice(bases)
        if rng.random() < 0.8:
            payload = mutate_json(payload, rng, pools, rng.choice([1, 1, 1, 2, 3]))
        data, _ = general_jws(to_bytes(dumps(payload)), COMMAND_TYP, world, rng, pools)
        return data

    def check(data: bytes) -> object:
        return open_command(
            data,
            trust=world.trust,
            device_id=DEVICE,
            site=SITE,
            last_counter=LAST_COUNTER,
            now=NOW,
        )

    return Target(
        "command", DEFAULT_LIMITS.command_bytes, seeds, [("open_command", check)], generate
    )


def _event_target(world: World) -> Target:
    seeds = event_seeds(world)
    pools = value_pools(world)
    bases = [json.loads(unb64(s.split(b".")[1])) for s in seeds]
    adjudication = world.adjudication.public_key()

    def generate(rng: random.Random) -> bytes:
        claims: Any = copy.deepcopy(rng.choice(bases))
        if rng.random() < 0.75:
            claims = mutate_json(claims, rng, pools, rng.choice([1, 1, 1, 2, 3]))
        if isinstance(claims, dict) and rng.random() < 0.2:
            event_id = claims.get("event_id") if rng.random() < 0.7 else str(claims)
            device = claims.get("device_id") if rng.random() < 0.8 else OTHER_DEVICE
            plaintext = JPEG if rng.random() < 0.5 else rng.randbytes(rng.randrange(300))
            probe = hpke.seal(
                hpke.X25519_CHACHA,
                adjudication,
                plaintext,
                b"lfr-probe/1 info\x00"
                + canonical_json({"event_id": str(event_id), "device_id": str(device)}),
            )
            claims["probe"] = b64(probe)
        signer_roll = rng.random()
        device = claims.get("device_id") if isinstance(claims, dict) else DEVICE
        if signer_roll < 0.75:
            key, kid = (
                (world.other_signing, OTHER_DEVICE)
                if device == OTHER_DEVICE
                else (
                    world.device_signing,
                    DEVICE,
                )
            )
        elif signer_roll < 0.83:
            key, kid = world.rogue, DEVICE  # forged: another key under the device's kid
        elif signer_roll < 0.90:
            key, kid = world.other_signing, OTHER_DEVICE  # a real device, claiming another
        elif signer_roll < 0.95:
            key, kid = world.rogue, "cam-99"  # not enrolled
        else:
            key, kid = world.device_signing, rng.choice(["", "x" * 200, DEVICE.upper()])
        header: Any = {"alg": "EdDSA", "kid": kid, "typ": EVENT_TYP}
        if rng.random() < 0.08:
            header = mutate_json(header, rng, pools, rng.randint(1, 2))
        protected, body = b64(to_bytes(dumps(header))), b64(to_bytes(dumps(claims)))
        signature = b64(key.sign(f"{protected}.{body}".encode("ascii")))
        token = f"{protected}.{body}.{signature}"
        shape = rng.random()
        if shape < 0.02:
            token += "." + signature
        elif shape < 0.04:
            token = f"{protected}.{body}"
        elif shape < 0.06:
            token = f" {token}\n"
        elif shape < 0.08:
            token = f"{protected}.{body}.{signature}=="
        return to_bytes(token)

    keys = world.device_keys
    adjudication_private = world.adjudication

    def verify(data: bytes) -> object:
        # The control room's path: verify (signature, then claims), later open the probe.
        return open_probe(verify_event(data, keys), adjudication_private)

    return Target(
        "event",
        DEFAULT_LIMITS.event_bytes,
        seeds,
        [("verify_event", verify), ("parse_stored_event", parse_stored_event)],
        generate,
    )


def _status_seeds() -> list[bytes]:
    """What agents publish: a running device with a watchlist and alarms, one without, the
    last will."""
    running = {
        "state": "paused",
        "device_id": DEVICE,
        "site": SITE,
        "software_version": "0.1.0",
        "embedder_sha256": EMBEDDER,
        "model_hashes": {"detector": "a" * 64, "embedder": "b" * 64},
        "watchlist_version": INSTALLED_VERSION,
        "deployment_id": "kx-2026-11-28",
        "expires_at": "2026-11-28T21:00:00Z",
        "watchlist": "installed",
        "version_floor": INSTALLED_VERSION,
        "command_counter": LAST_COUNTER,
        "uptime_s": 600,
        "fps": 12.5,
        "frames": 300,
        "faces_detected": 40,
        "faces_discarded": 37,
        "faces_rejected_quality": {"blur": 2, "small": 1},
        "matches": 3,
        "events_published": 3,
        "events_queued": 9,
        "events_held": 0,
        "events_dropped": 0,
        "seconds_since_frame": 12.0,
        "outbox_max": 10,
        "camera_errors": 0,
        "camera_restarts": 0,
        "frames_dropped": 2,
        "last_rejection": {"what": "command", "reason": "rollback", "at": "2026-11-28T08:59:00Z"},
        "alarms": ["outbox 9/10 full", "camera stalled: no frame for 12s"],
        "at": "2026-11-28T09:00:00Z",
    }
    idle = {
        **running,
        "state": "online",
        "watchlist_version": None,
        "deployment_id": None,
        "expires_at": None,
        "watchlist": "none",
        "last_rejection": None,
        "alarms": [],
    }
    will = {"state": "offline", "device_id": DEVICE, "site": SITE}
    return [canonical_json(doc) for doc in (running, idle, will)]


def _status_target(world: World) -> Target:
    """The status document inside its JWS: a device signs whatever it likes, so the parser
    behind the signature check must hold on its own (issue 17 finding 1)."""
    seeds = _status_seeds()
    for seed in seeds:
        parse_status(seed)  # the seeds are what an agent writes: they must parse
    pools = value_pools(world)
    bases = [json.loads(s) for s in seeds]

    def generate(rng: random.Random) -> bytes:
        doc: Any = rng.choice(bases)
        return to_bytes(dumps(mutate_json(doc, rng, pools, rng.choice([1, 1, 1, 2, 3]))))

    return Target(
        "status", DEFAULT_LIMITS.status_bytes, seeds, [("parse_status", parse_status)], generate
    )


def make_target(name: str, world: World) -> Target:
    builders = {
        "watchlist": _watchlist_target,
        "event": _event_target,
        "command": _command_target,
        "status": _status_target,
    }
    return builders[name](world)
