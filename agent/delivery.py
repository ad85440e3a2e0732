"""The event sink: alerts become signed events, go to the outbox (through the spool), and
leave for the broker, in order, deleted only after PUBACK."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from agent.core.tracker import Alert
from agent.events import EventSigner
from agent.io.outbox import Outbox
from agent.io.publisher import Publisher
from agent.io.spool import Spool
from agent.status import Alarm, AlarmKind, Part
from protocol.status import EventsReport
from protocol.watchlist import WatchlistHeader

log = logging.getLogger(__name__)
U8 = npt.NDArray[np.uint8]


class EventDelivery:
    def __init__(
        self,
        signer: EventSigner,
        outbox: Outbox,
        spool: Spool,
        publisher: Publisher,
        topic: str,
        *,
        outbox_alarm: float,
    ) -> None:
        self.signer, self.outbox, self.spool, self.publisher = signer, outbox, spool, publisher
        self.topic = topic
        self.outbox_alarm = outbox_alarm

    def put(self, alerts: list[Alert[U8]], watchlist: WatchlistHeader | None) -> list[str]:
        """Sign and queue ``alerts`` made under ``watchlist``; the ids of the events queued.
        Without a watchlist in force nothing is sent."""
        if watchlist is None:
            return []
        ids = []
        for alert in alerts:
            event_id, token = self.signer.sign(alert, watchlist)
            self.spool.put(event_id, self.topic, token)
            ids.append(event_id)
        return ids

    def step(self) -> None:
        """Write held events if the disk takes them again; move the outbox to the broker."""
        self.spool.retry()
        self.publisher.step()

    @property
    def drained(self) -> bool:
        """Every event is delivered: none held, queued or awaiting PUBACK."""
        return self.spool.held == 0 and len(self.outbox) == 0 and self.publisher.inflight == 0

    @property
    def waiting_for_consumer(self) -> bool:
        return self.publisher.stats.waiting_for_consumer

    def finish(self) -> None:
        """On the way out: one last attempt to write held events to disk."""
        self.spool.retry(now=float("inf"))
        if self.spool.held:
            log.error(
                "%d events lost at shutdown: the outbox could not be written", self.spool.held
            )

    def close(self) -> None:
        self.outbox.close()

    def status(self) -> Part[EventsReport]:
        spool, stats = self.spool, self.publisher.stats
        queued, limit = len(self.outbox), self.outbox.max_events
        alarms = []
        if queued >= self.outbox_alarm * limit:
            alarms.append(Alarm(AlarmKind.OUTBOX_FILLING, f"outbox {queued}/{limit} full"))
        for reason, count in sorted(spool.dropped.items()):
            alarms.append(Alarm(AlarmKind.EVENTS_DROPPED, f"{count} events dropped ({reason})"))
        if spool.disk_error is not None:
            alarms.append(
                Alarm(
                    AlarmKind.OUTBOX_UNWRITABLE,
                    f"outbox not writable, {spool.held} events held in memory: {spool.disk_error}",
                )
            )
        if stats.waiting_for_consumer:
            alarms.append(
                Alarm(
                    AlarmKind.NO_CONSUMER,
                    f"no consumer subscribed to events: {queued} kept on the device",
                )
            )
        if stats.publish_refused:
            alarms.append(Alarm(AlarmKind.PUBLISH_REFUSED, stats.last_refusal))
        report = EventsReport(
            events_published=stats.events_published,
            events_queued=queued,
            events_held=spool.held,
            events_dropped=sum(spool.dropped.values()),
            outbox_max=limit,
        )
        return Part(report, tuple(alarms))

    def news(self) -> tuple[object, ...]:
        """What, when it changes, is published at once (cheap: no outbox query)."""
        return (self.spool.disk_error is not None,)
