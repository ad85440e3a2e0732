"""The watchlist at rest: atomic install, the previous one in force on every rejection,
re-verification at start, expiry wipes, and power cuts between the two writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.core.device_state import Floors
from agent.io.identity import DeviceIdentity, load_identity
from agent.io.watchlist_store import WatchlistStore
from protocol import errors, hpke
from protocol.entries import Entries
from protocol.keys import key_id
from protocol.watchlist import MatchThreshold, seal_bundle
from provisioning.approve import approve
from provisioning.authority import init_authority, load_ops_signer
from provisioning.device import device_init, device_install
from tests.conftest import EMBEDDER, NOW, TEST_THRESHOLD, make_entries


@dataclass
class Node:
    auth: Path
    store: WatchlistStore
    identity: DeviceIdentity

    def bundle(
        self,
        version: int,
        *,
        signers: tuple[int, ...] = (1, 2),
        issued: datetime = NOW - timedelta(minutes=1),
        lifetime: timedelta = timedelta(hours=1),
        device_id: str = "cam-01",
        suite: str = hpke.DEFAULT_SUITE,
        entries: Entries | None = None,
        threshold: MatchThreshold = TEST_THRESHOLD,
    ) -> bytes:
        from provisioning.registry import Registry

        record = Registry.load(self.auth / "registry.json").get("cam-01")
        return seal_bundle(
            entries or make_entries(count=version),
            device_id=device_id,
            site="kx",
            deployment_id=f"d{version}",
            version=version,
            issued_at=issued,
            expires_at=issued + lifetime,
            recipient=record.hpke_key(suite),
            suite=suite,
            signers=[load_ops_signer(self.auth / f"ops-{i}.key") for i in signers],
            threshold=threshold,
        )


def make_node(tmp_path: Path) -> Node:
    """An authority with two ops keys and one enrolled device, cam-01 at kx, in ``tmp_path``."""
    init_authority(tmp_path / "auth", 2, 2, NOW)
    device_init("cam-01", "kx", tmp_path / "dev", NOW)
    approve(tmp_path / "dev" / "request.json", tmp_path / "auth", tmp_path / "b", NOW)
    device_install(tmp_path / "b", tmp_path / "dev")
    identity = load_identity(tmp_path / "dev")
    return Node(tmp_path / "auth", WatchlistStore(identity, EMBEDDER), identity)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return make_node(tmp_path)


def installed_version(node: Node) -> int:
    watchlist = node.store.load(NOW)
    assert watchlist is not None
    return watchlist.header.version


def test_install_then_reload(node: Node) -> None:
    assert node.store.load(NOW) is None
    node.store.install(node.bundle(1), NOW)
    assert installed_version(node) == 1
    node.store.install(node.bundle(3, suite=hpke.HYBRID_CHACHA), NOW)
    assert installed_version(node) == 3
    assert node.store.floors() == Floors(watchlist_version=3)


def test_every_rejection_keeps_the_previous_watchlist(node: Node) -> None:
    node.store.install(node.bundle(2), NOW)
    stored = node.identity.layout.watchlist.read_bytes()
    bad = {
        "oversize": b"x" * (97 * 1024 * 1024),
        "bad_json": b"{not json",
        "too_few_signatures": node.bundle(3, signers=(1,)),
        "wrong_device": node.bundle(3, device_id="cam-02"),
        "rollback": node.bundle(2),
        "expired": node.bundle(3, issued=NOW - timedelta(hours=2)),
        "not_yet_valid": node.bundle(3, issued=NOW + timedelta(hours=2)),
    }
    for reason, data in bad.items():
        with pytest.raises(errors.RejectedInput) as caught:
            node.store.install(data, NOW)
        assert caught.value.reason == reason
        assert installed_version(node) == 2
        assert node.identity.layout.watchlist.read_bytes() == stored
    with pytest.raises(errors.EmbedderMismatch):
        WatchlistStore(node.identity, "0" * 64).install(node.bundle(3), NOW)
    assert installed_version(node) == 2


def test_power_cut_between_bundle_and_floor_recovers_the_new_one(node: Node) -> None:
    node.store.install(node.bundle(1), NOW)
    layout = node.identity.layout
    # Simulate: bundle v2 renamed into place, then power lost before the floor was raised.
    layout.watchlist.write_bytes(node.bundle(2))
    assert node.store.floors().watchlist_version == 1
    assert installed_version(node) == 2
    assert node.store.floors().watchlist_version == 2


def test_stored_bundle_rolled_back_on_disk_is_refused_at_start(node: Node) -> None:
    old = node.bundle(1)
    node.store.install(old, NOW)
    node.store.install(node.bundle(2), NOW)
    layout = node.identity.layout
    layout.watchlist.write_bytes(old)  # an attacker with disk access restores an old list
    with pytest.raises(errors.RollbackRejected):
        node.store.load(NOW)


def test_expired_watchlist_is_wiped_from_disk_at_load(node: Node) -> None:
    node.store.install(node.bundle(1, lifetime=timedelta(minutes=30)), NOW)
    layout = node.identity.layout
    with pytest.raises(errors.Expired):
        node.store.load(NOW + timedelta(minutes=31), wipe_if_expired=False)
    assert layout.watchlist.exists()
    with pytest.raises(errors.Expired):
        node.store.load(NOW + timedelta(minutes=31))
    assert not layout.watchlist.exists()
    # The floor survives the wipe: the expired list cannot be re-sent.
    with pytest.raises(errors.RollbackRejected):
        node.store.install(node.bundle(1), NOW)


def test_corrupt_floors_are_not_read_as_zero(node: Node) -> None:
    node.store.install(node.bundle(1), NOW)
    layout = node.identity.layout
    layout.counters.write_text(json.dumps({"watchlist_version": "zero"}))
    assert node.store.floors() == Floors(paused=True)
    assert (node.store.floors_problem or "").startswith("anti-rollback floors not proven")


def test_ops_keys_are_pinned_by_id(node: Node) -> None:
    policy = node.identity.trust.policy
    assert set(policy.ops_keys) == {
        key_id(load_ops_signer(node.auth / f"ops-{i}.key")[0].public_key()) for i in (1, 2)
    }
