"""The simulated device: ``lfr-agent``'s own agent (:func:`agent.app.build_agent`, from the
device's own config) with its frame stage replaced by :class:`ScheduledAlerts` and its exit
policy by :class:`UntilScheduleDone`; from the alert on, everything is the agent's code."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.core.matcher import Matcher
from agent.core.tracker import Alert
from agent.frames import Emit
from agent.loop import Agent
from agent.status import Part
from protocol.status import FramesReport

log = logging.getLogger(__name__)
U8 = npt.NDArray[np.uint8]
WATCHLIST_COLOURS = [1, 2, 3]  # each device's watchlist: three synthetic subjects
PROBE_COLOUR = 1  # the subject every simulated alert is about


def probe_crop(rng: np.random.Generator, side: int = 150) -> U8:
    """A face-sized crop with camera-like noise: about 7 KB as JPEG at quality 85, the size of
    a real probe (a 90-120 px face grown by the 30% margin)."""
    from agent.synthetic_vision import draw_face

    y, x = np.mgrid[0:side, 0:side]
    base = np.stack([80 + x * 0.5, 70 + y * 0.6, 60 + (x + y) * 0.3], -1)
    noisy = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    draw_face(noisy, PROBE_COLOUR, side // 4, side // 4, side // 2)
    out: U8 = np.clip(noisy + rng.normal(0, 4, noisy.shape), 0, 255).astype(np.uint8)
    return out


@dataclass
class Schedule:
    """When a simulated device releases its alerts (wall-clock seconds, shared by all)."""

    period: float  # seconds between two alerts of this device
    phase: float  # first alert at start + phase
    start_at: float = math.inf  # set by the worker when the orchestrator says go
    end_at: float = math.inf
    drain: float = 180.0  # after end_at: how long to keep publishing what is queued
    tick: float = 0.04  # one loop turn per "frame": 25 fps


class ScheduledAlerts:
    """The frame stage of a simulated device: instead of camera, detector, embedder and
    tracker, it releases alerts on ``schedule``, each a real match of a noisy probe against
    the watchlist the agent installed, and hands them to the agent's own event sink."""

    def __init__(self, schedule: Schedule, seed: int) -> None:
        from agent.pipeline import Counters
        from agent.synthetic_vision import colour_embedding

        self.schedule = schedule
        self.rng = np.random.default_rng(seed)
        self.crop = probe_crop(self.rng)
        self.anchor = colour_embedding(PROBE_COLOUR)
        self.next_due = math.nan
        self.records: list[tuple[str, float, float, float]] = []  # id, due, created, queued
        self.counters = Counters()

    def _alert(self, matcher: Matcher | None, created: float) -> Alert[U8]:
        from agent.synthetic_vision import DIM

        probe = self.anchor + self.rng.normal(0, 0.01, DIM).astype(np.float32)
        match = None if matcher is None else matcher.match(probe)
        if match is None:
            raise RuntimeError("the probe matched nobody")
        self.counters.faces_detected += 1
        self.counters.matches += 1
        return Alert(self.counters.matches, match, self.crop, datetime.fromtimestamp(created, UTC))

    def start(self) -> None:
        pass

    def step(self, now: datetime, matcher: Matcher | None, emit: Emit) -> bool:
        plan = self.schedule
        if math.isnan(self.next_due) and plan.start_at < math.inf:
            self.next_due = plan.start_at + plan.phase
        while self.next_due <= time.time() and self.next_due < plan.end_at:
            created = time.time()
            (event_id,) = emit([self._alert(matcher, created)])
            self.records.append((event_id, self.next_due, created, time.time()))
            self.next_due += plan.period
        self.counters.frames += 1
        due = self.next_due - time.time() if self.next_due < plan.end_at else plan.tick
        time.sleep(max(0.0, min(plan.tick, due)))
        return True  # a "frame" per tick: the watchdog and status see a live camera

    def stop(self, now: datetime, emit: Emit) -> None:
        pass

    def watchlist_changed(self) -> None:
        pass

    @property
    def ended(self) -> bool:
        return False

    @property
    def fatal(self) -> str | None:
        return None

    def retrying(self, mono: float) -> bool:
        return False

    def status(self) -> Part[FramesReport]:
        c = self.counters
        return Part(FramesReport(c.frames, c.faces_detected, 0, {}, c.matches, 0, 0, 0))


class UntilScheduleDone:
    """The simulated device's exit policy: once its schedule has ended, stop when everything
    it produced is published, or when the drain time is over (and say so)."""

    def __init__(self, stage: ScheduledAlerts) -> None:
        self.stage = stage
        self.max_backlog = 0
        self.drained = True

    def prepare(self, agent: Agent) -> None:
        pass

    def verdict(self, agent: Agent) -> int | None:
        plan, delivery = self.stage.schedule, agent.delivery
        backlog = len(self.stage.records) - delivery.publisher.stats.events_published
        self.max_backlog = max(self.max_backlog, backlog)
        wall = time.time()
        if wall < plan.end_at:
            return None
        if backlog <= 0 and delivery.publisher.inflight == 0 and len(delivery.outbox) == 0:
            return 0
        if wall >= plan.end_at + plan.drain:
            self.drained = False
            log.error("%d events still queued after the drain", backlog)
            return 0
        return None


@dataclass
class SimulatedDevice:
    """``lfr-agent``'s own agent (:func:`agent.app.build_agent`, from the device's own config)
    with :class:`ScheduledAlerts` as its frame stage: from the alert on, everything is the
    agent's code (sign, seal the probe, spool and outbox; the loop: messages, publisher step,
    status)."""

    agent: Agent
    stage: ScheduledAlerts
    policy: UntilScheduleDone

    @property
    def device_id(self) -> str:
        return self.agent.about.device_id

    @property
    def schedule(self) -> Schedule:
        return self.stage.schedule

    @property
    def records(self) -> list[tuple[str, float, float, float]]:
        return self.stage.records

    @property
    def ready(self) -> bool:
        return self.agent.link.is_connected and self.agent.control.matcher is not None

    def run(self) -> int:
        return self.agent.run()

    def summary(self) -> dict[str, Any]:
        lags = [created - due for _, due, created, _ in self.records]
        delivery = self.agent.delivery
        return {
            "device": self.device_id,
            "produced": len(self.records),
            "signed": len(self.records),
            "published": delivery.publisher.stats.events_published,
            "refused": delivery.publisher.stats.publish_refused,
            "dropped": sum(delivery.spool.dropped.values()),
            "held": delivery.spool.held,
            "max_backlog": self.policy.max_backlog,
            "drained": self.policy.drained,
            "max_lag": max(lags, default=0.0),
        }


def simulated_agent(config_path: Path, schedule: Schedule, seed: int) -> SimulatedDevice:
    """A simulated device: the agent built from ``config_path``, alerts on ``schedule``."""
    from agent.app import build_agent
    from agent.config import load_config

    stage = ScheduledAlerts(schedule, seed)
    policy = UntilScheduleDone(stage)
    agent = build_agent(load_config(config_path), frames=stage, policy=policy)
    return SimulatedDevice(agent, stage, policy)
