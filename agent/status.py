"""The agent's side of the status document (protocol/status.py is the document itself).

Each piece of the agent contributes a :class:`Part`: its typed report and its alarms (and,
through its own ``news()``, the facts whose change publishes a status at once rather than at
the next interval). The loop puts the parts together (:func:`assemble`), and
:class:`StatusReporter` publishes the result, retained, and hands systemd its summary line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.io.notify import Notifier
from lfrkit.mqtt import MqttError, MqttLink
from protocol.status import (
    DeviceStatus,
    EventsReport,
    FramesReport,
    Report,
    State,
    WatchlistReport,
    sign_status,
)

log = logging.getLogger(__name__)
SOFTWARE_VERSION = "0.1.0"
T = TypeVar("T")


class AlarmKind(IntEnum):
    """The order alarms appear in the document, whichever piece raised them."""

    OUTBOX_FILLING = 1
    EVENTS_DROPPED = 2
    OUTBOX_UNWRITABLE = 3
    STATE_UNWRITABLE = 4
    CAMERA_STALLED = 5
    NO_CONSUMER = 6
    PUBLISH_REFUSED = 7
    CAMERA_ERRORS = 8
    FLOORS_UNPROVEN = 9  # the counters file was missing, edited or not this device's
    KEYS_UNSEALED = 10  # private keys read from plain files, not sealed credentials (issue 19)
    CAMERA_DOWN = 11  # the camera cannot be opened or read, retried


@dataclass(frozen=True)
class Alarm:
    kind: AlarmKind
    text: str


@dataclass(frozen=True)
class Part(Generic[T]):
    """What one piece contributes to the status document."""

    report: T
    alarms: tuple[Alarm, ...] = ()


@dataclass(frozen=True)
class About:
    """What a device says about itself that does not change while it runs."""

    device_id: str
    site: str
    embedder_sha256: str
    model_hashes: Mapping[str, str]
    software_version: str = SOFTWARE_VERSION
    unsealed_keys: tuple[str, ...] = ()  # key file names read plain (the fleet view's alarm)


def assemble(
    about: About,
    state: State,
    *,
    started: datetime,
    now: datetime,
    fps: float,
    dropped_fps: float = 0.0,
    seconds_since_frame: float,
    alarms: tuple[Alarm, ...],
    watchlist: WatchlistReport,
    frames: FramesReport,
    events: EventsReport,
) -> DeviceStatus:
    ordered = sorted(alarms, key=lambda a: a.kind)  # stable: a piece's own order is kept
    report = Report(
        software_version=about.software_version,
        embedder_sha256=about.embedder_sha256,
        model_hashes=dict(about.model_hashes),
        uptime_s=int((now - started).total_seconds()),
        fps=round(fps, 2),
        dropped_fps=round(dropped_fps, 2),
        seconds_since_frame=round(seconds_since_frame, 1),
        watchlist=watchlist,
        frames=frames,
        events=events,
        alarms=tuple(a.text for a in ordered),
        at=now.replace(microsecond=0),
    )
    return DeviceStatus(state, about.device_id, about.site, report)


def summary_line(status: DeviceStatus) -> str:
    """systemd STATUS= line."""
    report = status.report
    if report is None:
        return status.state.value
    wl = report.watchlist
    return (
        f"{status.state.value}; watchlist {'v' + str(wl.version) if wl.version else wl.note}; "
        f"{report.fps} fps; faces {report.frames.faces_detected}; "
        f"matches {report.frames.matches}; queued {report.events.events_queued}"
    )


class StatusReporter:
    """Publishes the status every ``interval`` seconds and whenever there is news, signed by
    the device key so consumers take it only from this device (issue 17 finding 1)."""

    def __init__(
        self,
        link: MqttLink,
        topic: str,
        notifier: Notifier,
        interval: float,
        signing_key: ed25519.Ed25519PrivateKey,
    ) -> None:
        self._link, self._topic, self._notifier = link, topic, notifier
        self._key = signing_key
        self._interval = interval
        self._last = 0.0  # monotonic time of the last periodic status; 0: none yet
        self._frames_at_last = self._dropped_at_last = 0
        self._news: tuple[object, ...] = ()

    def publish(self, status: DeviceStatus) -> None:
        if self._link.is_connected:
            self._link.publish(self._topic, sign_status(status, self._key), qos=1, retain=True)
        self._notifier.status(summary_line(status))

    def tick(
        self,
        mono: float,
        news: tuple[object, ...],
        build: Callable[[float, float], DeviceStatus],
        counts: Callable[[], tuple[int, int]],
    ) -> None:
        """Publish ``build(fps, dropped_fps)`` if the interval has passed or ``news`` changed;
        ``counts()``, frames processed and dropped so far, give the rates since the last one.
        Called every turn of the loop, so nothing is built unless a status is due."""
        if mono - self._last < self._interval and news == self._news:
            return
        frames, dropped = counts()
        span = max(mono - self._last, 1e-6)
        fps = (frames - self._frames_at_last) / span if self._last else 0.0
        dropped_fps = (dropped - self._dropped_at_last) / span if self._last else 0.0
        self.publish(build(fps, dropped_fps))
        self._last, self._news = mono, news
        self._frames_at_last, self._dropped_at_last = frames, dropped

    def publish_final(self, status: DeviceStatus) -> None:
        """The last status on the way out, waited for briefly (the last will covers a miss)."""
        if not self._link.is_connected:
            return
        mid = self._link.publish(self._topic, sign_status(status, self._key), qos=1, retain=True)
        try:
            self._link.wait_ack(mid, timeout=2.0)
        except MqttError as exc:  # best effort on the way out; the will covers it
            log.warning("final status not acknowledged: %s", exc)
