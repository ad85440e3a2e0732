"""The frame stage: source -> pipeline -> tracker, handing alerts to the event sink.

The loop runs any :class:`FrameStage`: :class:`CameraFrames` (a camera or a clip through the
vision pipeline) for the daemon, or another implementation (the load generator releases alerts
on a schedule). A :class:`Timeline` says what time a frame is seen at: the wall clock live, or
the clip's own timeline in a replay, so a replay's result does not depend on how fast it runs.
"""

from __future__ import annotations

import time
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
        self.timeline = timeline
        self._detector_in_use = detector_in_use
        self._ended = False

    def start(self) -> None:
        self.capture.start()

    def step(self, now: datetime, matcher: Matcher | None, emit: Emit) -> bool:
        if self._ended:
            time.sleep(0.01)
            return False
        frame = self.capture.get(timeout=0.05)
        if frame is not None:
            seen = self.timeline.frame_time(now, frame)
            emit(self.pipeline.process(frame.image, matcher, seen))
            return True
        if self.capture.ended:
            # The clip is over: what the tracker still holds is due now.
            self._ended = True
            emit(self.tracker.flush(self.timeline.end_time(now)))
        return False

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
            stage_cpu_s=dict(counters.cpu_s),
            detector=self._detector_in_use(),
        )
        alarms: tuple[Alarm, ...] = ()
        if camera.camera_errors:
            text = f"camera errors: {camera.camera_errors} ({camera.last_error})"
            alarms = (Alarm(AlarmKind.CAMERA_ERRORS, text),)
        return Part(report, alarms)
