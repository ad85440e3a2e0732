"""Trust rotation (review finding 7): a device's pinned ops keys, threshold and adjudication
key change only by a rotation signed by ``threshold`` of the keys it pins now.

The attack is reproduced from outside: an install bundle on disk whose trust.json names one
attacker key with threshold 1, given to ``lfr-provision device-install`` (with and without
``--force``). Then a proper rotation is made with ``lfr-provision rotate-trust``, installed,
and the node is shown to refuse a watchlist and a command signed by the rotated-out keys.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.control import DeviceControl, MatchingPolicy
from agent.io.identity import load_identity
from agent.io.watchlist_store import WatchlistStore
from agent.trust_update import TrustUpdater
from lfrkit.layout import DeviceLayout
from protocol import errors, hpke
from protocol.command import Action, Command, sign_command
from protocol.encoding import b64url_decode, b64url_encode, canonical_json
from protocol.jws import sign_general
from protocol.keys import key_id, public_pem
from protocol.trust import (
    ROTATION_TYP,
    DeviceTrust,
    TrustPolicy,
    open_rotation,
    parse_device_trust,
    sign_rotation,
)
from protocol.watchlist import seal_bundle
from provisioning.authority import load_ops_signer
from provisioning.registry import Registry
from tests.conftest import EMBEDDER, NOW, TEST_THRESHOLD, make_entries
from tests.unit.provision_cli import ok, refused

Signer = tuple[ed25519.Ed25519PrivateKey, str]


def _signer() -> Signer:
    key = ed25519.Ed25519PrivateKey.generate()
    return key, key_id(key.public_key())


OLD = [_signer(), _signer()]
NEW = [_signer(), _signer(), _signer()]
ADJUDICATION = hpke.generate_key(hpke.DEFAULT_SUITE).public_key()
CURRENT = DeviceTrust(
    "cam-01", "kx", TrustPolicy.of([k.public_key() for k, _ in OLD], 2), ADJUDICATION, 4
)


def _rotated(serial: int = 5, device_id: str = "cam-01") -> DeviceTrust:
    return DeviceTrust(
        device_id, "kx", TrustPolicy.of([k.public_key() for k, _ in NEW], 2), ADJUDICATION, serial
    )


# -- the pure verifier ---------------------------------------------------------------


def test_a_rotation_signed_by_the_pinned_threshold_is_accepted() -> None:
    new = open_rotation(sign_rotation(_rotated(), OLD), CURRENT)
    assert new.same_trust(_rotated()) and new.policy.threshold == 2
    assert set(new.policy.ops_keys) == {kid for _, kid in NEW}


@pytest.mark.parametrize(
    ("signers", "why"),
    [
        (OLD[:1], "one of two pinned keys"),
        ([OLD[0], OLD[0]], "the same pinned key twice"),
        (NEW, "the new keys vouching for themselves"),
        ([_signer()], "an attacker's key"),
    ],
)
def test_a_rotation_below_the_pinned_threshold_is_refused(signers: list[Signer], why: str) -> None:
    with pytest.raises(errors.InsufficientSignatures):
        open_rotation(sign_rotation(_rotated(), signers), CURRENT)


def test_a_replayed_or_older_rotation_is_refused() -> None:
    for serial in (1, 4):  # below and equal to the pinned serial
        with pytest.raises(errors.RollbackRejected):
            open_rotation(sign_rotation(_rotated(serial), OLD), CURRENT)


def test_a_rotation_for_another_device_is_refused() -> None:
    with pytest.raises(errors.WrongDevice):
        open_rotation(sign_rotation(_rotated(device_id="cam-02"), OLD), CURRENT)


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(errors.Oversize):
        open_rotation(b"[" * 300_000, CURRENT)


def test_an_edited_payload_breaks_every_signature() -> None:
    doc = json.loads(sign_rotation(_rotated(), OLD))
    payload = json.loads(b64url_decode(doc["payload"], "payload"))
    payload["threshold"] = 1
    doc["payload"] = b64url_encode(canonical_json(payload))
    with pytest.raises(errors.InsufficientSignatures):
        open_rotation(canonical_json(doc), CURRENT)


_VALID = sign_rotation(_rotated(), OLD)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.one_of(
        st.binary(max_size=2048),
        st.builds(
            lambda at, junk: _VALID[:at] + junk + _VALID[at + len(junk) :],
            st.integers(0, len(_VALID)),
            st.binary(min_size=1, max_size=8),
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_bytes_give_the_pinned_keys_trust_or_a_rejection(data: bytes) -> None:
    """Whatever arrives, the verifier answers with a RejectedInput or with a trust that the
    pinned keys really signed (never a crash, never anything else)."""
    try:
        new = open_rotation(data, CURRENT)
    except errors.RejectedInput:
        return
    assert new.serial > CURRENT.serial and new.device_id == CURRENT.device_id
    assert new.same_trust(_rotated())  # the only document OLD signed in this test


@given(st.binary(max_size=4096))
def test_trust_json_parses_or_is_rejected(data: bytes) -> None:
    """Nothing but a DeviceTrust or a RejectedInput (the agent reads trust.json at start)."""
    with contextlib.suppress(errors.RejectedInput):
        assert isinstance(parse_device_trust(data), DeviceTrust)


def test_a_signature_of_another_typ_is_not_a_rotation() -> None:
    forged = sign_general(canonical_json(_rotated().to_json()), OLD, "lfr-command+jws")
    with pytest.raises(errors.UnsupportedAlgorithm):
        open_rotation(forged, CURRENT)
    assert ROTATION_TYP == "lfr-trust+jws"


# -- the node and the ops commands, end to end on disk -----------------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An authority (two ops keys, threshold 2) and cam-01@kx installed in ``node``."""
    monkeypatch.chdir(tmp_path)
    ok("init-authority", "--out", "auth")
    ok("device-init", "--id", "cam-01", "--site", "kx", "--state", "node")
    ok("approve", "node/request.json", "--authority", "auth", "--out", "b")
    ok("device-install", "b", "--state", "node")
    return tmp_path


def _attacker_bundle(site: Path) -> Path:
    """The approved bundle with trust.json naming one attacker key, threshold 1."""
    evil = site / "evil"
    shutil.copytree(site / "b", evil)
    doc = json.loads((evil / "trust.json").read_text())
    key = ed25519.Ed25519PrivateKey.generate()
    doc.update(ops_keys=[public_pem(key.public_key()).decode()], threshold=1)
    (evil / "trust.json").write_bytes(canonical_json(doc))
    return evil


def test_attacker_trust_in_an_install_bundle_is_refused_even_with_force(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned = (site / "node" / "trust.json").read_bytes()
    evil = _attacker_bundle(site)
    err = refused(capsys, "device-install", str(evil), "--state", "node")
    assert "changes the pinned ops keys" in err and "trust.jws" in err
    err = refused(capsys, "device-install", str(evil), "--state", "node", "--force")
    assert "changes the pinned ops keys" in err
    # A trust.jws signed by the attacker's own key (or by one pinned key) is no better.
    one = load_ops_signer(site / "auth" / "ops-1.key")
    trust = parse_device_trust((evil / "trust.json").read_bytes())
    rotated = DeviceTrust(trust.device_id, trust.site, trust.policy, trust.adjudication_key, 1)
    (evil / "trust.json").write_bytes(rotated.to_bytes())
    (evil / "trust.jws").write_bytes(sign_rotation(rotated, [one]))
    err = refused(capsys, "device-install", str(evil), "--state", "node", "--force")
    assert "rejected" in err and "1 valid signature(s)" in err and "2 required" in err
    assert (site / "node" / "trust.json").read_bytes() == pinned


def test_renewal_bundle_with_the_same_trust_installs_as_before(site: Path) -> None:
    ok("renew", "cam-01", "--authority", "auth", "--out", "renewed")
    ok("device-install", "renewed", "--state", "node")


def test_rotate_trust_needs_the_current_threshold_of_signers(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok("ops-key", "--out", "new-1.key")
    before = (site / "auth" / "authority.json").read_bytes()
    err = refused(
        capsys,
        *("rotate-trust", "--authority", "auth", "--ops-pub", "new-1.pub", "--threshold", "1"),
        *("--sign", "auth/ops-1.key", "--out", "rot"),
    )
    assert "1 of the currently pinned ops keys signed, 2 required" in err
    assert (site / "auth" / "authority.json").read_bytes() == before
    assert not (site / "rot").exists()


def _bundle(site: Path, version: int, signers: list[Signer]) -> bytes:
    record = Registry.load(site / "auth" / "registry.json").get("cam-01")
    return seal_bundle(
        make_entries(count=2),
        device_id="cam-01",
        site="kx",
        deployment_id=f"d{version}",
        version=version,
        issued_at=NOW - timedelta(minutes=1),
        expires_at=NOW + timedelta(hours=1),
        recipient=record.hpke_key(hpke.DEFAULT_SUITE),
        signers=signers,
        threshold=TEST_THRESHOLD,
    )


def _control(site: Path) -> DeviceControl:
    """The node as the agent builds it at start, from what is on its disk now."""
    store = WatchlistStore(load_identity(site / "node"), EMBEDDER)
    control = DeviceControl(
        store.open_state(), store, MatchingPolicy(), lambda: NOW, retry_after=0.0
    )
    control.load_stored()
    return control


def _command(signers: list[Signer], action: Action, counter: int) -> bytes:
    command = Command("cam-01", "kx", action, counter, NOW, NOW + timedelta(minutes=10))
    return sign_command(command, signers)


def test_a_proper_rotation_is_applied_and_the_old_keys_are_refused_afterwards(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = [load_ops_signer(site / "auth" / f"ops-{i}.key") for i in (1, 2)]
    control = _control(site)
    control.on_watchlist(_bundle(site, 1, old))
    assert control.header is not None and control.header.version == 1

    for name in ("new-1", "new-2", "new-3"):
        ok("ops-key", "--out", f"{name}.key")
    ok(
        *("rotate-trust", "--authority", "auth", "--threshold", "2", "--out", "rot"),
        *("--ops-pub", "new-1.pub", "--ops-pub", "new-2.pub", "--ops-pub", "new-3.pub"),
        *("--sign", "auth/ops-1.key", "--sign", "auth/ops-2.key"),
    )
    assert (site / "rot" / "cam-01" / "trust.jws").exists()
    ok("device-install", "rot/cam-01", "--state", "node")
    ok("device-install", "rot/cam-01", "--state", "node")  # idempotent
    pinned = parse_device_trust((site / "node" / "trust.json").read_bytes())
    new = [load_ops_signer(site / f"new-{i}.key") for i in (1, 2, 3)]
    assert pinned.serial == 1 and set(pinned.policy.ops_keys) == {kid for _, kid in new}

    # The restarted agent: the list the old keys signed is no longer in force ...
    control = _control(site)
    assert control.header is None
    # ... a watchlist or a command signed by the rotated-out keys is refused ...
    control.on_watchlist(_bundle(site, 2, old))
    assert control.header is None
    rejection = control.state.last_rejection
    assert rejection is not None
    assert (rejection.what, rejection.reason) == ("watchlist", errors.InsufficientSignatures.reason)
    control.on_command(_command(old, Action.PAUSE, 1))
    assert not control.paused
    rejection = control.state.last_rejection
    assert rejection is not None
    assert (rejection.what, rejection.reason) == ("command", errors.InsufficientSignatures.reason)
    # ... and the new keys are obeyed (any two of three).
    control.on_watchlist(_bundle(site, 3, new[1:]))
    assert control.header is not None and control.header.version == 3
    control.on_command(_command(new[:2], Action.PAUSE, 2))
    assert control.paused

    # A device approved after the rotation pins the new trust from its first install.
    ok("device-init", "--id", "cam-02", "--site", "kx", "--state", "node2")
    ok("approve", "node2/request.json", "--authority", "auth", "--out", "b2")
    fresh = parse_device_trust((site / "b2" / "trust.json").read_bytes())
    assert fresh.serial == 1 and fresh.policy.ops_keys.keys() == pinned.policy.ops_keys.keys()
    # The old rotation cannot be replayed after the next one.
    ok(
        *("rotate-trust", "--authority", "auth", "--threshold", "1", "--out", "rot2"),
        *("--ops-pub", "new-1.pub", "--sign", "new-1.key", "--sign", "new-2.key"),
    )
    ok("device-install", "rot2/cam-01", "--state", "node")
    err = refused(capsys, "device-install", "rot/cam-01", "--state", "node")
    assert "rejected" in err


# -- rotations arriving over MQTT (the agent's TrustUpdater) ------------------------------


def test_the_agent_saves_an_accepted_rotation_and_ignores_the_rest(tmp_path: Path) -> None:
    layout = DeviceLayout(tmp_path)
    updater = TrustUpdater(layout, CURRENT)
    assert updater.is_rotation(sign_rotation(_rotated(), OLD))
    assert not updater.is_rotation(_command(OLD[:1], Action.WIPE, 1))  # a command goes on
    updater.on_rotation(sign_rotation(_rotated(), OLD[:1]))
    assert updater.rotated is None and updater.last_refusal == "too_few_signatures"
    assert not layout.trust.exists()
    updater.on_rotation(sign_rotation(_rotated(), OLD))
    assert updater.rotated is not None and updater.rotated.same_trust(_rotated())
    assert parse_device_trust(layout.trust.read_bytes()).same_trust(_rotated())


def test_a_rotation_the_disk_refuses_leaves_the_old_trust_in_force(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_dir = tmp_path / "state"
    not_a_dir.write_bytes(b"")
    updater = TrustUpdater(DeviceLayout(not_a_dir), CURRENT)
    updater.on_rotation(sign_rotation(_rotated(), OLD))
    assert updater.rotated is None  # the agent keeps running on the pinned trust
    assert "not saved" in caplog.text
