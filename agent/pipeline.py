"""One frame: detect -> track -> quality -> embed when it pays -> match. Unmatched faces end here.

Detection runs on every frame and each face is assigned to its track first; the face is
embedded only when :func:`agent.core.schedule.decide` says it can change the outcome (a new
track, a clearly better face, or the periodic re-embedding), so the cost follows people, not
frames x faces. A track that has alerted, or a face below the quality gate, costs detection
only.

What a face that matches nobody leaves behind: one increment of ``faces_discarded`` (a face
not embedded this frame counts there too, so ``faces_detected == matches + faces_discarded``).
Its embedding is a local of :meth:`FramePipeline.process` and its pixels are never copied;
only a matched face's crop is copied out (it becomes the sealed probe of an event). Its track
keeps two numbers for the schedule (best quality score embedded, frame of the last embedding),
cleared when the track ends.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy, gate, measure, score
from agent.core.schedule import Decision, EmbedPolicy, decide, record
from agent.core.tracker import Alert, Tracker

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


class Detection(Protocol):
    @property
    def box(self) -> tuple[float, float, float, float]: ...

    @property
    def score(self) -> float: ...

    @property
    def keypoints(self) -> F32: ...


class Detector(Protocol):
    def detect(self, frame: U8, tiles: int = 1) -> Sequence[Detection]: ...


class Embedder(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    # Any: each embedder takes its own detector's detection type.
    def embed(self, img: U8, det: Any) -> F32: ...


@dataclass
class Counters:
    """Privacy counters since start: numbers only, never identities."""

    frames: int = 0
    frames_idle: int = 0  # processed without detection: no watchlist, or paused
    faces_detected: int = 0
    faces_discarded: int = 0
    faces_embedded: int = 0  # embeddings run (a face may be detected and not embedded)
    matches: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    decisions: Counter[Decision] = field(default_factory=Counter)  # faces past the gate
    # Process CPU seconds while each stage ran (TFLite's worker threads included).
    cpu_s: dict[str, float] = field(
        default_factory=lambda: {"detect": 0.0, "embed": 0.0, "match": 0.0}
    )


def crop_with_margin(frame: U8, box: tuple[float, float, float, float], margin: float) -> U8:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    height, width = frame.shape[:2]
    ix0, iy0 = max(0, int(x0 - margin * w)), max(0, int(y0 - margin * h))
    ix1, iy1 = min(width, int(x1 + margin * w)), min(height, int(y1 + margin * h))
    return frame[iy0:iy1, ix0:ix1].copy()


class FramePipeline:
    def __init__(
        self,
        detector: Detector,
        embedder: Embedder,
        quality: QualityPolicy,
        tracker: Tracker[U8],
        *,
        probe_margin: float = 0.3,
        tiles: int = 1,
        schedule: EmbedPolicy | None = None,
    ) -> None:
        self.detector, self.embedder, self.quality = detector, embedder, quality
        self.tracker, self.probe_margin, self.tiles = tracker, probe_margin, tiles
        self.schedule = schedule or EmbedPolicy()
        self.counters = Counters()

    def process(self, frame: U8, matcher: Matcher | None, now: datetime) -> list[Alert[U8]]:
        self.counters.frames += 1
        if matcher is None:
            # Nothing to match against: do not even look for faces.
            self.counters.frames_idle += 1
            return self.tracker.update([], now)
        cpu = self.counters.cpu_s
        began = time.process_time()
        detections = self.detector.detect(frame, tiles=self.tiles)
        cpu["detect"] += time.process_time() - began
        self.counters.faces_detected += len(detections)
        tracks = self.tracker.assign([d.box for d in detections], now)
        for det, track in zip(detections, tracks, strict=True):
            face = measure(frame, det.box, det.keypoints)
            reason = gate(face, self.quality)
            if reason is not None:
                self.counters.rejected[reason] += 1
                self.counters.faces_discarded += 1
                continue
            quality = score(face)
            decision = decide(
                track.embed,
                quality,
                self.tracker.frame,
                alerted=bool(track.alerted),
                policy=self.schedule,
            )
            self.counters.decisions[decision] += 1
            if not decision.embed:
                self.counters.faces_discarded += 1
                continue
            record(track.embed, quality, self.tracker.frame)
            began = time.process_time()
            embedding = self.embedder.embed(frame, det)
            mid = time.process_time()
            match = matcher.match(embedding)
            cpu["embed"] += mid - began
            cpu["match"] += time.process_time() - mid
            self.counters.faces_embedded += 1
            if match is None:
                self.counters.faces_discarded += 1
                continue
            self.counters.matches += 1
            crop = crop_with_margin(frame, det.box, self.probe_margin)
            self.tracker.offer(track, match, crop, now)
        return self.tracker.advance(now)
