"""A consumer that falls behind is slowed down, never stalled: the manual-ack inbox waits
instead of dropping (a dropped, unacknowledged message holds a broker in-flight slot for good,
and Mosquitto 2.0 sends past the consumer's Receive Maximum)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from lfrkit.mqtt import MqttLink, MqttSettings
from protocol.topics import DEFAULT_SHARE_GROUP, shared
from tests.reliability.conftest import Recorder, sized
from tools.processes import Rig


@pytest.fixture
def rig(tmp_path: Path, artefacts: Path) -> Iterator[Rig]:
    rig = Rig.create(tmp_path / "fleet", devices=1, logs=artefacts / "backpressure")
    yield rig
    rig.close()


def test_slow_consumer_gets_every_message_on_one_connection(rig: Rig, record: Recorder) -> None:
    count = sized(3000, 20000)
    alerts = rig.index["clients"]["alerts"]
    settings = MqttSettings(
        rig.index["broker"]["host"],
        rig.index["broker"]["port"],
        Path(rig.index["ca_cert"]),
        Path(alerts["cert"]),
        Path(alerts["key"]),
        session_expiry=600,
        manual_ack=True,
    )
    consumer = MqttLink(replace(settings, inbox_size=16))  # Receive Maximum 8
    consumer.connect()
    events = rig.topic("cam-01", "events").replace("cam-01", "+")
    consumer.subscribe([(shared(DEFAULT_SHARE_GROUP, events), 1)])
    generation = consumer.generation
    device = rig.client("cam-01")
    topic = rig.topic("cam-01", "events")
    mids = [device.publish(topic, b"%08d" % n) for n in range(count)]
    device.wait_ack(mids[-1], timeout=120)
    got: set[bytes] = set()
    started = time.monotonic()
    deadline = started + 180
    while len(got) < count and time.monotonic() < deadline:
        message = consumer.receive(2.0)
        if message is None:
            break  # two seconds without a message while some are missing: stalled
        got.add(message.payload)
        consumer.ack(message)
        if len(got) % 50 == 0:
            time.sleep(0.01)  # a consumer busy with its store now and then
    elapsed = time.monotonic() - started
    consumer.close()
    device.close()
    assert len(got) == count, f"{count - len(got)} of {count} never arrived (stalled)"
    assert consumer.generation == generation, "needed a reconnect to get them"
    assert consumer.dropped == 0
    record(
        "figures",
        f"slow consumer (inbox 16): {count} messages in one burst, all received "
        f"on one connection in {elapsed:.1f}s, none dropped",
    )
