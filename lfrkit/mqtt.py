"""A small MQTT 5 link over TLS with a client certificate, wrapping paho-mqtt v2.

The rest of the program talks to :class:`MqttLink` (connect, publish and wait for PUBACK,
subscribe and wait for SUBACK, receive), never to paho. paho's callbacks run on its network
thread and only record results or enqueue messages; the bounded inbox drops the oldest
message when full and counts it, so a flood cannot grow memory.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class MqttError(Exception):
    """The broker refused or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class MqttSettings:
    host: str
    port: int
    ca_cert: Path
    cert: Path | None
    key: Path | None
    client_id: str = ""
    keepalive: int = 30
    will: tuple[str, bytes, int, bool] | None = None  # topic, payload, qos, retain
    inbox_size: int = 1024
    # > 0: a persistent session (clean_start false) that the broker keeps this many seconds,
    # queueing QoS 1 messages while we are away (consumers must not miss events).
    session_expiry: int = 0
    # True: a QoS 1 message is acknowledged only when the application calls ack() after
    # handling it; the broker should send at most inbox_size // 2 unacknowledged messages
    # (MQTT 5 Receive Maximum), and when one does not, a full inbox makes the network
    # thread wait (TCP back-pressure) rather than drop a message.
    manual_ack: bool = False


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    mid: int = 0
    qos: int = 0


def _no_delay(sock: Any) -> None:
    """Send small packets (PUBACKs, events) at once: with Nagle's algorithm on both ends an
    event waited ~45 ms for its PUBACK and ~90 ms to reach the control room (make bench)."""
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:  # not TCP (a test socket pair): nothing to tune
            log.debug("TCP_NODELAY not set: %s", exc)


class MqttLink:
    def __init__(self, settings: MqttSettings) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._settings = settings
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=settings.manual_ack,
        )
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(settings.ca_cert))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if settings.cert is not None:
            context.load_cert_chain(str(settings.cert), str(settings.key or settings.cert))
        self._client.tls_set_context(context)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        if settings.will is not None:
            topic, payload, qos, retain = settings.will
            self._client.will_set(topic, payload, qos=qos, retain=retain)
        self._lock = threading.Condition()
        self._connected: Any = None  # reason code of the last CONNACK
        self._lost_before_connack: str | None = None
        self.generation = 0  # successful connections so far (a change means: reconnected)
        self._resubscribe_mid: int | None = None
        self._acks: dict[int, int] = {}
        self._subacks: dict[int, list[int]] = {}
        self._subscriptions: list[tuple[str, int]] = []
        self.inbox: queue.Queue[Message] = queue.Queue(maxsize=settings.inbox_size)
        self.dropped = 0  # only without manual_ack: the oldest message, when the inbox is full
        self._closing = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # paho callbacks: record and notify only.
    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if not reason.is_failure:
            _no_delay(client.socket())
        with self._lock:
            self._connected = reason
            if not reason.is_failure:
                self.generation += 1
            self._lock.notify_all()
        if not reason.is_failure and self._subscriptions:
            _, mid = client.subscribe(list(self._subscriptions))  # again after a reconnect
            with self._lock:
                self._resubscribe_mid = mid

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            if self._connected is None:
                # TLS 1.3 reports a refused client certificate after the handshake, as a
                # closed connection before any CONNACK: that is a refusal, not a delay.
                self._lost_before_connack = str(reason)
            self._connected = None
            self._lock.notify_all()
        log.info("disconnected from %s:%d (%s)", self._settings.host, self._settings.port, reason)

    def _on_publish(
        self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            self._acks[mid] = int(reason.value)
            self._lock.notify_all()

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        with self._lock:
            self._subacks[mid] = [int(r.value) for r in reasons]
            self._lock.notify_all()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        item = Message(
            message.topic,
            bytes(message.payload),
            bool(message.retain),
            int(message.mid),
            int(message.qos),
        )
        if self._settings.manual_ack:
            # Never drop here: a message we do not acknowledge is not resent on this
            # connection, so every drop would hold one of the broker's in-flight slots for
            # good (Mosquitto 2.0 also exceeds our Receive Maximum) until delivery stops.
            # Waiting stops paho reading the socket, and TCP slows the broker down instead.
            while not self._closing.is_set():
                try:
                    self.inbox.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue
            return
        while True:
            try:
                self.inbox.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.inbox.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _wait(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise MqttError(f"timed out after {timeout:.0f}s waiting for {what}")
                self._lock.wait(remaining)

    def _session(self) -> dict[str, Any]:
        if self._settings.session_expiry <= 0 and not self._settings.manual_ack:
            return {}
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        session: dict[str, Any] = {"properties": properties}
        if self._settings.session_expiry > 0:
            properties.SessionExpiryInterval = self._settings.session_expiry
            session["clean_start"] = False
        if self._settings.manual_ack:
            properties.ReceiveMaximum = max(1, self._settings.inbox_size // 2)
        return session

    def ack(self, message: Message) -> None:
        """With manual_ack: tell the broker this message is handled (QoS 1 PUBACK)."""
        if self._settings.manual_ack and message.qos > 0:
            self._client.ack(message.mid, message.qos)

    def connect(self, timeout: float = 10.0) -> None:
        """Connect and wait for CONNACK; a refusal or TLS failure raises :class:`MqttError`."""
        try:
            self._client.connect(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive,
                **self._session(),
            )
        except (ssl.SSLError, OSError) as exc:
            raise MqttError(
                f"cannot connect to {self._settings.host}:{self._settings.port}: {exc}"
            ) from None
        self._client.loop_start()
        try:
            self._wait(
                lambda: self._connected is not None or self._lost_before_connack, timeout, "CONNACK"
            )
        except MqttError:
            self.close()
            raise MqttError(
                f"no CONNACK from {self._settings.host}:{self._settings.port} "
                f"within {timeout:.0f}s (refused during TLS, or unreachable)"
            ) from None
        if self._connected is None:
            reason = self._lost_before_connack
            self.close()
            raise MqttError(
                f"{self._settings.host}:{self._settings.port} closed the connection "
                f"before CONNACK ({reason}): certificate refused or revoked?"
            )
        if self._connected.is_failure:
            reason = str(self._connected)
            self.close()
            raise MqttError(f"broker refused the connection: {reason}")

    def start(self) -> None:
        """Connect in the background and keep reconnecting (for the daemon: the broker may be
        down at boot; the outbox holds events until it is up)."""
        self._client.connect_async(
            self._settings.host,
            self._settings.port,
            keepalive=self._settings.keepalive,
            **self._session(),
        )
        self._client.loop_start()

    def subscribe_on_connect(self, topics: list[tuple[str, int]]) -> None:
        """Subscribe on every (re)connection; for use before :meth:`start`."""
        self._subscriptions = list(topics)

    def wait_subscribed(self, timeout: float) -> None:
        """Wait until connected and the on-connect subscription is acknowledged."""
        self._wait(
            lambda: self._resubscribe_mid is not None and self._resubscribe_mid in self._subacks,
            timeout,
            "SUBACK",
        )

    def take_acks(self) -> dict[int, int]:
        """PUBACK reason codes received since the last call, by message id."""
        with self._lock:
            acks, self._acks = self._acks, {}
        return acks

    @property
    def is_connected(self) -> bool:
        return bool(self._client.is_connected())

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Queue a publish; returns its message id (for :meth:`wait_ack`)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return int(info.mid)

    def wait_ack(self, mid: int, timeout: float = 10.0) -> int:
        """The PUBACK reason code (0 or 16 mean accepted; >= 128 refused)."""
        self._wait(lambda: mid in self._acks, timeout, f"PUBACK of message {mid}")
        with self._lock:
            return self._acks.pop(mid)

    def subscribe(self, topics: list[tuple[str, int]], timeout: float = 10.0) -> list[int]:
        """Subscribe and wait for SUBACK; returns the granted QoS or failure code per topic."""
        self._subscriptions = [*self._subscriptions, *topics]
        result, mid = self._client.subscribe(topics)
        if result != 0 or mid is None:
            raise MqttError(f"subscribe failed locally (code {result})")
        self._wait(lambda: mid in self._subacks, timeout, "SUBACK")
        with self._lock:
            return self._subacks.pop(mid)

    def receive(self, timeout: float) -> Message | None:
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._closing.set()
        self._client.disconnect()
        self._client.loop_stop()
