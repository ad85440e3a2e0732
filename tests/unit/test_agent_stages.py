"""The agent's stages without a broker: the camera stage on a clip's own timeline (a replay),
and the status document put together from the parts each piece contributes."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy
from agent.core.tracker import Alert, Tracker
from agent.frames import CameraFrames, MediaTimeline, WallTimeline
from agent.io.capture import Capture, thread_cpu_seconds
from agent.io.sources import Frame
from agent.pipeline import FramePipeline, Rule
from agent.status import About, Alarm, AlarmKind, assemble, summary_line
from agent.synthetic_vision import (
    ColourEmbedder,
    SquareDetection,
    SquareDetector,
    colour_embedding,
    draw_face,
)
from protocol.entries import Entry
from protocol.status import EventsReport, FramesReport, State, WatchlistReport, encode_status
from tests.conftest import EMBEDDER, NOW

U8 = npt.NDArray[np.uint8]


class Clip:
    """A finite source (a real FrameSource): ``count`` frames of 0.5 s, the watchlisted
    colour-1 face in each."""

    finite = True

    def __init__(self, count: int) -> None:
        self.count, self.index = count, 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self.index == self.count:
            return None
        self.index += 1
        image = np.full((240, 320, 3), 128, np.uint8)
        draw_face(image, 1, 100, 60, 96)
        return Frame(image, self.index, 0.5)

    def close(self) -> None:
        pass


def camera(
    count: int, timeline: MediaTimeline | WallTimeline, rule: Rule = Rule.FRAME
) -> CameraFrames:
    tracker: Tracker[U8] = Tracker(window=timedelta(seconds=10), cooldown=timedelta(hours=1))
    pipeline = FramePipeline(
        SquareDetector(), ColourEmbedder(), QualityPolicy(10, 0, 1.0), tracker, rule=rule
    )
    return CameraFrames(Capture(Clip(count), replay=True), pipeline, tracker, timeline)


def test_a_replay_runs_on_the_clips_timeline_and_flushes_at_its_end() -> None:
    """The one-frame rule: the window's best frame, flushed when the clip ends."""
    matcher = Matcher([Entry("WL-1", "wanted", None, colour_embedding(1)[None, :])], 0.5)
    frames = camera(6, MediaTimeline(NOW))
    emitted: list[Alert[U8]] = []

    def emit(alerts: list[Alert[U8]]) -> list[str]:
        emitted.extend(alerts)
        return [f"e{len(emitted)}"] * len(alerts)

    frames.start()
    wall = NOW + timedelta(days=3)  # however late the replay runs, the clip's times count
    processed = 0
    for _ in range(500):
        processed += frames.step(wall, matcher, emit)
        if frames.ended:
            break
    assert frames.ended and frames.fatal is None and processed == 6
    # One alert (the window outlasts the clip), flushed at the clip's end: 6 x 0.5 s.
    assert len(emitted) == 1 and emitted[0].match.subject_ref == "WL-1"
    assert emitted[0].observed_at == NOW  # the best frame: the first (all equal)
    assert frames.timeline.end_time(wall) == NOW + timedelta(seconds=3)
    report = frames.status().report
    # The track is embedded once (new); the same face on later frames is not (nothing improved,
    # the re-embedding every 10 frames is not yet due).
    assert (report.frames, report.faces_detected, report.faces_embedded) == (6, 6, 1)
    assert (report.matches, report.faces_discarded) == (1, 5)
    frames.stop(wall, emit)
    assert len(emitted) == 1  # nothing left to flush


def test_the_track_rule_alerts_when_the_template_is_full_and_reports_the_time_to_alert() -> None:
    matcher = Matcher([Entry("WL-1", "wanted", None, colour_embedding(1)[None, :])], 0.5)
    frames = camera(6, MediaTimeline(NOW), Rule.TRACK)
    emitted: list[Alert[U8]] = []

    def emit(alerts: list[Alert[U8]]) -> list[str]:
        emitted.extend(alerts)
        return [f"e{len(emitted)}"] * len(alerts)

    frames.start()
    assert frames.status().report.time_to_alert_s == {}  # before the first alert: nothing
    while not frames.ended:
        frames.step(NOW + timedelta(days=3), matcher, emit)
    # K = 3 faces: the first, then every 2nd frame (0.5 s each): decided on the 5th frame.
    assert len(emitted) == 1 and emitted[0].raised_at == NOW + timedelta(seconds=2)
    assert emitted[0].sized_at == NOW
    report = frames.status().report
    assert (report.faces_embedded, report.matches, report.faces_discarded) == (3, 1, 5)
    # On the clip's timeline, plus this machine's time to process, sign and queue the frame.
    timed = report.time_to_alert_s
    assert set(timed) == {"last", "median"} and timed["last"] == timed["median"]
    assert 2.0 <= timed["last"] < 2.0 + 30
    frames.stop(NOW, emit)
    assert len(emitted) == 1


def test_live_frames_are_seen_when_processed() -> None:
    frames = camera(2, WallTimeline())
    seen: list[list[Alert[U8]]] = []

    def emit(alerts: list[Alert[U8]]) -> list[str]:
        seen.append(alerts)
        return []

    frames.start()
    while not frames.ended:
        frames.step(NOW, None, emit)
    frames.stop(NOW, emit)
    assert frames.status().report.frames == 2 and seen[-1] == []


class DecodingClip(Clip):
    """A clip whose every read costs ``burn_s`` of CPU in the capture thread, as decoding does."""

    def __init__(self, count: int, burn_s: float) -> None:
        super().__init__(count)
        self.burn_s = burn_s

    def read(self) -> Frame | None:
        began = time.thread_time()
        while time.thread_time() - began < self.burn_s:
            pass
        return super().read()


class WaitingDetector:
    """Takes wall time but almost no CPU (as if it waited on an accelerator); finds nothing."""

    def detect(self, frame: U8, tiles: int = 1) -> Sequence[SquareDetection]:
        time.sleep(0.03)
        return []


def replayed(capture: Capture) -> CameraFrames:
    """Every frame of ``capture`` through a pipeline whose detector waits and finds nothing."""
    tracker: Tracker[U8] = Tracker(window=timedelta(seconds=10), cooldown=timedelta(hours=1))
    pipeline = FramePipeline(
        WaitingDetector(), ColourEmbedder(), QualityPolicy(10, 0, 1.0), tracker
    )
    frames = CameraFrames(capture, pipeline, tracker, MediaTimeline(NOW))
    matcher = Matcher([Entry("WL-1", "wanted", None, colour_embedding(1)[None, :])], 0.5)
    frames.start()
    while not frames.ended:
        frames.step(NOW, matcher, lambda alerts: [])
    frames.stop(NOW, lambda alerts: [])
    return frames


def test_the_capture_threads_cpu_is_its_own_stage_not_detections() -> None:
    """The capture thread decodes the next frame while the pipeline detects in this one; that
    CPU is reported as ``capture``, not counted in ``detect`` (it was, issue 15's footprint)."""
    frames = replayed(Capture(DecodingClip(12, burn_s=0.02), replay=True))
    cpu = frames.status().report.stage_cpu_s
    assert set(cpu) == {"detect", "embed", "match", "capture"}
    assert cpu["capture"] >= 12 * 0.02  # every read's CPU, though the thread has ended
    # The reads overlapping the 12 waits (about 11 x 20 ms) are not detection's.
    assert cpu["detect"] < 0.05, cpu


class RacingCapture(Capture):
    """The capture thread running between the stage clock's two reads, every time: its CPU
    has grown by 10 ms more than the process's reading taken a moment before includes."""

    def __init__(self, source: DecodingClip) -> None:
        super().__init__(source, replay=True)
        self.raced = 0.0

    def cpu_seconds(self) -> float:
        self.raced += 0.01
        return self.raced


def test_stage_cpu_never_goes_negative_when_capture_runs_between_the_reads() -> None:
    """A stage that uses almost no CPU while the capture thread decodes gave a negative total,
    which the agent's own status refused, and the agent exited (a fleet test caught it)."""
    frames = replayed(RacingCapture(DecodingClip(6, burn_s=0.0)))
    report = frames.status().report
    assert frames.pipeline.counters.frames == 6
    assert all(seconds >= 0 for seconds in report.stage_cpu_s.values()), report.stage_cpu_s
    status = assemble(
        About("cam-01", "kx", EMBEDDER, {}),
        State.ONLINE,
        started=NOW - timedelta(seconds=10),
        now=NOW,
        fps=1.0,
        seconds_since_frame=0.5,
        alarms=(),
        watchlist=WatchlistReport(7, "d", NOW, "installed", 7, 2, None),
        frames=report,
        events=EventsReport(0, 0, 0, 0, 10),
    )
    # encode_status refuses what a consumer would: it raised here, and the agent exited.
    assert json.loads(encode_status(status))["stage_cpu_s"].keys() == report.stage_cpu_s.keys()


def test_a_threads_cpu_clock_reads_that_threads_cpu_only() -> None:
    import threading

    got: dict[str, float | None] = {}

    def burn() -> None:
        began = time.thread_time()
        while time.thread_time() - began < 0.05:
            pass
        got["own"] = time.thread_time()
        got["read"] = thread_cpu_seconds(threading.get_native_id())

    mine = thread_cpu_seconds(threading.get_native_id())
    worker = threading.Thread(target=burn)
    worker.start()
    worker.join()
    assert mine is not None and abs(mine - time.thread_time()) < 0.05
    own, read = got["own"], got["read"]
    assert own is not None and read is not None and 0.05 <= own <= read < own + 0.01


def test_alarms_keep_the_documents_order_whichever_piece_raised_them() -> None:
    alarms = (
        Alarm(AlarmKind.CAMERA_ERRORS, "camera errors: 2 (no signal)"),
        Alarm(AlarmKind.STATE_UNWRITABLE, "state not writable: disk full"),
        Alarm(AlarmKind.EVENTS_DROPPED, "1 events dropped (disk full)"),
        Alarm(AlarmKind.OUTBOX_FILLING, "outbox 9/10 full"),
        Alarm(AlarmKind.EVENTS_DROPPED, "2 events dropped (outbox full)"),
        Alarm(AlarmKind.CAMERA_STALLED, "camera stalled: no frame for 12s"),
    )
    status = assemble(
        About("cam-01", "kx", EMBEDDER, {}),
        State.PAUSED,
        started=NOW - timedelta(seconds=90, microseconds=700_000),
        now=NOW + timedelta(microseconds=400_000),
        fps=12.3456,
        seconds_since_frame=12.345,
        alarms=alarms,
        watchlist=WatchlistReport(7, "d", NOW, "installed", 7, 2, None),
        frames=FramesReport(10, 4, 3, {}, 1, 2, 1, 0),
        events=EventsReport(1, 9, 0, 3, 10),
    )
    doc = json.loads(encode_status(status))
    assert doc["alarms"] == [
        "outbox 9/10 full",
        "1 events dropped (disk full)",
        "2 events dropped (outbox full)",
        "state not writable: disk full",
        "camera stalled: no frame for 12s",
        "camera errors: 2 (no signal)",
    ]
    assert (doc["uptime_s"], doc["fps"], doc["seconds_since_frame"]) == (91, 12.35, 12.3)
    assert doc["at"] == "2026-11-28T09:00:00Z" and doc["software_version"] == "0.1.0"
    assert summary_line(status) == "paused; watchlist v7; 12.35 fps; faces 4; matches 1; queued 9"
