"""The device's loop over its stages, in one thread, in this order each turn:

    messages (broker) -> control (device state) -> store
    expiry            -> control
    frames (source -> pipeline -> tracker) -> events (sign, outbox, broker)
    watchdog and status
    exit policy

Capture and paho's network loop run in their own threads and only hand over data. Every
stage is injected (:mod:`agent.app` builds them from config), and what differs between the
daemon and a replay is a stage and an :class:`ExitPolicy`, not flags through the loop. Stops
on SIGTERM/SIGINT within seconds with the outbox intact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from agent.control import DeviceControl
from agent.core.tracker import Alert
from agent.delivery import EventDelivery
from agent.frames import FrameStage
from agent.io.notify import Notifier
from agent.status import About, Alarm, AlarmKind, StatusReporter, assemble
from agent.trust_update import EXIT_TRUST_ROTATED, TrustUpdater
from lfrkit.mqtt import Message, MqttLink
from protocol.status import DeviceStatus, State
from protocol.topics import DeviceTopics

log = logging.getLogger(__name__)
U8 = npt.NDArray[np.uint8]
Clock = Callable[[], datetime]


class ExitPolicy(Protocol):
    """How a run begins and when it ends, besides SIGTERM."""

    def prepare(self, agent: Agent) -> None:
        """After the broker link starts, before frames do."""
        ...

    def verdict(self, agent: Agent) -> int | None:
        """After each turn: the exit code to stop with, or None to go on."""
        ...


class RunUntilStopped:
    """The daemon: runs until SIGTERM, whatever the camera does (it is retried; a source that
    cannot work at all is logged and reported)."""

    def __init__(self) -> None:
        self._reported = False

    def prepare(self, agent: Agent) -> None:
        pass

    def verdict(self, agent: Agent) -> int | None:
        fatal = agent.frames.fatal
        if agent.frames.ended and fatal and not self._reported:
            log.error("camera source failed: %s", fatal)
            self._reported = True
        return None


class Agent:
    def __init__(
        self,
        *,
        about: About,
        link: MqttLink,
        topics: DeviceTopics,
        control: DeviceControl,
        frames: FrameStage,
        delivery: EventDelivery,
        reporter: StatusReporter,
        notifier: Notifier,
        clock: Clock,
        started: datetime,
        policy: ExitPolicy,
        stall_seconds: float,
        trust: TrustUpdater | None = None,
    ) -> None:
        self.about, self.link, self.topics = about, link, topics
        self.control, self.frames, self.delivery = control, frames, delivery
        self.reporter, self.notifier, self.clock = reporter, notifier, clock
        self.policy, self.stall_seconds = policy, stall_seconds
        self.trust = trust
        control.on_change.append(frames.watchlist_changed)
        self.started = started
        self._stop = threading.Event()
        self._last_frame = self._last_watchdog = time.monotonic()

    # -- what policies and tests use ------------------------------------------------------

    def stop(self, *_: object) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def handle_messages(self) -> bool:
        """Up to 16 waiting messages to the device state; True if there were any."""
        handled = False
        for _ in range(16):
            message: Message | None = self.link.receive(0)
            if message is None:
                break
            handled = True
            if message.topic == self.topics.watchlist:
                self.control.on_watchlist(message.payload)
            elif message.topic == self.topics.command:
                if self.trust is not None and self.trust.is_rotation(message.payload):
                    self.trust.on_rotation(message.payload)
                else:
                    self.control.on_command(message.payload)
        return handled

    def status(
        self, fps: float, state: State | None = None, *, dropped_fps: float = 0.0
    ) -> DeviceStatus:
        mono = time.monotonic()
        since = 0.0 if self.frames.ended else mono - self._last_frame
        control, frames, events = (
            self.control.status(),
            self.frames.status(),
            self.delivery.status(),
        )
        alarms = control.alarms + frames.alarms + events.alarms
        if since >= self.stall_seconds:
            alarms += (
                Alarm(AlarmKind.CAMERA_STALLED, f"camera stalled: no frame for {since:.0f}s"),
            )
        if self.about.unsealed_keys:
            names = ", ".join(self.about.unsealed_keys)
            alarms += (Alarm(AlarmKind.KEYS_UNSEALED, f"keys unsealed: {names} plain"),)
        if state is None:
            state = State.PAUSED if self.control.paused else State.ONLINE
        return assemble(
            self.about,
            state,
            started=self.started,
            now=self.clock(),
            fps=fps,
            dropped_fps=dropped_fps,
            seconds_since_frame=since,
            alarms=alarms,
            watchlist=control.report,
            frames=frames.report,
            events=events.report,
        )

    def publish_status(self, fps: float = 0.0) -> None:
        self.reporter.publish(self.status(fps))

    # -- the loop -------------------------------------------------------------------------

    def _emit(self, alerts: list[Alert[U8]]) -> list[str]:
        return self.delivery.put(alerts, self.control.header)

    def _start(self) -> None:
        self.control.load_stored()
        self.link.subscribe_on_connect([(self.topics.watchlist, 1), (self.topics.command, 1)])
        self.link.start()
        self.policy.prepare(self)
        self.frames.start()
        self.notifier.ready(f"models, keys and watchlist loaded ({self.control.note})")
        self._last_frame = self._last_watchdog = time.monotonic()

    def _housekeeping(self) -> None:
        mono = time.monotonic()
        progressing = mono - self._last_frame < self.stall_seconds
        retrying = self.frames.retrying(mono)
        if (progressing or retrying) and mono - self._last_watchdog >= 1.0:
            # Only while frames are processed, or the camera is down and retried with back-off
            # (a restart would not bring it back, and 5 restarts fail the unit for good).
            self.notifier.watchdog()
            self._last_watchdog = mono
        news = (
            *self.control.news(),
            *self.delivery.news(),
            self.link.generation,
            not progressing,
            retrying,
        )
        self.reporter.tick(
            mono,
            news,
            lambda fps, dropped: self.status(fps, dropped_fps=dropped),
            self._frame_counts,
        )

    def _frame_counts(self) -> tuple[int, int]:
        report = self.frames.status().report
        return report.frames, report.frames_dropped

    def run(self) -> int:
        """Run until SIGTERM, or until the exit policy says so."""
        self._start()
        try:
            while not self._stop.is_set():
                self.handle_messages()
                if self.trust is not None and self.trust.rotated is not None:
                    return EXIT_TRUST_ROTATED
                now = self.clock()
                self.control.check_expiry(now)
                if self.frames.step(now, self.control.matching, self._emit):
                    self._last_frame = time.monotonic()
                self.delivery.step()
                self.control.retry_install()
                self._housekeeping()
                code = self.policy.verdict(self)
                if code is not None:
                    return code
            return 0
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.frames.stop(self.clock(), self._emit)
        self.delivery.finish()
        final = self.status(0.0, State.OFFLINE)
        self.reporter.publish_final(final)
        self.link.close()
        assert final.report is not None
        c, e = final.report.frames, final.report.events
        log.info(
            "stopped: frames=%d faces_detected=%d faces_embedded=%d faces_discarded=%d "
            "matches=%d events_published=%d events_queued=%d",
            c.frames,
            c.faces_detected,
            c.faces_embedded,
            c.faces_discarded,
            c.matches,
            e.events_published,
            e.events_queued,
        )
        self.delivery.close()
