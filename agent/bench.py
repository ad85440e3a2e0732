"""``lfr-agent bench``: what this node can sustain, measured on the node in about a minute.

For every shipped profile: the time to align and embed one face, and frames/s through the
daemon's own per-frame work (:func:`agent.app.frame_pipeline`: the configured detector,
tracker, quality gate, embed schedule and decision rule, matching a watchlist of 1,000 random
identities that nobody matches, as at a station) on synthetic 720p and 1080p frames with 1, 3
and 10 drawn faces (:mod:`agent.bench_scene`; no file is read but the models). Each cell runs
from a fresh tracker, so it includes the first embeddings of every face while the templates
fill, then the re-embed schedule, as when people stand in view.

Also: frames per CPU-second (all threads of the process: how much of the board a frame costs),
whether the detector found every face, and the board's temperature and throttling where it
reports them (:mod:`agent.io.board`).

The conclusion (:func:`conclude`, documented in docs/operator-guide.md "Benchmarking a node"):
a profile is sustainable when, at the configured camera resolution (the nearer of 720p and
1080p), it runs at >= ``TARGET_FPS`` frames/s with 3 faces and finds all of them; the node
should run the most accurate sustainable profile at a camera frame rate no higher than the
measured 3-face figure (rounded down, at most 30).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from agent.config import AgentConfig
from agent.core.matcher import Matcher
from agent.io.board import Board
from agent.models import Vision
from protocol.entries import Entry

U8 = npt.NDArray[np.uint8]
Scenes = dict[tuple[int, int, int], list[U8]]

TARGET_FPS = 10.0  # a profile is sustainable at this rate with 3 faces
TARGET_FACES = 3
MAX_CAMERA_FPS = 30
RESOLUTIONS = ((1280, 720), (1920, 1080))
FACES = (1, 3, 10)
PREFERENCE = ("accurate", "fast")  # most accurate first (models/README.md)
WATCHLIST_SIZE = 1000
BUSY_SHARE = 0.7  # below this many CPUs used on average, say the board was busy

# `vcgencmd get_throttled` bits (Raspberry Pi firmware documentation).
THROTTLE_BITS = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage has occurred",
    17: "ARM frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}
THROTTLE_NOW_MASK = 0xF


@dataclass(frozen=True)
class Budget:
    """How long each measurement runs."""

    cell_seconds: float  # per (profile, resolution, faces)
    min_frames: int
    face_runs: int  # embeddings timed per profile
    frames_drawn: int  # distinct synthetic frames per scene
    resolutions: tuple[tuple[int, int], ...] | None  # None: all of RESOLUTIONS
    smoke: bool = False  # --quick: figures too short to act on

    @staticmethod
    def full() -> Budget:
        return Budget(3.0, 5, 12, 12, None)

    @staticmethod
    def quick(config: AgentConfig) -> Budget:
        """A few seconds (tests, a first look): the configured resolution only, two frames."""
        return Budget(0.0, 2, 2, 2, (nearest_resolution(config),), smoke=True)


@dataclass(frozen=True)
class Cell:
    profile: str
    width: int
    height: int
    faces: int
    frames: int
    wall_s: float
    cpu_s: float
    found_min: int  # fewest faces the detector found in one frame
    embedded: int  # embeddings the schedule ran
    detector: str

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def fps_per_cpu_s(self) -> float:
        return self.frames / self.cpu_s if self.cpu_s > 0 else 0.0

    @property
    def all_found(self) -> bool:
        return self.found_min >= self.faces


@dataclass(frozen=True)
class FaceTime:
    profile: str
    per_face_ms: float | None  # wall, median; None: the detector found no face to embed
    runs: int
    cpu_ms: float | None = None  # process CPU per face (all threads): steadier on a busy board


@dataclass(frozen=True)
class Verdict:
    profile: str | None  # what to run; None: nothing sustains TARGET_FPS
    camera_fps: int  # frame rate to configure (0 with profile None)
    lines: tuple[str, ...]


@dataclass
class Report:
    started: str
    seconds: float
    config: str
    detector: str  # vision.detector (auto: each cell names the one that ran)
    threads: int
    camera: str
    board: Board
    temperature_end_c: float | None
    face_times: list[FaceTime] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    verdict: Verdict | None = None


def nearest_resolution(config: AgentConfig) -> tuple[int, int]:
    """Of the bench's resolutions, the one nearest the configured camera height."""
    return min(RESOLUTIONS, key=lambda r: abs(r[1] - config.camera.height))


def decode_throttled(bits: int) -> list[str]:
    """What the set bits of ``vcgencmd get_throttled`` mean (unknown bits by number)."""
    out = []
    for bit in range(32):
        if bits & (1 << bit):
            out.append(THROTTLE_BITS.get(bit, f"bit {bit}"))
    return out


def describe_throttling(bits: int | None) -> str:
    if bits is None:
        return "not reported (no vcgencmd)"
    if not bits:
        return "none (vcgencmd get_throttled = 0x0)"
    return f"{', '.join(decode_throttled(bits))} (0x{bits:x})"


def conclude(
    cells: Sequence[Cell], resolution: tuple[int, int], throttled: int | None = None
) -> Verdict:
    """The documented rule (module docstring) applied to the measured cells."""
    width, height = resolution
    lines = []
    sustainable: dict[str, int] = {}
    for profile in sorted({c.profile for c in cells}, key=_preference):
        at = {c.faces: c for c in cells if (c.profile, c.width, c.height) == (profile, *resolution)}
        three = at.get(TARGET_FACES)
        if three is None:
            continue
        ten = at.get(max(FACES))
        crowd = f"; {ten.fps:.1f} with {ten.faces}" if ten is not None else ""
        if not three.all_found:
            lines.append(
                f"{profile}: the detector found {three.found_min} of {TARGET_FACES} faces at "
                f"{width}x{height}; fix the detector setting before trusting the frame rate"
            )
        elif three.fps >= TARGET_FPS:
            rate = min(MAX_CAMERA_FPS, math.floor(three.fps))
            sustainable[profile] = rate
            lines.append(
                f"{profile}: sustainable at {width}x{height}, {three.fps:.1f} frames/s with "
                f"{TARGET_FACES} faces{crowd}"
            )
        else:
            lines.append(
                f"{profile}: NOT sustainable at {width}x{height}: {three.fps:.1f} frames/s with "
                f"{TARGET_FACES} faces (needs {TARGET_FPS:g}){crowd}"
            )
    if throttled is not None and throttled & THROTTLE_NOW_MASK:
        lines.append(
            "the board was throttling during the run (power supply or cooling): fix it and "
            "run the bench again, these figures are below what the board can do"
        )
    if not sustainable:
        lines.append(
            f"conclusion: no profile sustains {TARGET_FPS:g} frames/s with {TARGET_FACES} faces "
            f"at {width}x{height}; lower camera.width/height, or use a faster board"
        )
        return Verdict(None, 0, tuple(lines))
    best = min(sustainable, key=_preference)
    rate = sustainable[best]
    lines.append(
        f"conclusion: run profile {best!r} with the camera at {width}x{height}, at most "
        f"{rate} frames/s"
    )
    return Verdict(best, rate, tuple(lines))


def _preference(profile: str) -> int:
    return PREFERENCE.index(profile) if profile in PREFERENCE else len(PREFERENCE)


def render(report: Report) -> str:
    b = report.board
    temps = _temperature(b.temperature_c) + " -> " + _temperature(report.temperature_end_c)
    out = [
        f"lfr-agent bench: {b.model} ({b.machine}, {b.cores} cores), {report.config}",
        f"detector {report.detector}, threads {report.threads}, camera {report.camera}",
        f"CPU temperature {temps}; throttling: {describe_throttling(b.throttled)}",
        "",
        "per face (align + embed, median):",
    ]
    for ft in report.face_times:
        if ft.per_face_ms is None:
            out.append(f"  {ft.profile:<9} n/a (the detector found no face)")
            continue
        cpu = f", {ft.cpu_ms:.1f} ms CPU" if ft.cpu_ms is not None else ""
        out.append(f"  {ft.profile:<9} {ft.per_face_ms:7.1f} ms{cpu}  ({ft.runs} runs)")
    out += [
        "",
        f"frames/s through the pipeline (detect, track, quality, embed as scheduled, match "
        f"{WATCHLIST_SIZE:,} ids):",
        f"  {'profile':<9} {'frame':<10} {'faces':>5} {'found':>6} {'fps':>6} "
        f"{'fps/CPU-s':>9} {'embedded':>8}  detector",
    ]
    for c in report.cells:
        found = f"{c.found_min}/{c.faces}"
        out.append(
            f"  {c.profile:<9} {f'{c.width}x{c.height}':<10} {c.faces:>5} {found:>6} "
            f"{c.fps:>6.1f} {c.fps_per_cpu_s:>9.1f} {c.embedded:>8}  {c.detector}"
        )
    out.append("")
    share = cpu_share(report.cells)
    if share is not None:
        busy = (
            "; the board was busy with other work, so these fps are below an idle board's"
            " (fps/CPU-s is less affected)"
            if share < BUSY_SHARE
            else ""
        )
        out.append(f"the bench used {share:.2f} CPUs on average{busy}")
    if report.verdict is not None:
        out += list(report.verdict.lines)
    out.append(f"(bench took {report.seconds:.0f} s)")
    return "\n".join(out)


def cpu_share(cells: Sequence[Cell]) -> float | None:
    """CPU-seconds per wall second over the cells: about 1 or more on an idle board (TFLite
    runs ``threads`` threads), well below 1 when other processes take the cores."""
    wall = sum(c.wall_s for c in cells)
    return sum(c.cpu_s for c in cells) / wall if wall > 0 else None


def _temperature(value: float | None) -> str:
    return "not reported" if value is None else f"{value:.1f} °C"


def to_json(report: Report) -> str:
    data = asdict(report)
    data["cells"] = [
        {**asdict(c), "fps": c.fps, "fps_per_cpu_s": c.fps_per_cpu_s, "all_found": c.all_found}
        for c in report.cells
    ]
    board = data["board"]
    board["throttled_meaning"] = decode_throttled(b) if (b := report.board.throttled) else []
    return json.dumps(data, indent=2)


# ---- measuring (the pipeline, the models and the clock) ----

Progress = Callable[[str], None]


def run_bench(
    config: AgentConfig,
    budget: Budget,
    board: Board,
    read_temperature: Callable[[], float | None],
    progress: Progress = lambda _: None,
) -> Report:
    from agent.bench_scene import cycle
    from agent.models import load_profile
    from agent.vision.manifest import load_manifest

    began = time.monotonic()
    v = config.vision
    report = Report(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=0.0,
        config=str(config.path),
        detector=v.detector,
        threads=v.threads,
        camera=f"{config.camera.width}x{config.camera.height}",
        board=board,
        temperature_end_c=None,
    )
    resolutions = budget.resolutions or RESOLUTIONS
    scenes: Scenes = {
        (w, h, n): cycle(w, h, n, budget.frames_drawn) for w, h in resolutions for n in FACES
    }
    profiles = sorted(load_manifest(v.models_dir).profiles, key=_preference)
    for profile in profiles:
        progress(f"profile {profile}: loading")
        vision = load_profile(
            profile, v.models_dir, v.threads, detector=v.detector, min_face_px=v.min_face_px
        )
        report.face_times.append(_face_time(vision, scenes, budget.face_runs, profile))
        matcher = _nobody(vision.embedder.dim, vision.threshold)
        for (w, h, n), frames in scenes.items():
            progress(f"profile {profile}: {w}x{h}, {n} faces")
            report.cells.append(
                _cell(config, vision, matcher, frames, budget, profile=profile, faces=n)
            )
    report.temperature_end_c = read_temperature()
    report.verdict = conclude(report.cells, nearest_resolution(config), board.throttled)
    if budget.smoke:
        note = "--quick: two frames a cell, a smoke test; run without --quick before deciding"
        report.verdict = replace(report.verdict, lines=(*report.verdict.lines, note))
    report.seconds = time.monotonic() - began
    return report


def _nobody(dim: int, threshold: float | None) -> Matcher:
    """A watchlist of random identities: every face is embedded and matched, nobody alerts."""
    rng = np.random.default_rng(3)
    entries = [
        Entry(f"S{i}", "wanted", None, rng.normal(size=(1, dim)).astype(np.float32))
        for i in range(WATCHLIST_SIZE)
    ]
    return Matcher(entries, threshold or 0.5)


def _face_time(vision: Vision, scenes: Scenes, runs: int, profile: str) -> FaceTime:
    """Median time of the profile's embedder on faces the configured detector found."""
    key = min(k for k in scenes if k[2] == TARGET_FACES)
    frame = scenes[key][0]
    detections = list(vision.detector.detect(frame))
    if not detections:
        return FaceTime(profile, None, 0)
    vision.embedder.embed(frame, detections[0])  # warm-up: first invocations allocate
    samples = []
    cpu = time.process_time()
    for i in range(runs):
        det = detections[i % len(detections)]
        t = time.perf_counter()
        vision.embedder.embed(frame, det)
        samples.append(time.perf_counter() - t)
    cpu_ms = 1000 * (time.process_time() - cpu) / runs
    return FaceTime(profile, 1000 * statistics.median(samples), runs, cpu_ms)


def _cell(
    config: AgentConfig,
    vision: Vision,
    matcher: Matcher,
    frames: Sequence[U8],
    budget: Budget,
    *,
    profile: str,
    faces: int,
) -> Cell:
    from agent.app import frame_pipeline  # lazily: it brings the MQTT stack

    pipeline = frame_pipeline(config, vision)
    count, found_min = 0, faces * 10
    wall, cpu = time.perf_counter(), time.process_time()
    while count < budget.min_frames or time.perf_counter() - wall < budget.cell_seconds:
        frame = frames[count % len(frames)]
        before = pipeline.counters.faces_detected
        pipeline.process(frame, matcher, datetime.now(UTC))
        found_min = min(found_min, pipeline.counters.faces_detected - before)
        count += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    h, w = frames[0].shape[:2]
    return Cell(
        profile,
        int(w),
        int(h),
        faces,
        count,
        wall,
        cpu,
        found_min,
        pipeline.counters.faces_embedded,
        vision.detector.describe(),
    )
