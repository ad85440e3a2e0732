"""The campaign's world: its own keys and valid seed inputs, all derived from the seed
(so a replay has the same keys), and the device state the parsers check against."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

from protocol import hpke
from protocol.command import Action, Command, sign_command
from protocol.entries import Entries, Entry
from protocol.event import MatchEvent, seal_probe, sign_event
from protocol.keys import HpkePrivateKey, HybridPrivateKey, key_id
from protocol.trust import TrustPolicy
from protocol.watchlist import CALIBRATED, POLICY, MatchThreshold, seal_bundle

NOW = datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC)
DEVICE, OTHER_DEVICE, SITE = "cam-01", "cam-02", "kx"
EMBEDDER = "e" * 64
DIM = 16
INSTALLED_VERSION = 1  # the device holds version 1: a bundle needs version >= 2
MIN_THRESHOLD = 0.6  # the device profile's 1:1 threshold: a lower signed one is refused
SEED_THRESHOLDS = (
    MatchThreshold(0.7, CALIBRATED, 1e-3, 3, 1000),
    MatchThreshold(0.65, POLICY),
)
# Validly signed but below the device's floor: the campaign reaches threshold_too_low from a
# seed instead of hoping a mutation lands on a number just under 0.6.
TOO_LOW_THRESHOLD = MatchThreshold(0.5, POLICY)
LAST_COUNTER = 4  # the device ran command 4: a command needs counter >= 5
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64)


# -- keys and seeds -----------------------------------------------------------------------


def _secret(seed: int, label: str, size: int = 32) -> bytes:
    return hashlib.sha512(f"lfr-fuzz/{seed}/{label}".encode()).digest()[:size]


def _ed25519(seed: int, label: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(_secret(seed, label))


@dataclass(frozen=True)
class World:
    """The campaign's own keys, all derived from the seed: 3 pinned ops keys (threshold 2),
    a rogue ops key nobody pinned, the device's HPKE keys (both suites), two devices'
    signing keys and the control room's adjudication key."""

    seed: int
    ops: tuple[ed25519.Ed25519PrivateKey, ...]
    rogue: ed25519.Ed25519PrivateKey
    trust: TrustPolicy
    device_hpke: dict[str, HpkePrivateKey]
    device_signing: ed25519.Ed25519PrivateKey
    other_signing: ed25519.Ed25519PrivateKey
    adjudication: x25519.X25519PrivateKey

    @classmethod
    def create(cls, seed: int) -> World:
        ops = tuple(_ed25519(seed, f"ops-{i}") for i in range(3))
        hybrid = HybridPrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(_secret(seed, "mlkem", 64)),
            x25519.X25519PrivateKey.from_private_bytes(_secret(seed, "hybrid-x25519")),
        )
        return cls(
            seed=seed,
            ops=ops,
            rogue=_ed25519(seed, "rogue"),
            trust=TrustPolicy.of([k.public_key() for k in ops], 2),
            device_hpke={
                hpke.X25519_CHACHA: x25519.X25519PrivateKey.from_private_bytes(
                    _secret(seed, "device-x25519")
                ),
                hpke.HYBRID_CHACHA: hybrid,
            },
            device_signing=_ed25519(seed, DEVICE),
            other_signing=_ed25519(seed, OTHER_DEVICE),
            adjudication=x25519.X25519PrivateKey.from_private_bytes(_secret(seed, "adjudication")),
        )

    def signer(self, key: ed25519.Ed25519PrivateKey) -> tuple[ed25519.Ed25519PrivateKey, str]:
        return key, key_id(key.public_key())

    @property
    def device_keys(self) -> dict[str, ed25519.Ed25519PublicKey]:
        return {
            DEVICE: self.device_signing.public_key(),
            OTHER_DEVICE: self.other_signing.public_key(),
        }


def seed_entries(seed: int, count: int = 3, per_entry: int = 2) -> Entries:
    rng = np.random.default_rng(seed)
    items = []
    for index in range(count):
        rows = rng.normal(size=(per_entry, DIM)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        items.append(Entry(f"WL-{index:04d}", "wanted", 0.55 if index == 0 else None, rows))
    return Entries(EMBEDDER, DIM, tuple(items))


def watchlist_seeds(world: World) -> list[bytes]:
    entries = seed_entries(world.seed)
    out = []
    for version, suite, dtype, threshold in (
        (2, hpke.X25519_CHACHA, "float16", SEED_THRESHOLDS[0]),
        (3, hpke.X25519_CHACHA, "int8", SEED_THRESHOLDS[1]),
        (4, hpke.HYBRID_CHACHA, "float16", SEED_THRESHOLDS[0]),
        (5, hpke.X25519_CHACHA, "float16", TOO_LOW_THRESHOLD),
    ):
        out.append(
            seal_bundle(
                entries,
                device_id=DEVICE,
                site=SITE,
                deployment_id="kx-2026-11-28",
                version=version,
                issued_at=NOW - timedelta(minutes=1),
                expires_at=NOW + timedelta(hours=12),
                recipient=world.device_hpke[suite].public_key(),
                signers=[world.signer(world.ops[0]), world.signer(world.ops[version % 2 + 1])],
                threshold=threshold,
                suite=suite,
                dtype=dtype,
            )
        )
    return out


def event_seeds(world: World) -> list[bytes]:
    out = []
    for number, (device, key) in enumerate(
        ((DEVICE, world.device_signing), (OTHER_DEVICE, world.other_signing))
    ):
        event_id = f"{number:08x}-1b4e-4a1c-9d2f-5e6f7a8b9c0d"
        event = MatchEvent(
            event_id=event_id,
            device_id=device,
            site=SITE,
            deployment_id="kx-2026-11-28",
            watchlist_version=2,
            subject_ref=f"WL-{number:04d}",
            category="wanted",
            score=0.71,
            threshold=0.6,
            margin=0.2,
            observed_at=NOW,
            track_id=17 + number,
            embedder_sha256=EMBEDDER,
            probe_suite=hpke.X25519_CHACHA,
            probe=seal_probe(
                JPEG, world.adjudication.public_key(), event_id=event_id, device_id=device
            ),
        )
        out.append(sign_event(event, key))
    return out


def command_seeds(world: World) -> list[bytes]:
    out = []
    for counter, action in enumerate(Action, start=LAST_COUNTER + 1):
        command = Command(
            DEVICE, SITE, action, counter, NOW - timedelta(minutes=1), NOW + timedelta(minutes=9)
        )
        out.append(sign_command(command, [world.signer(world.ops[0]), world.signer(world.ops[2])]))
    return out
