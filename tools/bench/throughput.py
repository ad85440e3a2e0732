"""Frames per second through the whole pipeline (detect, quality, embed, match, track): on
synthetic concourse frames and on the real clips, next to the Haar baseline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np

from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy
from agent.core.tracker import Tracker
from agent.io.sources import Frame
from agent.models import Vision
from agent.pipeline import FramePipeline
from protocol.entries import Entry
from tools.bench.haar import haar_cascade, haar_detect
from tools.bench.scenes import MEDIA, U8, concourse
from tools.bench.timing import timed


def nobody(vision: Vision, count: int = 1000) -> Matcher:
    """A watchlist of random identities: every face is detected, embedded, matched against it
    and discarded, which is what happens to almost every face at a station."""
    rng = np.random.default_rng(3)
    entries = [
        Entry(f"S{i}", "wanted", None, rng.normal(size=(1, vision.embedder.dim)).astype(np.float32))
        for i in range(count)
    ]
    return Matcher(entries, vision.threshold or 0.5)


def throughput(vision: Vision, seconds: float, people: list[U8], haar_runs: int) -> list[list[str]]:
    rows = []
    cascade = haar_cascade()
    for width, height in ((1280, 720), (1920, 1080)):
        for count in (0, 1, 3, 8):
            sizes = [48 + 24 * (i % 4) for i in range(count)]
            frame = concourse(width, height, people[:count], sizes)
            embeds = [vision.embedder.embed(frame, d) for d in vision.detector.detect(frame, 3)]
            entries = [Entry(f"S{i}", "wanted", None, e[None, :]) for i, e in enumerate(embeds)]
            matcher = Matcher(entries, 0.5) if entries else nobody(vision)
            haar_fps, haar_found = float("nan"), "-"
            if cascade is not None:
                t = timed("", haar_runs, partial(haar_detect, cascade, frame), warmup=1)
                haar_fps = 1 / float(np.median(t.samples))
                haar_found = f"{haar_detect(cascade, frame)}/{count}"
            for tiles in (1, 3):
                pipeline = FramePipeline(
                    vision.detector, vision.embedder, QualityPolicy(), Tracker(), tiles=tiles
                )
                frames, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    pipeline.process(frame, matcher, datetime.now(UTC))
                    frames += 1
                fps = frames / (time.perf_counter() - start)
                detected = pipeline.counters.faces_detected // max(frames, 1)
                rows.append(
                    [
                        f"{width}x{height}",
                        str(count),
                        str(tiles),
                        f"{fps:.2f}",
                        f"{detected}/{count}",
                        f"{haar_fps:.2f}",
                        haar_found,
                        f"{fps / haar_fps:.2f}x" if cascade is not None else "-",
                    ]
                )
    return rows


def clip_pipeline(vision: Vision, tiles: int) -> FramePipeline:
    return FramePipeline(vision.detector, vision.embedder, QualityPolicy(), Tracker(), tiles=tiles)


def clip_times(frames: list[Frame]) -> Iterator[tuple[datetime, Frame]]:
    """Each frame with its time on the clip's own timeline (the tracker's clock)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for frame in frames:
        yield now, frame
        now += timedelta(seconds=frame.duration)


def clip_throughput(
    vision: Vision, seconds: float, max_frames: int | None = None
) -> list[list[str]] | None:
    """The real CC-BY clips in ../shared/media, in both modes, next to the Haar baseline
    (at most ``max_frames`` of each: quick runs). None when the folder is absent."""
    from agent.io.sources import open_source

    clips = sorted(MEDIA.glob("*.gif")) if MEDIA.is_dir() else []
    if not clips:
        return None
    cascade = haar_cascade()
    matcher = nobody(vision)
    rows = []
    for clip in clips:
        source = open_source(str(clip), loop=False)
        source.open()
        frames: list[Frame] = []
        while (frame := source.read()) is not None and len(frames) != max_frames:
            frames.append(frame)
        source.close()
        height, width = frames[0].image.shape[:2]
        clip_seconds = sum(f.duration for f in frames)
        haar_cells = ["-", "-"]
        if cascade is not None:
            start = time.perf_counter()
            found = sum(haar_detect(cascade, f.image) for f in frames)
            haar_fps = len(frames) / (time.perf_counter() - start)
            haar_cells = [f"{haar_fps:.1f}", str(found)]
        for tiles in (1, 3):
            # One pass for the counts (and warm-up), then whole passes for the time.
            pipeline = clip_pipeline(vision, tiles)
            with_face = 0
            for now, frame in clip_times(frames):
                before = pipeline.counters.faces_detected
                pipeline.process(frame.image, matcher, now)
                with_face += pipeline.counters.faces_detected > before
            counts, tracks = pipeline.counters, pipeline.tracker.stats.tracks_started
            pipeline, passes, start = clip_pipeline(vision, tiles), 0, time.perf_counter()
            while passes == 0 or time.perf_counter() - start < seconds:
                for now, frame in clip_times(frames):
                    pipeline.process(frame.image, matcher, now)
                passes += 1
            fps = len(frames) * passes / (time.perf_counter() - start)
            embedded = counts.faces_detected - sum(counts.rejected.values())
            rows.append(
                [
                    clip.stem,
                    f"{width}x{height}, {len(frames)} frames, {len(frames) / clip_seconds:.1f} fps",
                    str(tiles),
                    f"{fps:.1f}",
                    str(counts.faces_detected),
                    f"{with_face}/{len(frames)}",
                    str(embedded),
                    str(tracks),
                    *haar_cells,
                ]
            )
    return rows
