"""``lfr-agent run --until-end``: a finite clip, every frame, then drain the outbox and exit.

The replay's source is :class:`~agent.frames.CameraFrames` on the clip's own timeline
(:class:`~agent.frames.MediaTimeline`, built by :mod:`agent.app`); this is its exit policy.
It starts from what the broker holds for the device (the retained watchlist), so its result
does not depend on how fast the connection came up, and exits 0 once every event is
delivered, 2 if the source failed, 3 if no consumer was subscribed to the events for 30 s
(they stay queued for the next run).
"""

from __future__ import annotations

import logging
import time

from agent.loop import Agent
from lfrkit.mqtt import MqttError

log = logging.getLogger(__name__)
# Gives up draining after this long with no consumer subscribed to its events.
UNHEARD_GIVE_UP_SECONDS = 30.0
EXIT_SOURCE_FAILED = 2
EXIT_NO_CONSUMER = 3


class UntilDrained:
    def __init__(self, watchlist_wait: float = 0.0) -> None:
        self.watchlist_wait = watchlist_wait
        self._unheard_since: float | None = None

    def prepare(self, agent: Agent) -> None:
        try:
            agent.link.wait_subscribed(timeout=15)
            time.sleep(0.5)  # retained messages follow the SUBACK
            agent.handle_messages()
        except MqttError as exc:
            log.warning("replay starts without the broker: %s", exc)
        self._await_watchlist(agent)

    def _await_watchlist(self, agent: Agent) -> None:
        """A replay against no watchlist matches nothing: give ops time to push one."""
        deadline = time.monotonic() + self.watchlist_wait
        if agent.control.watchlist is None and self.watchlist_wait > 0:
            log.warning("no watchlist yet; waiting up to %.0fs for one", self.watchlist_wait)
            agent.publish_status()
        while (
            agent.control.watchlist is None and time.monotonic() < deadline and not agent.stopping
        ):
            if agent.handle_messages():
                agent.publish_status()
            time.sleep(0.1)

    def verdict(self, agent: Agent) -> int | None:
        if not agent.frames.ended:
            return None
        if agent.frames.fatal:
            log.error("camera source failed: %s", agent.frames.fatal)
            return EXIT_SOURCE_FAILED
        delivery = agent.delivery
        if delivery.drained:
            return 0
        if not delivery.waiting_for_consumer:
            self._unheard_since = None
            return None
        mono = time.monotonic()
        if self._unheard_since is None:
            self._unheard_since = mono
        if mono - self._unheard_since < UNHEARD_GIVE_UP_SECONDS:
            return None
        log.error(
            "%d events stay in the outbox: no consumer is subscribed to %s (sent on the next run)",
            len(delivery.outbox),
            delivery.topic,
        )
        return EXIT_NO_CONSUMER
