"""Moves events from the outbox to the broker: in order, QoS 1, deleted only after PUBACK."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from agent.io.mqtt import MqttLink
from agent.io.outbox import Outbox, Pending

log = logging.getLogger(__name__)
ACCEPTED = (0x00, 0x10)  # success, no matching subscribers (still stored by the broker)


@dataclass
class PublisherStats:
    events_published: int = 0
    publish_refused: int = 0
    last_refusal: str = ""


class Publisher:
    def __init__(
        self, outbox: Outbox, link: MqttLink, window: int = 16, retry_refused_after: float = 60.0
    ) -> None:
        self._outbox, self._link, self._window = outbox, link, window
        self._inflight: dict[int, Pending] = {}
        self._after_seq = 0
        self._generation = -1
        self._retry_refused_after = retry_refused_after
        self._retry_at: float | None = None
        self.stats = PublisherStats()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def step(self) -> None:
        """Collect PUBACKs, then publish what fits in the window. Never blocks."""
        for mid, code in self._link.take_acks().items():
            sent = self._inflight.pop(mid, None)
            if sent is None:
                continue
            if code in ACCEPTED:
                self._outbox.ack(sent.event_id)
                self.stats.events_published += 1
            else:
                self.stats.publish_refused += 1
                self.stats.last_refusal = f"broker refused event publish (reason {code:#x})"
                log.error(
                    "broker refused event %s (reason %#x); kept in the outbox", sent.event_id, code
                )
                self._retry_at = time.monotonic() + self._retry_refused_after
        if not self._link.is_connected:
            return
        if self._link.generation != self._generation:
            # (Re)connected: whatever was in flight may be lost; send it all again in order.
            self._generation = self._link.generation
            self._inflight.clear()
            self._after_seq = 0
        if self._retry_at is not None and time.monotonic() >= self._retry_at:
            self._retry_at, self._after_seq = None, 0
        room = self._window - len(self._inflight)
        if room <= 0:
            return
        for item in self._outbox.pending(room, after_seq=self._after_seq):
            mid = self._link.publish(item.topic, item.payload, qos=1)
            self._inflight[mid] = item
            self._after_seq = item.seq
