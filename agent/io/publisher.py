"""Moves events from the outbox to the broker: in order, QoS 1, deleted only after PUBACK."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from agent.io.outbox import Outbox, OutboxUnwritable, Pending
from lfrkit.mqtt import MqttLink

log = logging.getLogger(__name__)
SUCCESS = 0x00
# MQTT 5: the broker took the message but nobody subscribes to it, so it is gone. That is
# not delivery: the control room's consumers are away (or, as Mosquitto 2.0 does after a
# restart, their shared subscriptions were not restored yet). Kept and sent again later.
NO_SUBSCRIBERS = 0x10


@dataclass
class PublisherStats:
    events_published: int = 0
    publish_refused: int = 0
    last_refusal: str = ""
    # Delivered but could not be deleted (disk error): sent again later, de-duplicated centrally.
    ack_unrecorded: int = 0
    no_subscribers: int = 0  # publishes the broker had no consumer for (kept, sent again)
    waiting_for_consumer: bool = False


class Publisher:
    def __init__(
        self,
        outbox: Outbox,
        link: MqttLink,
        window: int = 16,
        retry_refused_after: float = 60.0,
        retry_unheard_after: float = 5.0,
    ) -> None:
        self._outbox, self._link, self._window = outbox, link, window
        self._inflight: dict[int, Pending] = {}
        self._after_seq = 0
        self._generation = -1
        self._retry_refused_after = retry_refused_after
        self._retry_unheard_after = retry_unheard_after
        self._retry_at: float | None = None
        self.stats = PublisherStats()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def step(self) -> None:
        """Collect PUBACKs, then publish what fits in the window. Never blocks."""
        self._collect_acks()
        if self._link.is_connected:
            self._send()

    def _collect_acks(self) -> None:
        for mid, code in self._link.take_acks().items():
            sent = self._inflight.pop(mid, None)
            if sent is None:
                continue
            if code == NO_SUBSCRIBERS:
                self.stats.no_subscribers += 1
                if not self.stats.waiting_for_consumer:
                    log.warning(
                        "no consumer subscribed to %s; events kept and sent again", sent.topic
                    )
                self.stats.waiting_for_consumer = True
                if self._retry_at is None:
                    self._retry_at = time.monotonic() + self._retry_unheard_after
            elif code == SUCCESS:
                self.stats.events_published += 1
                self.stats.waiting_for_consumer = False
                try:
                    self._outbox.ack(sent.event_id)
                except OutboxUnwritable as exc:
                    self.stats.ack_unrecorded += 1
                    log.error("event %s delivered but still queued: %s", sent.event_id, exc)
            else:
                self.stats.publish_refused += 1
                self.stats.last_refusal = f"broker refused event publish (reason {code:#x})"
                log.error(
                    "broker refused event %s (reason %#x); kept in the outbox", sent.event_id, code
                )
                self._retry_at = time.monotonic() + self._retry_refused_after

    def _send(self) -> None:
        if self._link.generation != self._generation:
            # (Re)connected: whatever was in flight may be lost; send it all again in order.
            self._generation = self._link.generation
            self._inflight.clear()
            self._after_seq = 0
        if self._retry_at is not None and time.monotonic() >= self._retry_at:
            self._retry_at, self._after_seq = None, 0
        room = self._window - len(self._inflight)
        if self.stats.waiting_for_consumer:
            # Nobody was listening: one probe per retry period, not the whole outbox.
            room = 0 if (self._retry_at is not None or self._inflight) else 1
        if room <= 0:
            return
        for item in self._outbox.pending(room, after_seq=self._after_seq):
            mid = self._link.publish(item.topic, item.payload, qos=1)
            self._inflight[mid] = item
            self._after_seq = item.seq
