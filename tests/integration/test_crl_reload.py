"""Revocation without downtime, against the real Mosquitto (2.0.11 here).

Measured: ``revoke`` deletes the device's dynamic-security client over $CONTROL, which
disconnects a session that is open at once; a SIGHUP makes Mosquitto re-read the CRL (new
TLS handshakes of the revoked certificate fail, so it cannot come back), and no other client
is dropped by either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lfrkit.mqtt import MqttError
from protocol.topics import DeviceTopics
from provisioning.cli import main as provision_main
from tools.broker import Broker, client, publish_retained

pytestmark = pytest.mark.integration
NOT_AUTHORIZED = 0x87


def _topics(device: dict[str, Any]) -> DeviceTopics:
    return DeviceTopics(device["site"], device["id"])


def test_a_revoked_device_is_refused_after_sighup_and_nobody_else_is_dropped(
    index: dict[str, Any], broker: Broker
) -> None:
    revoked, other = index["devices"]
    bystander = client(index, other["id"])
    alerts = client(index, "alerts")
    still_on = client(index, revoked["id"])  # connected when the revocation happens
    try:
        assert still_on.subscribe([(_topics(revoked).command, 1)]) == [1]
        assert bystander.subscribe([(_topics(other).command, 1)]) == [1]
        generations = (bystander.generation, alerts.generation)

        assert provision_main(["revoke", revoked["id"], "--authority", index["authority_dir"]]) == 0
        broker.reload()

        with pytest.raises(MqttError, match="closed the connection before CONNACK"):
            client(index, revoked["id"])
        assert "certificate verify failed" in broker.log_text()
        # The other clients were not dropped: same connection, and they still work.
        assert bystander.is_connected and alerts.is_connected
        assert (bystander.generation, alerts.generation) == generations
        assert bystander.wait_ack(bystander.publish(_topics(other).events, b"e")) in (0, 16)
        # The session that was open: disconnected by the live policy change (deleteClient),
        # and its reconnections are refused by the CRL ...
        assert not still_on.is_connected
        # ... and nothing sent to it arrives (the bystander's own command does: the control).
        publish_retained(index, _topics(revoked).command, b"c1")
        publish_retained(index, _topics(other).command, b"c2")
        got = bystander.receive(timeout=5)
        assert got is not None and got.payload == b"c2"
        assert still_on.receive(timeout=0.5) is None
    finally:
        for link in (bystander, alerts, still_on):
            link.close()


def test_crl_renew_reissues_only_when_due(
    index: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    authority = index["authority_dir"]
    crl = Path(index["broker"]["config"]).parent / "crl.pem"
    before = crl.read_bytes()
    assert provision_main(["crl-renew", "--authority", authority]) == 0
    assert "CRL current" in capsys.readouterr().out and crl.read_bytes() == before
    # 30 days of life: asking for 31 days' margin makes it due now.
    assert provision_main(["crl-renew", "--authority", authority, "--before-days", "31"]) == 0
    assert "CRL re-issued (it expires" in capsys.readouterr().out
    assert crl.read_bytes() != before


def test_crl_renew_without_the_ca_key_says_so(
    index: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    authority = Path(index["authority_dir"])
    offline = tmp_path / "ca.key"
    (authority / "ca.key").rename(offline)
    try:
        capsys.readouterr()
        argv = ["crl-renew", "--authority", str(authority), "--before-days", "31"]
        assert provision_main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "ca.key is not on this host" in err
    finally:
        offline.rename(authority / "ca.key")
