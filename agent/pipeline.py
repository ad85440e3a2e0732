"""One frame: detect -> quality -> embed -> match -> track. Unmatched faces end here.

What a face that matches nobody leaves behind: one increment of ``faces_discarded``. Its
embedding is a local of :meth:`FramePipeline.process` and its pixels are never copied; only a
matched face's crop is copied out (it becomes the sealed probe of an event).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy, assess
from agent.core.tracker import Alert, Face, Tracker

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
    matches: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


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
    ) -> None:
        self.detector, self.embedder, self.quality = detector, embedder, quality
        self.tracker, self.probe_margin, self.tiles = tracker, probe_margin, tiles
        self.counters = Counters()

    def process(self, frame: U8, matcher: Matcher | None, now: datetime) -> list[Alert[U8]]:
        self.counters.frames += 1
        if matcher is None:
            # Nothing to match against: do not even look for faces.
            self.counters.frames_idle += 1
            return self.tracker.update([], now)
        detections = self.detector.detect(frame, tiles=self.tiles)
        self.counters.faces_detected += len(detections)
        faces: list[Face[U8]] = []
        for det in detections:
            reason = assess(frame, det.box, det.keypoints, self.quality)
            if reason is not None:
                self.counters.rejected[reason] += 1
                self.counters.faces_discarded += 1
                faces.append(Face(det.box))
                continue
            match = matcher.match(self.embedder.embed(frame, det))
            if match is None:
                self.counters.faces_discarded += 1
                faces.append(Face(det.box))
                continue
            self.counters.matches += 1
            faces.append(Face(det.box, match, crop_with_margin(frame, det.box, self.probe_margin)))
        return self.tracker.update(faces, now)
