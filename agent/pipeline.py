"""One frame: detect -> track -> quality -> embed when it pays -> decide. Unmatched faces end here.

Detection runs on every frame and each face is assigned to its track first; the face is
embedded only when :func:`agent.core.schedule.decide` says it can change the outcome, so the
cost follows people, not frames x faces. A track that has alerted, or a face below the quality
gate, costs detection only.

The decision (``rule``): under the track rule (default) an embedded face joins its track's
template (the mean of its best K faces, :mod:`agent.core.template`) and, once the template
holds K faces, the template is matched with a margin to the second-best entry; a match alerts
at once with the track's best face as the probe. Under the one-frame rule each embedded face is
matched alone and the tracker picks the best-scoring matched crop within its window.

What a face that matches nobody leaves behind: one increment of ``faces_discarded`` (a face
not embedded this frame counts there too, so ``faces_detected == matches + faces_discarded``;
under the track rule an embedded face counts as a match when the decision it fed matched).
Under the one-frame rule its embedding is a local and its pixels are never copied. Under the
track rule its unit embedding, and the crop of the track's best face, stay in the track's
template in memory while the track lives and are zeroed when it ends; nothing is written,
logged or sent unless the track alerts.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy, gate, measure, score
from agent.core.schedule import Decision, EmbedPolicy, decide, record
from agent.core.template import wipe
from agent.core.tracker import Alert, Track, Tracker

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


class Rule(StrEnum):
    TRACK = "track"  # decide on the track's template of its best K faces
    FRAME = "frame"  # the former rule: one frame whose face matches starts an alert


# A template must lead the second-best entry by this much (issue 16; see docs/operator-guide).
DEFAULT_MIN_MARGIN = 0.05


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
    # CPU seconds each stage used, by the pipeline's cpu_clock (TFLite's worker threads
    # included).
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
        rule: Rule = Rule.TRACK,
        min_margin: float = DEFAULT_MIN_MARGIN,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.detector, self.embedder, self.quality = detector, embedder, quality
        # What the stages are timed with: the process's CPU by default; the camera stage
        # leaves out its capture thread's, which decodes the next frame meanwhile
        # (agent.frames.CameraFrames).
        self.cpu_clock = cpu_clock
        self.tracker, self.probe_margin, self.tiles = tracker, probe_margin, tiles
        self.schedule = schedule or EmbedPolicy()
        self.rule, self.min_margin = rule, min_margin
        self.counters = Counters()

    def process(self, frame: U8, matcher: Matcher | None, now: datetime) -> list[Alert[U8]]:
        self.counters.frames += 1
        if matcher is None:
            # Nothing to match against: do not even look for faces.
            self.counters.frames_idle += 1
            return self.tracker.update([], now)
        cpu = self.counters.cpu_s
        began = self.cpu_clock()
        detections = self.detector.detect(frame, tiles=self.tiles)
        cpu["detect"] += self.cpu_clock() - began
        self.counters.faces_detected += len(detections)
        tracks = self.tracker.assign([d.box for d in detections], now)
        alerts: list[Alert[U8]] = []
        for det, track in zip(detections, tracks, strict=True):
            face = measure(frame, det.box, det.keypoints, self.quality.detail_px)
            if track.sized_at is None and face.size_px >= self.quality.min_face_px:
                track.sized_at = now  # the clock of the time to alert starts here
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
                template=track.template if self.rule is Rule.TRACK else None,
            )
            self.counters.decisions[decision] += 1
            if not decision.embed:
                self.counters.faces_discarded += 1
                continue
            record(track.embed, quality, self.tracker.frame)
            began = self.cpu_clock()
            embedding = self.embedder.embed(frame, det)
            cpu["embed"] += self.cpu_clock() - began
            self.counters.faces_embedded += 1
            if self.rule is Rule.TRACK:
                alerts += self._decide_on_track(
                    frame,
                    det=det,
                    track=track,
                    embedding=embedding,
                    quality=quality,
                    matcher=matcher,
                    now=now,
                )
                continue
            began = self.cpu_clock()
            match = matcher.match(embedding)
            cpu["match"] += self.cpu_clock() - began
            if match is None:
                self.counters.faces_discarded += 1
                continue
            self.counters.matches += 1
            crop = crop_with_margin(frame, det.box, self.probe_margin)
            self.tracker.offer(track, match, crop, now)
        return alerts + self.tracker.advance(now)

    def _decide_on_track(
        self,
        frame: U8,
        *,
        det: Detection,
        track: Track[U8],
        embedding: F32,
        quality: float,
        matcher: Matcher,
        now: datetime,
    ) -> list[Alert[U8]]:
        """The face joins the track's template; a full template that changed is matched."""
        template = track.template
        if template.add(embedding, quality) and template.wants_crop(quality):
            template.offer_crop(quality, crop_with_margin(frame, det.box, self.probe_margin), now)
        match = None
        if template.full and template.changed:
            template.changed = False
            began = self.cpu_clock()
            probe = template.vector()
            match = matcher.match(probe, min_margin=self.min_margin, coherence=template.coherence())
            wipe(probe)
            self.counters.cpu_s["match"] += self.cpu_clock() - began
        if match is None or template.crop is None:
            self.counters.faces_discarded += 1
            return []
        self.counters.matches += 1
        return self.tracker.raise_alert(track, match, template.crop.copy(), now)
