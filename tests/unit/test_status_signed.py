"""The status on the wire (issue 17 finding 1): a JWS by the device key, verified against the
device of the topic it arrived on; every hostile document is one RejectedInput, and the
listener counts it as rejected and carries on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from central.listener import Listener
from central.store import AlertStore
from lfrkit.mqtt import MqttLink, MqttSettings
from protocol import errors
from protocol.encoding import canonical_json
from protocol.jws import sign_compact
from protocol.keys import load_signing_private
from protocol.status import (
    TYP,
    DeviceStatus,
    State,
    parse_status,
    sign_status,
    signed_offline_status,
    verify_status,
)
from provisioning.quickstart import quickstart
from tests.unit.test_parsers_fuzz import FUZZ, only_rejections
from tests.unit.test_status import AGENT_DOCUMENT, statuses

KEY_1 = ed25519.Ed25519PrivateKey.generate()  # cam-01's
KEY_2 = ed25519.Ed25519PrivateKey.generate()  # cam-02's
KEYS = {"cam-01": KEY_1.public_key(), "cam-02": KEY_2.public_key()}
GENUINE = sign_status(parse_status(AGENT_DOCUMENT), KEY_1)  # cam-01 at kx


def verify(token: bytes, device_id: str = "cam-01", site: str = "kx") -> DeviceStatus:
    return verify_status(token, site=site, device_id=device_id, device_keys=KEYS)


def doc(**changes: Any) -> bytes:
    return canonical_json({**json.loads(AGENT_DOCUMENT), **changes})


def by_cam_01(payload: bytes) -> bytes:
    """Any bytes, signed by cam-01's own key: a device attacking the consumers."""
    return sign_compact(payload, KEY_1, "cam-01", TYP)


def deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_a_signed_status_verifies_on_its_own_topic() -> None:
    assert verify(GENUINE) == parse_status(AGENT_DOCUMENT)
    will = signed_offline_status("cam-02", "kx", KEY_2)
    assert verify(will, "cam-02") == DeviceStatus(State.OFFLINE, "cam-02", "kx")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        # The review's reproductions, sent with a device's own key.
        (by_cam_01(b"[" * 3000 + b"]" * 3000), "bad_json"),  # ~6 KB of nesting
        (by_cam_01(doc(alarms=deep(40))), "bad_json"),  # deeper than any format, < recursion
        (by_cam_01(doc(fps=1.0).replace(b'"fps":1.0', b'"fps":Infinity')), "bad_json"),
        (by_cam_01(doc(fps=1.0).replace(b'"fps":1.0', b'"fps":-Infinity')), "bad_json"),
        (by_cam_01(doc(frames=2**63 + 1)), "bad_json"),
        (by_cam_01(doc(command_counter=2**63)), "bad_json"),
        (by_cam_01(doc(uptime_s=10**400)), "bad_json"),
        (by_cam_01(doc(version_floor="not-a-number")), "bad_json"),
        (by_cam_01(doc(command_counter="\uff19")), "bad_json"),  # a fullwidth digit
        (by_cam_01(b'{"state":"online","state":"paused","device_id":"cam-01"}'), "bad_json"),
        # Forged devices: another device's name or key on cam-01's topic.
        (by_cam_01(doc(device_id="cam-02")), "wrong_device"),
        (by_cam_01(doc(site="euston")), "wrong_device"),
        (sign_status(parse_status(doc(device_id="cam-02")), KEY_2), "wrong_device"),
        (sign_compact(AGENT_DOCUMENT, KEY_2, "cam-01", TYP), "bad_signature"),
        (
            sign_compact(AGENT_DOCUMENT, ed25519.Ed25519PrivateKey.generate(), "cam-01", TYP),
            "bad_signature",
        ),
        # The old, unsigned document, and other tokens.
        (AGENT_DOCUMENT, "bad_json"),
        (sign_compact(AGENT_DOCUMENT, KEY_1, "cam-01", "lfr-event+jws"), "unsupported_algorithm"),
        (b"x" * (64 * 1024 + 1), "oversize"),
    ],
)
def test_hostile_status_is_refused(token: bytes, reason: str) -> None:
    with pytest.raises(errors.RejectedInput) as caught:
        verify(token)
    assert caught.value.reason == reason


def test_an_unknown_device_is_refused() -> None:
    token = sign_status(parse_status(doc(device_id="cam-09")), ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(errors.UnknownSigner):
        verify(token, "cam-09")


@settings(max_examples=200, deadline=None)
@given(statuses)
def test_signed_documents_round_trip(status: DeviceStatus) -> None:
    token = sign_status(status, KEY_1)
    got = verify_status(
        token,
        site=status.site,
        device_id=status.device_id,
        device_keys={status.device_id: KEY_1.public_key()},
    )
    assert got == status


@FUZZ
@given(st.binary(max_size=4096))
def test_bytes_only_ever_raise_rejected_input(data: bytes) -> None:
    only_rejections(lambda: verify(data))


@FUZZ
@given(st.binary(max_size=4096))
def test_anything_cam_01_signs_only_ever_raises_rejected_input(data: bytes) -> None:
    only_rejections(lambda: verify(by_cam_01(data)))


@FUZZ
@given(st.integers(0, len(GENUINE) - 1), st.integers(1, 255))
def test_an_altered_token_is_refused(index: int, flip: int) -> None:
    altered = bytearray(GENUINE)
    altered[index] ^= flip
    with pytest.raises(errors.RejectedInput):
        verify(bytes(altered))


# -- the listener: a bad status is counted as rejected, never stored, never fatal -----------


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Listener:
    root = tmp_path_factory.mktemp("fleet")
    index = quickstart(root, devices=2, now=datetime.now(UTC))
    store = AlertStore(f"sqlite:///{root / 'alerts.db'}")
    # The real link, never connected: handle_status is what run() calls for each message.
    link = MqttLink(MqttSettings("127.0.0.1", 1, Path(index["ca_cert"]), None, None))
    return Listener(store, Path(index["registry"]), link)


def device_key(listener: Listener, device: str) -> ed25519.Ed25519PrivateKey:
    keys = listener.registry_path.parent.parent / "devices" / device / "state" / "keys"
    return load_signing_private((keys / "signing.key").read_bytes())


def test_the_listener_stores_a_status_only_under_its_signer(listener: Listener) -> None:
    key = device_key(listener, "cam-01")
    mine = sign_status(parse_status(doc(device_id="cam-01", site="demo")), key)
    claims_cam_02 = sign_status(parse_status(doc(device_id="cam-02", site="demo")), key)
    before = listener.stats.rejected.copy()
    # cam-01's key, claiming to be cam-02: on cam-02's topic the signature fails; on its own
    # topic the kid names another device.
    listener.handle_status("lfr/v1/demo/cam-02/status", claims_cam_02)
    listener.handle_status("lfr/v1/demo/cam-01/status", claims_cam_02)
    listener.handle_status("lfr/v1/demo/cam-01/status", mine)
    rows = listener.store.rows("SELECT device_id FROM status_snapshots")
    assert [tuple(r) for r in rows] == [("cam-01",)]
    refused = {"status:bad_signature": 1, "status:wrong_device": 1}
    assert listener.stats.rejected - before == refused
    assert {k: v for k, v in listener.store.rejections().items() if k in refused} == refused


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from(["cam-01", "cam-02", "cam-99", "x/y"]))
def test_the_listener_survives_any_status(listener: Listener, data: bytes, device: str) -> None:
    before = sum(listener.stats.rejected.values())
    listener.handle_status(f"lfr/v1/demo/{device}/status", data)
    assert sum(listener.stats.rejected.values()) == before + 1
