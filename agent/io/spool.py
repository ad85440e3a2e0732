"""Hands signed events to the outbox, and keeps them when the disk cannot take them.

A full or failing disk must not silently cost an alert: an event the outbox cannot write is
held in memory (bounded) and written as soon as the disk accepts it again, oldest first. Only
when that bound is reached, or the outbox is at its own limit, is an event dropped, and every
drop is counted by reason for the status alarms.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass

from agent.io.outbox import Outbox, OutboxFull, OutboxUnwritable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Held:
    event_id: str
    topic: str
    payload: bytes


class Spool:
    def __init__(self, outbox: Outbox, max_held: int = 256, retry_every: float = 1.0) -> None:
        self._outbox = outbox
        self._held: deque[_Held] = deque()
        self._max_held = max_held
        self._retry_every = retry_every
        self._next_retry = 0.0
        self.dropped: Counter[str] = Counter()
        self.disk_error: str | None = None  # the last write failure while events are held

    @property
    def held(self) -> int:
        return len(self._held)

    def put(self, event_id: str, topic: str, payload: bytes) -> None:
        """Queue an event: on disk if possible, else in memory; a drop is counted and logged."""
        if self._held:
            self._flush()  # events are rare: one write attempt each costs nothing
        if self._held:
            self._hold(_Held(event_id, topic, payload))  # behind the held ones, in order
            return
        try:
            self._outbox.put(event_id, topic, payload)
            log.info("event %s queued", event_id)
        except OutboxFull as exc:
            self._drop(event_id, "outbox full", str(exc))
        except OutboxUnwritable as exc:
            self._disk_failed(exc)
            self._hold(_Held(event_id, topic, payload))

    def retry(self, now: float | None = None) -> None:
        """Write held events, oldest first, at most every ``retry_every`` seconds."""
        mono = time.monotonic() if now is None else now
        if not self._held or mono < self._next_retry:
            return
        self._next_retry = mono + self._retry_every
        self._flush()

    def _flush(self) -> None:
        while self._held:
            item = self._held[0]
            try:
                self._outbox.put(item.event_id, item.topic, item.payload)
            except OutboxFull as exc:
                self._held.popleft()
                self._drop(item.event_id, "outbox full", str(exc))
                continue
            except OutboxUnwritable as exc:
                self._disk_failed(exc)
                return
            self._held.popleft()
            log.info("event %s queued (held in memory while the disk was failing)", item.event_id)
        log.warning("outbox writable again; every held event is on disk")
        self.disk_error = None

    def _hold(self, item: _Held) -> None:
        if len(self._held) >= self._max_held:
            self._drop(item.event_id, "disk full", f"{self._max_held} events already held")
            return
        self._held.append(item)

    def _disk_failed(self, exc: OutboxUnwritable) -> None:
        if self.disk_error is None:
            log.error("outbox cannot be written, holding events in memory: %s", exc)
        self.disk_error = str(exc)

    def _drop(self, event_id: str, reason: str, detail: str) -> None:
        self.dropped[reason] += 1
        log.error("event %s dropped (%s): %s", event_id, reason, detail)
