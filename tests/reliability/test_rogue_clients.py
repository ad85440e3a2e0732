"""Rogue MQTT clients against the real broker with the policy lfr-provision generated.

Each test observes the refusal where it happens: the TLS handshake or CONNACK that fails (and
the broker's log line about it), the PUBACK reason code 0x87 (not authorised) with nothing
reaching any subscriber, or a subscription that delivers nothing while the rightful device
gets the messages. The revocation test is last: it revokes cam-03 with the real
``lfr-provision revoke`` and restarts the broker (Mosquitto reads its CRL only at start).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lfrkit.mqtt import MqttError, MqttLink, MqttSettings
from protocol.topics import DEFAULT_SHARE_GROUP, shared
from tests.integration.test_broker_policy import NOT_AUTHORIZED, drain
from tests.reliability.conftest import Recorder
from tools.processes import BIN, Rig

ACCEPTED = (0, 16)  # PUBACK: success, or success with no matching subscribers


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, artefacts: Path) -> Iterator[Rig]:
    rig = Rig.create(tmp_path_factory.mktemp("rogue"), devices=3, logs=artefacts / "rogue")
    try:
        yield rig
    finally:
        rig.close()


def link(rig: Rig, cert: Path | None, key: Path | None) -> MqttLink:
    return MqttLink(
        MqttSettings(
            rig.index["broker"]["host"],
            rig.index["broker"]["port"],
            Path(rig.index["ca_cert"]),
            cert,
            key,
        )
    )


def refused_connection(rig: Rig, client: MqttLink, record: Recorder, what: str) -> str:
    """Connect ``client``; it must be refused. Returns what the broker logged meanwhile."""
    offset = len(rig.broker.log_text())
    with pytest.raises(MqttError) as refusal:
        client.connect(timeout=5)
    record("rogue-clients", f"{what}: {refusal.value}")
    time.sleep(0.3)  # the broker writes its log line as it drops the connection
    logged = rig.broker.log_text()[offset:]
    record("rogue-clients", logged)
    return logged


def certificate(
    path: Path, common_name: str, issuer: tuple[ec.EllipticCurvePrivateKey, x509.Name] | None
) -> tuple[Path, Path, ec.EllipticCurvePrivateKey, x509.Name]:
    """A client certificate made with ``cryptography``: self-signed when ``issuer`` is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer, issuer_name = issuer if issuer is not None else (key, name)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )
    path.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = path / f"{common_name}.crt", path / f"{common_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path, key, name


def test_client_without_certificate_is_refused(rig: Rig, record: Recorder) -> None:
    logged = refused_connection(rig, link(rig, None, None), record, "no certificate")
    assert "peer did not return a certificate" in logged, logged


@pytest.mark.parametrize("impersonating", ["cam-01", "ops"])
def test_self_signed_certificate_is_refused(
    rig: Rig, tmp_path: Path, impersonating: str, record: Recorder
) -> None:
    """A self-signed certificate whose name is a real device's or ops': the name is nothing
    without our CA's signature."""
    cert, key, _, _ = certificate(tmp_path, impersonating, None)
    logged = refused_connection(rig, link(rig, cert, key), record, f"self-signed {impersonating}")
    assert "certificate verify failed" in logged, logged


def test_certificate_from_a_rogue_ca_is_refused(rig: Rig, tmp_path: Path, record: Recorder) -> None:
    _, _, ca_key, ca_name = certificate(tmp_path / "ca", "Rogue CA", None)
    cert, key, _, _ = certificate(tmp_path / "client", "cam-01", (ca_key, ca_name))
    logged = refused_connection(rig, link(rig, cert, key), record, "rogue-CA cam-01")
    assert "certificate verify failed" in logged, logged


def test_device_cannot_publish_as_another_device(rig: Rig, record: Recorder) -> None:
    """cam-01's valid certificate on cam-02's events and status: PUBACK 0x87 and nothing
    reaches the control room or ops, while cam-02 itself gets through."""
    alerts, ops = rig.client("alerts"), rig.client("ops")
    intruder = rig.client("cam-01")
    try:
        alerts.subscribe(
            [
                (shared(DEFAULT_SHARE_GROUP, "lfr/v1/+/+/events"), 1),
                (shared(DEFAULT_SHARE_GROUP, "lfr/v1/+/+/status"), 1),
            ]
        )
        ops.subscribe([("lfr/v1/+/+/status", 1)])
        drain(alerts, 0.3)
        drain(ops, 0.3)
        for kind in ("events", "status", "watchlist", "command"):
            topic = rig.topic("cam-02", kind)
            code = intruder.wait_ack(intruder.publish(topic, b"forged by cam-01"))
            record("rogue-clients", f"cam-01 publish to {topic}: PUBACK {code:#x}")
            assert code == NOT_AUTHORIZED, (kind, code)
        assert drain(alerts, 1.0) == [] and drain(ops, 0.2) == []
        owner = rig.client("cam-02")
        try:
            code = owner.wait_ack(owner.publish(rig.topic("cam-02", "events"), b"genuine"))
            assert code in ACCEPTED
        finally:
            owner.close()
        assert drain(alerts, 2.0) == [(rig.topic("cam-02", "events"), b"genuine")]
    finally:
        for client in (alerts, ops, intruder):
            client.close()


def test_device_cannot_read_another_devices_watchlist_or_commands(
    rig: Rig, record: Recorder
) -> None:
    """cam-01 subscribes to cam-02's topics (and to everything): nothing is delivered, not
    even the retained watchlist, while cam-02 gets both."""
    ops = rig.client("ops")
    try:
        retained = ops.publish(rig.topic("cam-02", "watchlist"), b"sealed-to-cam-02", retain=True)
        assert ops.wait_ack(retained) in ACCEPTED
        intruder, owner = rig.client("cam-01"), rig.client("cam-02")
        try:
            granted = intruder.subscribe(
                [
                    (rig.topic("cam-02", "watchlist"), 1),
                    (rig.topic("cam-02", "command"), 1),
                    ("lfr/v1/#", 1),
                    ("#", 1),
                ]
            )
            record("rogue-clients", f"cam-01 subscribe to cam-02's topics: SUBACK {granted}")
            owner.subscribe([(rig.topic("cam-02", "watchlist"), 1)])
            owner.subscribe([(rig.topic("cam-02", "command"), 1)])
            assert ops.wait_ack(ops.publish(rig.topic("cam-02", "command"), b"cmd")) in ACCEPTED
            got = sorted(drain(owner, 1.5))
            assert got == [
                (rig.topic("cam-02", "command"), b"cmd"),
                (rig.topic("cam-02", "watchlist"), b"sealed-to-cam-02"),
            ]
            assert drain(intruder, 0.5) == []
        finally:
            intruder.close()
            owner.close()
        ops.wait_ack(ops.publish(rig.topic("cam-02", "watchlist"), b"", retain=True))
    finally:
        ops.close()


def test_revoked_certificate_is_refused_after_the_broker_restarts(
    rig: Rig, record: Recorder
) -> None:
    device = rig.device("cam-03")
    rig.client("cam-03").close()  # connects before
    result = subprocess.run(
        [str(BIN / "lfr-provision"), "revoke", "cam-03", "--authority", rig.index["authority_dir"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    record("rogue-clients", result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr
    assert "broker updated live" in result.stdout, result.stdout + result.stderr
    policy = json.loads((rig.broker.config.parent / "dynamic-security.json").read_text())
    assert "cam-03" not in {c["username"] for c in policy["clients"]}
    rig.broker.restart()  # the CRL (a SIGHUP would do too)
    revoked = link(rig, Path(device["cert"]), Path(device["key"]))
    logged = refused_connection(rig, revoked, record, "revoked cam-03")
    assert "certificate verify failed" in logged, logged  # the same certificate as before
    rig.client("cam-01").close()  # everyone else still gets in
