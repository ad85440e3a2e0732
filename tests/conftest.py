"""Shared fixtures: real keys, real entries, a fixed `now` (no clock mocking anywhere)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol import hpke
from protocol.entries import Entries, Entry
from protocol.keys import HpkePrivateKey, key_id
from protocol.trust import TrustPolicy
from protocol.watchlist import POLICY, MatchThreshold, seal_bundle

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASETS = SHARED / "datasets"
EMBEDDER = "e" * 64
NOW = datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC)

# What the test bundles are signed with (a policy value; test devices set no 1:1 floor).
TEST_THRESHOLD = MatchThreshold(0.6, POLICY)


def make_entries(count: int = 3, dim: int = 64, per_entry: int = 2, seed: int = 7) -> Entries:
    rng = np.random.default_rng(seed)
    items = []
    for index in range(count):
        rows = rng.normal(size=(per_entry, dim)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        items.append(Entry(f"WL-{index:04d}", "wanted", 0.55 if index == 0 else None, rows))
    return Entries(EMBEDDER, dim, tuple(items))


@dataclass
class Fleet:
    """Two-of-three ops keys, one device with both HPKE keys, an adjudication key."""

    ops: list[ed25519.Ed25519PrivateKey]
    trust: TrustPolicy
    device_keys: dict[str, HpkePrivateKey]
    device_signing: ed25519.Ed25519PrivateKey
    adjudication: HpkePrivateKey

    def signers(self, *indices: int) -> list[tuple[ed25519.Ed25519PrivateKey, str]]:
        return [(self.ops[i], key_id(self.ops[i].public_key())) for i in indices]

    def bundle(
        self,
        version: int = 1,
        *,
        device_id: str = "cam-01",
        site: str = "kx",
        suite: str = hpke.DEFAULT_SUITE,
        signers: tuple[int, ...] = (0, 1),
        issued: datetime = NOW - timedelta(minutes=1),
        lifetime: timedelta = timedelta(hours=12),
        dtype: str = "float16",
        entries: Entries | None = None,
        threshold: MatchThreshold = TEST_THRESHOLD,
    ) -> bytes:
        return seal_bundle(
            entries or make_entries(),
            device_id=device_id,
            site=site,
            deployment_id="kx-2026-11-28",
            version=version,
            issued_at=issued,
            expires_at=issued + lifetime,
            recipient=self.device_keys[suite].public_key(),
            signers=self.signers(*signers),
            threshold=threshold,
            suite=suite,
            dtype=dtype,
        )


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    ops = [ed25519.Ed25519PrivateKey.generate() for _ in range(3)]
    return Fleet(
        ops=ops,
        trust=TrustPolicy.of([k.public_key() for k in ops], 2),
        device_keys={suite: hpke.generate_key(suite) for suite in hpke.SUITES},
        device_signing=ed25519.Ed25519PrivateKey.generate(),
        adjudication=hpke.generate_key(hpke.DEFAULT_SUITE),
    )
