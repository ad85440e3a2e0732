"""The frame stage: source -> pipeline -> tracker, handing alerts to the event sink.

The loop runs any :class:`FrameStage`: :class:`CameraFrames` (a camera or a clip through the
vision pipeline) for the daemon, or another implementation (the load generator releases alerts
on a schedule). A :class:`Timeline` says what time a frame is seen at: the wall clock live, or
the clip's own timeline in a replay, so a replay's result does not depend on how fast it runs.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from agent.core.matcher import Matcher
from agent.core.tracker import Alert, Tracker
from agent.io.capture import Capture
from agent.io.sources import Frame
from agent.pipeline import FramePipeline
from agent.status import Alarm, AlarmKind, Part
from protocol.status import FramesReport

U8 = npt.NDArray[np.uint8]
# Hands alerts to the event sink; returns the ids of the events queued for them.
Emit = Callable[[list[Alert[U8]]], list[str]]
# The status summarises the time to alert over this many recent alerts (bounded).
TIME_TO_ALERT_WINDOW = 100


class FrameStage(Protocol):
    def start(self) -> None: ...

    def step(self, now: datetime, matcher: Matcher | None, emit: Emit) -> bool:
        """One turn of the loop: at most one frame, its alerts emitted. True if a frame was
        processed (the loop feeds the watchdog only while frames are)."""
        ...

    def stop(self, now: datetime, emit: Emit) -> None:
        """Stop the source and emit whatever alerts are still pending."""
        ...

    def watchlist_changed(self) -> None:
        """The watchlist was replaced or wiped: forget its subjects."""
        ...

    @property
    def ended(self) -> bool:
        """A finite source is exhausted (or failed for good)."""
        ...

    @property
    def fatal(self) -> str | None:
        """Why the source failed for good, if it did."""
        ...

    def retrying(self, mono: float) -> bool:
        """The camera is down and being retried with back-off: the agent is healthy, so the
        loop keeps feeding the watchdog (the status carries the camera-down alarm)."""
        ...

    def status(self) -> Part[FramesReport]: ...


class Timeline(Protocol):
    def frame_time(self, now: datetime, frame: Frame) -> datetime: ...

    def end_time(self, now: datetime) -> datetime: ...


class WallTimeline:
    """Live: a frame is seen when it is processed."""

    def frame_time(self, now: datetime, frame: Frame) -> datetime:
        return now

    def end_time(self, now: datetime) -> datetime:
        return now


@dataclass
class MediaTimeline:
    """Replay: frames are seen on the clip's own timeline (their durations), from ``start``."""

    start: datetime
    offset: timedelta = field(default=timedelta(0))

    def frame_time(self, now: datetime, frame: Frame) -> datetime:
        seen = self.start + self.offset
        self.offset += timedelta(seconds=frame.duration)
        return seen

    def end_time(self, now: datetime) -> datetime:
        return self.start + self.offset


class CameraFrames:
    """Frames from the capture thread through the vision pipeline and the tracker."""

    def __init__(
        self,
        capture: Capture,
        pipeline: FramePipeline,
        tracker: Tracker[U8],
        timeline: Timeline,
        detector_in_use: Callable[[], str] = lambda: "",
    ) -> None:
        self.capture, self.pipeline, self.tracker = capture, pipeline, tracker
        # The capture thread decodes the next frame while a stage runs: its CPU is its own
        # stage ("capture" in the status), not detection's or embedding's.
        self._stage_clock = 0.0
        pipeline.cpu_clock = self._stage_cpu
        self.timeline = timeline
        self._detector_in_use = detector_in_use
        self._ended = False
        # Seconds from a face first reaching the minimum size to its event being queued.
        self.time_to_alert: deque[float] = deque(maxlen=TIME_TO_ALERT_WINDOW)

    def start(self) -> None:
        self.capture.start()

    def _stage_cpu(self) -> float:
        # The process's CPU and the capture thread's are read one after the other, and the
        # capture thread may run in between: a reading can fall below the previous one. A
        # clock that stages take differences of must not go back (a negative stage total made
        # the agent's own status invalid, and the agent exited), so it holds at its highest.
        reading = time.process_time() - self.capture.cpu_seconds()
        self._stage_clock = max(self._stage_clock, reading)
        return self._stage_clock

    def step(self, now: datetime, matcher: Matcher | None, emit: Emit) -> bool:
        if self._ended:
            time.sleep(0.01)
            return False
        frame = self.capture.get(timeout=0.05)
        if frame is not None:
            began = time.monotonic()
            seen = self.timeline.frame_time(now, frame)
            alerts = self.pipeline.process(frame.image, matcher, seen)
            queued = emit(alerts)
            self._timed(alerts, queued, time.monotonic() - began)
            return True
        if self.capture.ended:
            # The clip is over: what the tracker still holds is due now.
            self._ended = True
            emit(self.tracker.flush(self.timeline.end_time(now)))
        return False

    def _timed(self, alerts: list[Alert[U8]], queued: list[str], work_s: float) -> None:
        """Time to alert of the events just queued: the decision's delay on the frames'
        timeline (the clip's own in a replay) plus the wall time of this frame's processing,
        signing and queueing."""
        if not alerts or len(queued) != len(alerts):
            return  # nothing queued (no watchlist in force)
        for alert in alerts:
            if alert.sized_at is not None and alert.raised_at is not None:
                waited = (alert.raised_at - alert.sized_at).total_seconds()
                self.time_to_alert.append(max(0.0, waited) + work_s)

    def stop(self, now: datetime, emit: Emit) -> None:
        self.capture.stop()
        emit(self.tracker.flush(self.timeline.end_time(now)))

    def watchlist_changed(self) -> None:
        self.tracker.forget_subjects()

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def fatal(self) -> str | None:
        return self.capture.fatal

    def retrying(self, mono: float) -> bool:
        return self.capture.retrying(mono)

    def _time_to_alert_summary(self) -> dict[str, float]:
        if not self.time_to_alert:
            return {}
        return {
            "last": self.time_to_alert[-1],
            "median": statistics.median(self.time_to_alert),
        }

    def status(self) -> Part[FramesReport]:
        counters, camera = self.pipeline.counters, self.capture.stats
        report = FramesReport(
            frames=counters.frames,
            faces_detected=counters.faces_detected,
            faces_discarded=counters.faces_discarded,
            faces_rejected_quality=dict(sorted(counters.rejected.items())),
            matches=counters.matches,
            camera_errors=camera.camera_errors,
            camera_restarts=camera.camera_restarts,
            frames_dropped=camera.frames_dropped,
            faces_embedded=counters.faces_embedded,
            stage_cpu_s={**counters.cpu_s, "capture": self.capture.cpu_seconds()},
            detector=self._detector_in_use(),
            time_to_alert_s=self._time_to_alert_summary(),
            tracks_started=self.tracker.stats.tracks_started,
        )
        alarms: tuple[Alarm, ...] = ()
        if camera.down_since is not None:
            mono = time.monotonic()
            alarms += (
                Alarm(
                    AlarmKind.CAMERA_DOWN,
                    f"camera down for {mono - camera.down_since:.0f}s: {camera.last_error} "
                    f"(next attempt in {max(0.0, camera.retry_at - mono):.0f}s)",
                ),
            )
        if camera.camera_errors:
            text = f"camera errors: {camera.camera_errors} ({camera.last_error})"
            alarms += (Alarm(AlarmKind.CAMERA_ERRORS, text),)
        return Part(report, alarms)
