"""Publishing and frame-to-event latency, through the agent's own pieces and a real broker.

The device side is made of the pieces ``agent.app.build_agent`` composes, timed one by one: the
device's identity and config as ``lfr-provision`` made them (``provisioning.quickstart``), a
watchlist sealed to the device with both ops keys and installed through
:class:`WatchlistStore`, the :class:`FramePipeline`, :class:`EventSigner`, the SQLite
:class:`Outbox` (WAL, fsync), the :class:`Publisher` and :class:`MqttLink` over TLS with the
device's client certificate, to a Mosquitto started on a free port with the config that
quickstart wrote (``tools.broker``, as the integration tests start it). A control-room client
(the ``alerts`` certificate) subscribes to the events and timestamps each one as it arrives;
every event it received is then verified against the registry's device keys, so the numbers are
for events a control room would accept.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.config import load_config
from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy
from agent.core.tracker import Alert, Tracker
from agent.events import EventSigner
from agent.io.identity import load_identity
from agent.io.outbox import Outbox
from agent.io.publisher import Publisher
from agent.io.watchlist_store import WatchlistStore
from agent.models import Vision
from agent.pipeline import FramePipeline, Rule
from lfrkit.mqtt import MqttLink
from protocol import hpke
from protocol.entries import Entries, Entry
from protocol.event import verify_event
from protocol.topics import DEFAULT_SHARE_GROUP, DeviceTopics, Kind, fleet_filter, shared
from protocol.watchlist import POLICY, MatchThreshold, Watchlist, seal_bundle
from provisioning.authority import load_ops_signer
from provisioning.registry import Registry
from tools.broker import Broker, client, status_json, tls_fleet

U8 = npt.NDArray[np.uint8]
# How often the bench looks for the PUBACK (the agent looks once per loop turn; see report).
POLL_SECONDS = 0.0002


def nodelay_broker(broker: Broker) -> None:
    """Restart ``broker`` with Mosquitto's ``set_tcp_nodelay true`` (a diagnostic: the
    config provisioning writes does not set it)."""
    broker.config.write_text(broker.config.read_text() + "\nset_tcp_nodelay true\n")
    broker.restart()


class Listener:
    """The control room: subscribed to every device's events, timestamps each arrival."""

    def __init__(self, index: dict[str, Any]) -> None:
        self.link = client(index, "alerts", "bench-alerts")
        granted = self.link.subscribe([(shared(DEFAULT_SHARE_GROUP, fleet_filter(Kind.EVENTS)), 1)])
        if granted != [1]:
            raise RuntimeError(f"the broker refused the events subscription ({granted})")
        self.arrivals: list[tuple[float, bytes]] = []  # events: (perf_counter, token)
        self.status: dict[str, Any] | None = None  # the latest status document, if subscribed
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.link.receive(0.1)
            if message is None:
                continue
            with self._lock:
                if message.topic.endswith("/status"):
                    self.status = status_json(message.payload)
                else:
                    self.arrivals.append((time.perf_counter(), message.payload))
                self._lock.notify_all()

    def latest_status(self) -> dict[str, Any] | None:
        with self._lock:
            return self.status

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[float, bytes]]:
        """The first ``count`` events (waits for them)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.arrivals) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(f"{len(self.arrivals)}/{count} events arrived")
                self._lock.wait(remaining)
            return list(self.arrivals[:count])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.link.close()


def seal_watchlist(
    index: dict[str, Any], vision: Vision, embeddings: list[npt.NDArray[np.float32]]
) -> bytes:
    """A watchlist bundle for quickstart's first device, one subject per embedding, sealed
    to the device and signed with both ops keys (what ``lfr-watchlist seal`` makes)."""
    device_id = index["devices"][0]["id"]
    entries = Entries(
        vision.embedder.id,
        vision.embedder.dim,
        tuple(
            Entry(f"WL-{i + 1:04d}", "wanted", None, e[None, :].astype(np.float32))
            for i, e in enumerate(embeddings)
        ),
    )
    now = datetime.now(UTC).replace(microsecond=0)
    record = Registry.load(Path(index["registry"])).get(device_id)
    return seal_bundle(
        entries,
        device_id=device_id,
        site=record.site,
        deployment_id="bench",
        version=1,
        issued_at=now,
        expires_at=now + timedelta(hours=1),
        recipient=record.hpke_key(hpke.DEFAULT_SUITE),
        signers=[load_ops_signer(Path(k)) for k in index["ops_keys"]],
        threshold=MatchThreshold(vision.threshold or 0.5, POLICY),
    )


class Device:
    """The agent's pieces for one device, as ``agent.app.build_agent`` makes them. The watchlist
    (``embeddings``, one subject each) is sealed to the device and signed with both ops keys,
    then installed as the agent installs one that arrives (verify, open, store)."""

    def __init__(
        self,
        index: dict[str, Any],
        vision: Vision,
        embeddings: list[npt.NDArray[np.float32]],
        threshold: float,
    ) -> None:
        self.vision = vision
        config = load_config(Path(index["devices"][0]["config"]))
        identity = load_identity(config.state_dir)
        bundle, now = seal_watchlist(index, vision, embeddings), datetime.now(UTC)
        self.watchlist: Watchlist = WatchlistStore(identity, vision.embedder.id).install(
            bundle, now
        )
        self.matcher = Matcher(self.watchlist.entries, threshold, config.matching.storage)
        q = config.quality
        self.quality = QualityPolicy(q.min_face_px, q.min_sharpness, q.max_yaw)
        self.probe_margin = config.events.probe_margin
        self.last_event_bytes = 0
        self.signer = EventSigner(
            identity.device_id,
            identity.site,
            identity.signing_key,
            identity.trust.adjudication_key,
            config.events.jpeg_quality,
        )
        self.topic = DeviceTopics(identity.site, identity.device_id).events
        # On the device's state disk, as in the agent (synchronous=FULL: fsync per commit).
        self.outbox = Outbox(config.state_dir / "outbox.sqlite", config.events.outbox_max)
        self.settings = config.mqtt_settings()
        self.connect()

    def connect(self, nodelay: bool = False) -> None:
        """A new MQTT link and publisher, as the agent makes them. ``nodelay``: also set
        TCP_NODELAY on the link's socket (a diagnostic: MqttLink does not set it today)."""
        self.link = MqttLink(self.settings)
        self.link.connect()
        if nodelay:
            sock = self.link._client.socket()
            if not isinstance(sock, socket.socket):
                raise RuntimeError(f"no TCP socket under the MQTT link ({sock!r})")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.publisher = Publisher(self.outbox, self.link)

    def fresh_pipeline(self) -> FramePipeline:
        """A new track state for every sample (the one-frame rule with window 0: a matched
        face alerts on the frame that saw it, so one frame measures the path from a frame to
        its event; the track rule's wait for K faces is in tools/bench/walkthrough.py;
        cool-down 0: the same subject alerts again in the next sample)."""
        tracker: Tracker[U8] = Tracker(window=timedelta(0), cooldown=timedelta(0))
        return FramePipeline(
            self.vision.detector,
            self.vision.embedder,
            self.quality,
            tracker,
            probe_margin=self.probe_margin,
            rule=Rule.FRAME,
        )

    def enqueue(self, alerts: list[Alert[U8]]) -> None:
        for alert in alerts:
            event_id, token = self.signer.sign(alert, self.watchlist.header)
            self.outbox.put(event_id, self.topic, token)

    def publish_until(self, published: int, timeout: float = 10.0) -> None:
        """Publisher.step() until ``published`` events in all have had their PUBACK."""
        deadline = time.monotonic() + timeout
        self.publisher.step()
        while self.publisher.stats.events_published < published:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.publisher.stats.events_published}/{published} events acknowledged"
                )
            time.sleep(POLL_SECONDS)
            self.publisher.step()

    def close(self) -> None:
        self.link.close()
        self.outbox.close()


@dataclass
class Latencies:
    """Seconds per sample for each measured span."""

    stored: list[float] = field(default_factory=list)  # into the outbox (committed, fsync)
    acked: list[float] = field(default_factory=list)  # PUBACK seen, row removed from outbox
    received: list[float] = field(default_factory=list)  # the control room has it
    events_per_sample: int = 0
    process: list[float] = field(default_factory=list)  # frame-to-event only: pipeline


@dataclass
class Results:
    publish: Latencies  # the agent's pieces as they are
    frame_to_event: Latencies
    publish_nodelay: Latencies  # diagnostic: TCP_NODELAY on the device socket and the broker
    facts: dict[str, Any]


def measure(vision: Vision, frame: U8, runs: int, threshold: float = 0.5) -> Results:
    """Publishing and frame-to-event latencies against a fresh TLS broker."""
    with tls_fleet() as (index, broker):
        detections = vision.detector.detect(frame)
        embeddings = [vision.embedder.embed(frame, d) for d in detections]
        if not embeddings:
            raise RuntimeError("no face found in the frame-to-event frame")
        # The watchlist holds the frame's own people (so each face matches) and 10k others.
        rng = np.random.default_rng(2)
        others = rng.normal(size=(10_000, vision.embedder.dim)).astype(np.float32)
        device = Device(index, vision, [*embeddings, *list(others)], threshold)
        keys = Registry.load(Path(index["registry"])).trusted_signing_keys()
        listener = Listener(index)
        received = 0
        try:
            publish = _publish(device, listener, frame, runs)
            end_to_end = _frame_to_event(device, listener, frame, runs)
            received += _verify(listener, keys)
            listener.close()
            device.link.close()
            nodelay_broker(broker)
            listener = Listener(index)
            device.connect(nodelay=True)
            publish_nodelay = _publish(device, listener, frame, runs)
            received += _verify(listener, keys)
        finally:
            listener.close()
            device.close()
        facts = {
            "broker": "Mosquitto, TLS with client certificates, QoS 1, on 127.0.0.1",
            "faces": len(detections),
            "events_verified": received,
            "watchlist": len(device.watchlist.entries),
            "outbox": "SQLite WAL, synchronous=FULL, on " + _filesystem(tempfile.gettempdir()),
            "event_bytes": device.last_event_bytes,
        }
    return Results(publish, end_to_end, publish_nodelay, facts)


def _verify(listener: Listener, keys: Any) -> int:
    """Verify every event the control room received (raises on a bad one); how many."""
    arrivals = listener.wait_for(len(listener.arrivals))
    for _, token in arrivals:
        verify_event(token, keys)
    return len(arrivals)


def _publish(device: Device, listener: Listener, frame: U8, runs: int) -> Latencies:
    """One signed event at a time: outbox put -> publish -> PUBACK, and -> the subscriber."""
    pipeline = device.fresh_pipeline()
    alerts = pipeline.process(frame, device.matcher, datetime.now(UTC))[:1]
    if not alerts:
        raise RuntimeError("no face in the frame matched its own enrolment")
    out = Latencies(events_per_sample=1)
    seen = len(listener.arrivals)
    for run in range(runs + 3):
        event_id, token = device.signer.sign(alerts[0], device.watchlist.header)
        device.last_event_bytes = len(token)
        start = time.perf_counter()
        device.outbox.put(event_id, device.topic, token)
        stored = time.perf_counter()
        device.publish_until(device.publisher.stats.events_published + 1)
        acked = time.perf_counter()
        seen += 1
        arrived = listener.wait_for(seen)[-1][0]
        if run >= 3:  # the first few warm the connection, SQLite and the broker
            out.stored.append(stored - start)
            out.acked.append(acked - start)
            out.received.append(arrived - start)
    return out


def _frame_to_event(device: Device, listener: Listener, frame: U8, runs: int) -> Latencies:
    """Frame handed to the pipeline -> every face matched, signed, sealed, stored, PUBACKed,
    and received by the control room."""
    out = Latencies()
    seen = len(listener.arrivals)
    for run in range(runs + 3):
        pipeline = device.fresh_pipeline()
        published = device.publisher.stats.events_published
        start = time.perf_counter()
        alerts = pipeline.process(frame, device.matcher, datetime.now(UTC))
        processed = time.perf_counter()
        device.enqueue(alerts)
        stored = time.perf_counter()
        device.publish_until(published + len(alerts))
        acked = time.perf_counter()
        seen += len(alerts)
        arrived = listener.wait_for(seen)[-1][0] if alerts else acked
        out.events_per_sample = len(alerts)
        if run >= 3:
            out.process.append(processed - start)
            out.stored.append(stored - start)
            out.acked.append(acked - start)
            out.received.append(arrived - start)
    return out


def _filesystem(path: str) -> str:
    """The mount and filesystem type that holds ``path`` (fsync cost depends on it)."""
    best = ("/", "?")
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "?"
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and path.startswith(parts[1]) and len(parts[1]) >= len(best[0]):
            best = (parts[1], parts[2])
    return f"{best[0]} ({best[1]})"
