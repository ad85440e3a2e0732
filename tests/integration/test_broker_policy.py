"""The generated broker policy (dynamic-security plugin), observed on a real Mosquitto: every
refusal is the broker's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lfrkit.mqtt import MqttError, MqttLink, MqttSettings
from protocol.topics import DEFAULT_SHARE_GROUP, shared
from provisioning.authority import Authority, init_authority
from provisioning.broker import refresh
from provisioning.fleet import issue_client, revoke
from tools.broker import Broker

pytestmark = pytest.mark.integration
NOT_AUTHORIZED = 0x87
GROUP = DEFAULT_SHARE_GROUP


def settings(
    index: dict[str, Any], cert: str | None, key: str | None, client_id: str = ""
) -> MqttSettings:
    return MqttSettings(
        index["broker"]["host"],
        index["broker"]["port"],
        Path(index["ca_cert"]),
        Path(cert) if cert else None,
        Path(key) if key else None,
        client_id=client_id,
    )


@pytest.fixture
def connect(index: dict[str, Any], broker: Broker) -> Iterator[Any]:
    links: list[MqttLink] = []

    def _connect(who: str, client_id: str = "") -> MqttLink:
        if who in index["clients"]:
            files = index["clients"][who]
        else:
            files = next(d for d in index["devices"] if d["id"] == who)
        link = MqttLink(settings(index, files["cert"], files["key"], client_id))
        link.connect()
        links.append(link)
        return link

    yield _connect
    for link in links:
        link.close()


def topic(device: str, kind: str) -> str:
    return f"lfr/v1/demo/{device}/{kind}"


def drain(link: MqttLink, seconds: float) -> list[tuple[str, bytes]]:
    got, deadline = [], time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        message = link.receive(remaining)
        if message is not None:
            got.append((message.topic, message.payload))
    return got


def test_device_publishes_its_events_and_alerts_receive_them(connect: Any) -> None:
    alerts = connect("alerts")
    assert alerts.subscribe([("$share/control-room/lfr/v1/+/+/events", 1)]) == [1]
    device = connect("cam-01")
    assert device.wait_ack(device.publish(topic("cam-01", "events"), b"event-1")) in (0, 16)
    assert drain(alerts, 1.0) == [(topic("cam-01", "events"), b"event-1")]


def test_device_cannot_write_another_devices_topics(connect: Any) -> None:
    alerts = connect("alerts")
    alerts.subscribe(
        [(shared(GROUP, "lfr/v1/+/+/events"), 1), (shared(GROUP, "lfr/v1/+/+/status"), 1)]
    )
    drain(alerts, 0.3)
    intruder = connect("cam-01")
    for kind in ("events", "status"):
        code = intruder.wait_ack(intruder.publish(topic("cam-02", kind), b"forged"))
        assert code == NOT_AUTHORIZED, kind
    assert drain(alerts, 1.0) == []  # nothing reached a subscriber


def test_device_cannot_read_another_devices_watchlist_or_commands(connect: Any) -> None:
    # The dynamic-security plugin refuses the SUBSCRIBE (0x87) and checks read access on
    # every delivery too: nothing arrives, while the owner gets it.
    owner, intruder, ops = connect("cam-02"), connect("cam-01"), connect("ops")
    owner.subscribe([(topic("cam-02", "watchlist"), 1), (topic("cam-02", "command"), 1)])
    granted = intruder.subscribe(
        [
            (topic("cam-02", "watchlist"), 1),
            (topic("cam-02", "command"), 1),
            ("lfr/v1/#", 1),
            ("#", 1),
        ]
    )
    assert granted == [NOT_AUTHORIZED] * 4
    for kind in ("watchlist", "command"):
        assert ops.wait_ack(ops.publish(topic("cam-02", kind), b"for-cam-02")) in (0, 16)
    device = connect("cam-02")  # a device's own events are not for other devices either
    device.wait_ack(device.publish(topic("cam-02", "events"), b"event"))
    assert sorted(drain(owner, 1.0)) == [
        (topic("cam-02", "command"), b"for-cam-02"),
        (topic("cam-02", "watchlist"), b"for-cam-02"),
    ]
    assert drain(intruder, 0.5) == []


def test_device_cannot_write_its_own_watchlist_or_commands(connect: Any) -> None:
    device = connect("cam-01")
    for kind in ("watchlist", "command"):
        assert device.wait_ack(device.publish(topic("cam-01", kind), b"x")) == NOT_AUTHORIZED


def test_device_reads_its_retained_watchlist_from_ops(connect: Any) -> None:
    ops = connect("ops")
    code = ops.wait_ack(ops.publish(topic("cam-02", "watchlist"), b"bundle-v1", retain=True))
    assert code in (0, 16)
    device = connect("cam-02")
    assert device.subscribe([(topic("cam-02", "watchlist"), 1)]) == [1]
    message = device.receive(5.0)
    assert message is not None and message.payload == b"bundle-v1" and message.retain
    ops.wait_ack(ops.publish(topic("cam-02", "watchlist"), b"", retain=True))  # clear it


def test_ops_and_alerts_get_only_their_own_rights(connect: Any) -> None:
    ops, alerts = connect("ops"), connect("alerts")
    assert ops.subscribe([("lfr/v1/+/+/status", 1), ("lfr/v1/+/+/events", 1)]) == [
        1,
        NOT_AUTHORIZED,
    ]
    assert alerts.subscribe([("$SYS/#", 0), ("#", 1)]) == [NOT_AUTHORIZED] * 2
    alerts.subscribe(
        [(shared(GROUP, "lfr/v1/+/+/events"), 1), (shared(GROUP, "lfr/v1/+/+/status"), 1)]
    )
    drain(alerts, 0.3)
    assert ops.wait_ack(ops.publish(topic("cam-01", "events"), b"x")) == NOT_AUTHORIZED
    assert alerts.wait_ack(alerts.publish(topic("cam-01", "watchlist"), b"x")) == NOT_AUTHORIZED
    device = connect("cam-01")
    device.wait_ack(device.publish(topic("cam-01", "status"), b"online"))
    device.wait_ack(device.publish(topic("cam-01", "events"), b"event"))
    ops.wait_ack(ops.publish(topic("cam-01", "command"), b"pause"))
    # ops see status only; alerts see status and events, never commands or $SYS.
    assert drain(ops, 1.0) == [(topic("cam-01", "status"), b"online")]
    assert sorted(drain(alerts, 0.5)) == [
        (topic("cam-01", "events"), b"event"),
        (topic("cam-01", "status"), b"online"),
    ]


def test_client_id_is_the_certificate_name(connect: Any) -> None:
    # cam-01 claiming cam-02's client id must not kick cam-02 off the broker.
    victim = connect("cam-02")
    connect("cam-01", client_id="cam-02")
    time.sleep(0.5)
    assert victim.is_connected


def test_no_certificate_is_refused(index: dict[str, Any], broker: Broker) -> None:
    with pytest.raises(MqttError):
        MqttLink(settings(index, None, None, "anon")).connect(timeout=5)


def test_certificate_from_another_ca_is_refused(
    index: dict[str, Any], broker: Broker, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    init_authority(tmp_path / "rogue", 1, 1, now)
    issue_client(tmp_path / "rogue", "ops", "ops", tmp_path / "rogue-clients", now)
    rogue = MqttLink(
        settings(
            index,
            str(tmp_path / "rogue-clients" / "ops.crt"),
            str(tmp_path / "rogue-clients" / "ops.key"),
        )
    )
    with pytest.raises(MqttError):
        rogue.connect(timeout=5)


def test_a_device_joining_the_control_rooms_group_does_not_swallow_alerts(
    connect: Any,
) -> None:
    alerts = connect("alerts")
    assert alerts.subscribe([("$share/control-room/lfr/v1/+/+/events", 1)]) == [1]
    rogue = connect("cam-02")  # any certificate: it has no read right on events
    # The dynamic-security plugin checks the whole $share filter: refused, so never a member.
    assert rogue.subscribe([("$share/control-room/lfr/v1/+/+/events", 1)]) == [NOT_AUTHORIZED]
    device = connect("cam-01")
    for i in range(20):
        code = device.wait_ack(device.publish(topic("cam-01", "events"), f"e{i}".encode()))
        assert code == 0  # accepted: the device deletes the event from its outbox
    assert drain(rogue, 0.5) == []
    # With acl_file: 10 (the broker handed every other one to the device, then dropped it).
    assert len(drain(alerts, 1.0)) == 20


def test_revoked_device_is_refused_after_restart(
    index: dict[str, Any], broker: Broker, connect: Any
) -> None:
    connect("cam-02").close()  # works before
    now = datetime.now(UTC)
    revoke(Path(index["authority_dir"]), "cam-02", now)
    assert refresh(Authority.load(Path(index["authority_dir"])), now) is not None
    broker.restart()  # the CRL and the rewritten policy file, without the live sync
    with pytest.raises(MqttError):
        connect("cam-02")
    connect("cam-01")  # everyone else still gets in
