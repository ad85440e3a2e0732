"""Shared subscriptions limited to the control room's group, and live policy changes, on a
real Mosquitto with the dynamic-security policy lfr-provision generates (issue 17, $share).

With the old acl_file any certificate could subscribe to ``$share/<any group>/...``: a device
in the control room's group swallowed every other alert, an alerts client in another group
quietly took a copy. Here every such SUBSCRIBE is refused (SUBACK 0x87) and nothing reaches
it; the control room's members share the alerts, each delivered to exactly one of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lfrkit.layout import DeviceLayout
from lfrkit.mqtt import MqttLink, MqttSettings
from protocol.topics import DEFAULT_SHARE_GROUP, shared
from provisioning.cli import main as provision_main
from tools.broker import Broker

pytestmark = pytest.mark.integration
NOT_AUTHORIZED = 0x87
EVENTS = "lfr/v1/+/+/events"


@pytest.fixture(scope="module")
def second_alerts(index: dict[str, Any], broker: Broker, fleet_dir: Path) -> dict[str, str]:
    """A second alerts client, issued while the broker runs: it must work without a restart."""
    out = fleet_dir / "more-clients"
    code = provision_main(
        [
            "issue-client",
            "alerts-2",
            "--role",
            "alerts",
            "--authority",
            index["authority_dir"],
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return {"cert": str(out / "alerts-2.crt"), "key": str(out / "alerts-2.key")}


@pytest.fixture
def connect(index: dict[str, Any], second_alerts: dict[str, str]) -> Iterator[Any]:
    links: list[MqttLink] = []

    def _connect(who: str) -> MqttLink:
        files = (
            second_alerts
            if who == "alerts-2"
            else index["clients"].get(who) or next(d for d in index["devices"] if d["id"] == who)
        )
        link = MqttLink(
            MqttSettings(
                index["broker"]["host"],
                index["broker"]["port"],
                Path(index["ca_cert"]),
                Path(files["cert"]),
                Path(files["key"]),
            )
        )
        link.connect()
        links.append(link)
        return link

    yield _connect
    for link in links:
        link.close()


def drain(link: MqttLink, seconds: float) -> list[bytes]:
    got, deadline = [], time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        message = link.receive(remaining)
        if message is not None:
            got.append(message.payload)
    return got


def publish_events(link: MqttLink, device: str, count: int, prefix: str) -> list[bytes]:
    sent = []
    for i in range(count):
        payload = f"{prefix}-{device}-{i}".encode()
        assert link.wait_ack(link.publish(f"lfr/v1/demo/{device}/events", payload)) == 0
        sent.append(payload)
    return sent


def test_no_other_group_or_filter_gets_alerts(connect: Any) -> None:
    room = connect("alerts")
    assert room.subscribe([(shared(DEFAULT_SHARE_GROUP, EVENTS), 1)]) == [1]
    rogue_alerts = connect("alerts-2")  # a real alerts certificate, outside the room's group
    refused_for_alerts = [
        shared("other-group", EVENTS),
        shared("other-group", "lfr/v1/+/+/status"),
        EVENTS,  # no $share: a private copy of every alert
        "lfr/v1/demo/cam-01/events",
        shared(DEFAULT_SHARE_GROUP, "lfr/v1/#"),  # wildcards wider than the rule
        shared(DEFAULT_SHARE_GROUP, "#"),
        shared(DEFAULT_SHARE_GROUP, "lfr/+/+/+/events"),
        "#",
    ]
    granted = rogue_alerts.subscribe([(f, 1) for f in refused_for_alerts])
    assert granted == [NOT_AUTHORIZED] * len(refused_for_alerts)
    rogue_device = connect("cam-02")  # a device certificate: no read right on events at all
    refused_for_devices = [
        shared(DEFAULT_SHARE_GROUP, EVENTS),
        shared("other-group", EVENTS),
        shared("g", "lfr/v1/demo/cam-02/watchlist"),  # even its own topic, through a group
    ]
    granted = rogue_device.subscribe([(f, 1) for f in refused_for_devices])
    assert granted == [NOT_AUTHORIZED] * len(refused_for_devices)

    sent = publish_events(connect("cam-01"), "cam-01", 20, "rogue")
    rogue_got = drain(rogue_alerts, 0.5) + drain(rogue_device, 0.1)
    room_got = drain(room, 1.0)
    print(
        f"MEASURED rogue subscribers received {len(rogue_got)} of {len(sent)}; "
        f"the control room {len(room_got)} of {len(sent)}"
    )
    assert rogue_got == []
    assert sorted(room_got) == sorted(sent)


def test_two_members_of_the_group_get_every_alert_exactly_once(connect: Any) -> None:
    members = [connect("alerts"), connect("alerts-2")]
    for member in members:
        assert member.subscribe([(shared(DEFAULT_SHARE_GROUP, EVENTS), 1)]) == [1]
    sent = publish_events(connect("cam-01"), "cam-01", 50, "once")
    sent += publish_events(connect("cam-02"), "cam-02", 50, "once")
    got = [drain(member, 1.5) for member in members]
    print(
        f"MEASURED {len(sent)} sent; members received {[len(g) for g in got]}, "
        f"{len(got[0]) + len(got[1]) - len(set(got[0]) | set(got[1]))} duplicates"
    )
    assert sorted(got[0] + got[1]) == sorted(sent)  # every alert, none twice
    assert min(len(g) for g in got) > 0  # both shared the work


def test_a_device_approved_while_the_broker_runs_works_at_once(
    index: dict[str, Any], connect: Any, fleet_dir: Path
) -> None:
    state = fleet_dir / "late" / "state"
    assert (
        provision_main(["device-init", "--id", "cam-09", "--site", "demo", "--state", str(state)])
        == 0
    )
    approved = provision_main(
        [
            "approve",
            str(state / "request.json"),
            "--authority",
            index["authority_dir"],
            "--out",
            str(fleet_dir / "late" / "bundle"),
        ]
    )
    assert approved == 0
    room = connect("alerts")
    assert room.subscribe([(shared(DEFAULT_SHARE_GROUP, EVENTS), 1)]) == [1]
    late = MqttLink(
        MqttSettings(
            index["broker"]["host"],
            index["broker"]["port"],
            Path(index["ca_cert"]),
            fleet_dir / "late" / "bundle" / "device.crt",
            DeviceLayout(state).tls_key,
        )
    )
    late.connect()
    try:
        assert late.wait_ack(late.publish("lfr/v1/demo/cam-09/events", b"new")) == 0
        assert late.wait_ack(late.publish("lfr/v1/demo/cam-01/events", b"x")) == NOT_AUTHORIZED
        assert drain(room, 1.0) == [b"new"]
    finally:
        late.close()


def test_a_revoked_device_is_cut_off_live(index: dict[str, Any], connect: Any) -> None:
    """No restart, no SIGHUP: revoke deletes the device's dynsec client over $CONTROL."""
    room, bystander, victim = connect("alerts"), connect("cam-01"), connect("cam-02")
    assert room.subscribe([(shared(DEFAULT_SHARE_GROUP, EVENTS), 1)]) == [1]
    assert victim.wait_ack(victim.publish("lfr/v1/demo/cam-02/events", b"before")) == 0
    assert drain(room, 0.5) == [b"before"]
    first = victim.generation
    started = time.monotonic()
    assert provision_main(["revoke", "cam-02", "--authority", index["authority_dir"]]) == 0
    while victim.is_connected and victim.generation == first:
        assert time.monotonic() - started < 5, "the revoked device was not disconnected"
        time.sleep(0.01)
    print(f"MEASURED revoked device disconnected {time.monotonic() - started:.2f} s after revoke")
    # It may reconnect (the CRL takes a SIGHUP), but the broker no longer knows its name.
    again = connect("cam-02")
    assert again.wait_ack(again.publish("lfr/v1/demo/cam-02/events", b"after")) == NOT_AUTHORIZED
    assert again.subscribe([("lfr/v1/demo/cam-02/watchlist", 1)]) == [NOT_AUTHORIZED]
    assert bystander.is_connected and bystander.generation == 1 and room.generation == 1
    assert bystander.wait_ack(bystander.publish("lfr/v1/demo/cam-01/events", b"still")) == 0
    assert drain(room, 1.0) == [b"still"]
