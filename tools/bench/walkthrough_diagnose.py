"""Why a walker was missed: the walk-through clip through the agent's own frame pipeline, in
process, with each face attributed to its walker by the ground truth (``--diagnose``).

Per walker: how many tracks the tracker split them into, how many faces were detected and
embedded, and the best score any of their tracks' templates reached against their own entry
(and against the best other entry), next to the signed threshold. A walker split into many
tracks never fills a template; a walker whose template scores just below the threshold is a
recognition miss, not a tracking one.

The pipeline is :func:`agent.app.frame_pipeline` built from the same config the replay uses,
on the same frames (timeline 10 frames/s); the bench reads track templates here, which the
agent never exposes. Nothing of this leaves the bench's report.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from agent.core.tracker import iou
from tools.bench.walkthrough_scene import Walker, placement

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
Box4 = tuple[float, float, float, float]
FRAME = timedelta(milliseconds=100)
MIN_IOU = 0.3  # a detection is a walker's face if it overlaps the truth this much


@dataclass
class WalkerTrace:
    walker: Walker
    tracks: set[int] = field(default_factory=set)
    detected: int = 0
    embedded: int = 0
    own: float = -1.0  # best template score against the walker's own entry
    other: float = -1.0  # best template score against any other entry
    # The same for the quality-weighted mean of the same faces (Template.weighted_vector).
    own_weighted: float = -1.0
    other_weighted: float = -1.0
    # The best own score minus the threshold the agent applied to that template (its
    # coherence's bin, when the list is sealed by coherence), with that coherence and threshold.
    gap: float = -2.0
    gap_coherence: float = float("nan")
    gap_threshold: float = float("nan")
    other_gap: float = -2.0  # the same against the best other entry
    alerted: bool = False


class _Counting:
    """The embedder, noting the boxes it embedded this frame."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.boxes: list[Box4] = []

    @property
    def id(self) -> str:
        return str(self.inner.id)

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def embed(self, img: U8, det: Any) -> F32:
        x0, y0, x1, y1 = det.box
        self.boxes.append((float(x0), float(y0), float(x1), float(y1)))
        out: F32 = self.inner.embed(img, det)
        return out


def _owner(box: Box4, truth: list[tuple[Box4, WalkerTrace]]) -> WalkerTrace | None:
    best = max(truth, key=lambda t: iou(t[0], box), default=None)
    if best is None or iou(best[0], box) < MIN_IOU:
        return None
    return best[1]


def diagnose(
    walkers: list[Walker],
    frames: Path,
    lanes: int,
    *,
    config: Path,
    entries_file: Path,
    threshold: float,
    bins: tuple[tuple[float, float], ...] | None = None,
    entry_means: bool = False,
) -> list[WalkerTrace]:
    """Replay ``frames`` in process under ``config``; one trace per walker. ``bins``: the
    sealed threshold by coherence (None: ``threshold`` for every template)."""
    from agent.app import frame_pipeline, load_vision
    from agent.config import load_config
    from agent.core.matcher import Matcher
    from protocol.entries import parse_entries_file

    settings = load_config(config)
    vision = load_vision(settings)
    pipeline = frame_pipeline(settings, vision)
    counting = _Counting(vision.embedder)
    pipeline.embedder = counting
    entries = parse_entries_file(entries_file.read_bytes()).entries
    if not settings.matching.coherence:
        bins = None  # the agent's config turns the bins off ("fixed" variant)
    matcher = Matcher(
        entries,
        threshold,
        settings.matching.storage,
        bins,
        entry_means=entry_means and settings.matching.entry_means,
    )
    index = {e.subject_ref: i for i, e in enumerate(entries)}
    traces = [WalkerTrace(w) for w in walkers]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for number, path in enumerate(sorted(frames.glob("*.jpg"))):
        with Image.open(path) as img:
            frame = np.asarray(img.convert("RGB"))
        truth = [
            (placement(t.walker, number, lanes)[1], t)
            for t in traces
            if t.walker.first <= number <= t.walker.last
        ]
        counting.boxes.clear()
        at = now + number * FRAME
        alerts = pipeline.process(frame, matcher, at)
        for box in counting.boxes:
            owner = _owner(box, truth)
            if owner is not None:
                owner.embedded += 1
        for track in pipeline.tracker.tracks:
            if track.last_seen != at:
                continue
            owner = _owner(track.box, truth)
            if owner is None:
                continue
            owner.tracks.add(track.track_id)
            owner.detected += 1
            if track.template.full:  # what the track rule decides on
                plain = _scores(owner, track.template.vector(), matcher, index)
                weighted = _scores(owner, track.template.weighted_vector(), matcher, index)
                owner.own, owner.other = max(owner.own, plain[0]), max(owner.other, plain[1])
                owner.own_weighted = max(owner.own_weighted, weighted[0])
                owner.other_weighted = max(owner.other_weighted, weighted[1])
                _note_gap(owner, plain, track.template.coherence(), matcher, index)
        for alert in alerts:
            for t in traces:
                if alert.match.subject_ref == t.walker.person.ref:
                    t.alerted = True
    return traces


def _scores(
    trace: WalkerTrace, probe: F32, matcher: Any, index: dict[str, int]
) -> tuple[float, float]:
    """The probe's score against the walker's own entry (-1: not listed) and the best other."""
    scores = matcher.entry_scores(probe)
    ref = trace.walker.person.ref
    own = index.get(ref) if ref is not None else None
    mine = -1.0
    if own is not None:
        mine = float(scores[own])
        scores = np.delete(scores, own)
    return mine, float(scores.max())


def _note_gap(
    trace: WalkerTrace,
    scores: tuple[float, float],
    coherence: float,
    matcher: Any,
    index: dict[str, int],
) -> None:
    """Keep the template's scores minus the threshold the agent judged it at, if best so far
    (the walk-through's lists have no per-entry thresholds, so every entry shares it)."""
    ref = trace.walker.person.ref
    limit = matcher.threshold(index.get(ref, 0) if ref is not None else 0, coherence)
    if ref is not None and scores[0] - limit > trace.gap:
        trace.gap, trace.gap_coherence, trace.gap_threshold = scores[0] - limit, coherence, limit
    trace.other_gap = max(trace.other_gap, scores[1] - limit)


def report(traces: list[WalkerTrace], threshold: float, title: str) -> list[str]:
    """Markdown: a summary over all walkers, then one row per listed walker."""
    listed = [t for t in traces if t.walker.person.ref is not None]
    strangers = [t for t in traces if t.walker.person.ref is None]

    def med(values: list[int]) -> str:
        return f"{statistics.median(values):.0f}" if values else "-"

    lines = [
        f"### Diagnosis: {title}",
        "",
        f"{len(traces)} walkers: tracks per walker median {med([len(t.tracks) for t in traces])}"
        f" (max {max((len(t.tracks) for t in traces), default=0)}), faces embedded per walker "
        f"median {med([t.embedded for t in traces])}, total {sum(t.embedded for t in traces)}; "
        f"strangers whose template reached the threshold {threshold:.4f} against some entry: "
        f"{sum(t.other >= threshold for t in strangers)} of {len(strangers)} "
        f"(quality-weighted mean: {sum(t.other_weighted >= threshold for t in strangers)}; "
        f"the threshold for its coherence: {sum(t.other_gap >= 0 for t in strangers)}); "
        f"listed walkers whose template reached it against their own entry: "
        f"{sum(t.own >= threshold for t in listed)} of {len(listed)} (quality-weighted: "
        f"{sum(t.own_weighted >= threshold for t in listed)}; the threshold for its coherence: "
        f"{sum(t.gap >= 0 for t in listed)}; the weighted template is scored on "
        "the faces the plain rule embedded, which stop at its alert).",
        "",
        "| listed walker | tracks | faces tracked | embedded | best own template score "
        "| best other entry | own, weighted | other, weighted | threshold "
        "| best own score - its threshold | at coherence | that threshold "
        "| alerted (in process) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in sorted(listed, key=lambda t: t.gap):
        lines.append(
            f"| {t.walker.person.ref} | {len(t.tracks)} | {t.detected} | {t.embedded} "
            f"| {t.own:.3f} | {t.other:.3f} | {t.own_weighted:.3f} | {t.other_weighted:.3f} "
            f"| {threshold:.4f} | {t.gap:+.3f} | {t.gap_coherence:.3f} | {t.gap_threshold:.4f} "
            f"| {'yes' if t.alerted else 'no'} |"
        )
    return lines
