"""``lfr-alerts listen``: receive events, verify each one, store each alert exactly once.

An event becomes an alert only if its JWS verifies against an *active* device in the registry
and it arrived on that device's own topic. Everything else is refused, counted by reason and
logged (never stored as an alert). Status documents likewise: signed by the device of the
topic, or counted as rejected and skipped. Every message is acknowledged once handled or
refused, so no message can stop the listener. The registry is re-read when it changes, so a
revocation takes effect without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from central.device_status import record_status
from central.store import AlertStore
from lfrkit.mqtt import MqttLink
from protocol.errors import RejectedInput, WrongDevice
from protocol.event import MatchEvent, verify_event
from protocol.status import verify_status
from protocol.topics import Kind, parse_topic
from provisioning.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class ListenerStats:
    stored: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


class Listener:
    def __init__(
        self,
        store: AlertStore,
        registry_path: Path,
        link: MqttLink,
        on_alert: Callable[[MatchEvent], None] | None = None,
    ) -> None:
        self.store, self.link, self.on_alert = store, link, on_alert
        self.registry_path = registry_path
        self._mtime = 0.0
        self._keys = self._load_keys()
        self.stats = ListenerStats()

    def _load_keys(self) -> dict[str, ed25519.Ed25519PublicKey]:
        self._mtime = os.stat(self.registry_path).st_mtime
        keys = Registry.load(self.registry_path).trusted_signing_keys()
        log.info("trusting events from %d active devices", len(keys))
        return keys

    def _refresh_registry(self) -> None:
        if os.stat(self.registry_path).st_mtime != self._mtime:
            self._keys = self._load_keys()

    def handle(self, topic: str, token: bytes) -> None:
        try:
            event = verify_event(token, self._keys)
            where = parse_topic(topic)
            if (where.site, where.device_id) != (event.site, event.device_id):
                raise WrongDevice(f"event of {event.device_id}@{event.site} arrived on {topic}")
        except RejectedInput as exc:
            self.stats.rejected[exc.reason] += 1
            self.store.count_rejection(exc.reason)
            log.warning("event refused on %s (%s): %s", topic, exc.reason, exc)
            return
        if self.store.add(event, token):
            self.stats.stored += 1
            if self.on_alert is not None:
                self.on_alert(event)
        else:
            self.stats.duplicates += 1

    def handle_status(self, topic: str, payload: bytes) -> None:
        """Counters for the pilot report, only from the device whose topic it arrived on and
        signed by its registered key (issue 17 finding 1). A bad one is counted as rejected
        (``status:<reason>``) and skipped: a status is not evidence."""
        try:
            where = parse_topic(topic)
            status = verify_status(
                payload, site=where.site, device_id=where.device_id, device_keys=self._keys
            )
        except RejectedInput as exc:
            self.stats.rejected[f"status:{exc.reason}"] += 1
            self.store.count_rejection(f"status:{exc.reason}")
            log.warning("status refused on %s (%s): %s", topic[:200], exc.reason, exc)
            return
        self.store.add_status(status.to_json())
        record_status(self.store, status, datetime.now(UTC))  # the fleet view's latest

    def run(self, stop: threading.Event) -> None:
        last_refresh = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - last_refresh > 2.0:
                self._refresh_registry()
                last_refresh = time.monotonic()
            message = self.link.receive(0.2)
            if message is None:
                continue
            if message.payload:
                if message.topic.endswith(f"/{Kind.STATUS.value}"):
                    self.handle_status(message.topic, message.payload)
                else:
                    self.handle(message.topic, message.payload)
            # Acknowledged only once stored (or refused): a listener that dies before this
            # gets the event again from the broker; the store de-duplicates it.
            self.link.ack(message)
