"""``make bench``: speed, memory and scaling, measured the way a deployment needs to know them.

Writes ``reports/bench.md`` and PNG plots, prints a summary. Not a test: nothing here asserts
a time. Every figure comes from this run on this machine, next to a baseline measured in the
same run (OpenCV's Haar cascade), because absolute times on a shared 2-core VM say little.

    python -m tests.bench.bench [--quick] [--out reports] [--agent-seconds 60]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy
from agent.core.tracker import Tracker
from agent.io.sources import Frame
from agent.models import Vision, load_profile
from agent.pipeline import FramePipeline
from protocol import hpke
from protocol.entries import Entry
from protocol.event import MatchEvent, new_event_id, seal_probe, sign_event
from tests.bench import publishing, runtimes
from tools.broker import client

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
LFW = SHARED / "datasets" / "lfw"
MEDIA = SHARED / "media"
U8 = npt.NDArray[np.uint8]


@dataclass
class Timing:
    name: str
    samples: list[float]

    def row(self, baseline: float | None = None) -> list[str]:
        ms = np.array(self.samples) * 1000
        ratio = f"{baseline / float(np.median(ms)):.2f}x" if baseline else ""
        return [
            self.name,
            str(len(ms)),
            f"{np.median(ms):.2f}",
            f"{np.percentile(ms, 90):.2f}",
            f"{np.percentile(ms, 99):.2f}",
            ratio,
        ]


def timed(name: str, runs: int, fn: Callable[[], object], warmup: int = 3) -> Timing:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(name, samples)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def faces(count: int) -> list[U8]:
    """Real faces: LFW when ../shared is present, else the demo's pinned registry pictures."""
    if LFW.is_dir():
        people = sorted(p for p in LFW.iterdir() if p.is_dir())[: count * 3 : 3]
        files = [sorted(p.iterdir())[0] for p in people]
    else:
        from tools.demo import CACHE, fetch_assets

        files = sorted(fetch_assets(CACHE).values())
    files = [files[i % len(files)] for i in range(count)]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def concourse(width: int, height: int, people: list[U8], sizes: list[int]) -> U8:
    """A grey concourse with the given faces pasted at the given sizes, spread out."""
    ramp = np.linspace(60, 130, width, dtype=np.uint8)
    frame = np.repeat(np.stack([ramp, ramp, ramp + 8], axis=-1)[None], height, axis=0).copy()
    slots = max(len(people), 1)
    for i, (face, size) in enumerate(zip(people, sizes, strict=True)):
        # LFW crops are ~2.2x the face: scale so the face itself is about `size` pixels.
        side = int(size * 2.2)
        tile = np.asarray(Image.fromarray(face).resize((side, side)))
        x = int((i + 0.5) * width / slots - side / 2)
        y = int(height * (0.25 + 0.3 * (i % 2))) - side // 2
        x, y = max(0, min(x, width - side)), max(0, min(y, height - side))
        frame[y : y + side, x : x + side] = tile
    return frame


def stage_latencies(vision: Vision, runs: int, frame: U8) -> list[Timing]:
    from agent.vision.align import align
    from agent.vision.image import decode_image

    out = io.BytesIO()
    Image.fromarray(frame).save(out, "JPEG", quality=90)
    jpeg = out.getvalue()
    detections = vision.detector.detect(frame)
    if not detections:
        raise SystemExit("bench: no face found in the stage-latency frame")
    det = detections[0]
    template = np.array(
        [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ]
    )
    rng = np.random.default_rng(0)
    dim = vision.embedder.dim
    entries = [
        Entry(f"S{i}", "wanted", None, rng.normal(size=(1, dim)).astype(np.float32))
        for i in range(10_000)
    ]
    matcher = Matcher(entries, 0.5)
    probe = vision.embedder.embed(frame, det)
    key = hpke.generate_key(hpke.DEFAULT_SUITE)
    from cryptography.hazmat.primitives.asymmetric import ed25519

    signing = ed25519.Ed25519PrivateKey.generate()
    crop = frame[int(det.box[1]) : int(det.box[3]), int(det.box[0]) : int(det.box[2])]

    def seal_and_sign() -> None:
        out = io.BytesIO()
        Image.fromarray(crop).save(out, "JPEG", quality=85)
        event_id = new_event_id()
        sealed = seal_probe(out.getvalue(), key.public_key(), event_id=event_id, device_id="cam-01")
        sign_event(
            MatchEvent(
                event_id,
                "cam-01",
                "kx",
                "d",
                1,
                "WL-1",
                "wanted",
                0.7,
                0.5,
                0.2,
                datetime.now(UTC),
                1,
                "0" * 64,
                hpke.DEFAULT_SUITE,
                sealed,
            ),
            signing,
        )

    return [
        timed("decode 720p JPEG", runs, lambda: decode_image(jpeg)),
        timed("detect (720p, 1 pass)", runs, lambda: vision.detector.detect(frame)),
        timed(
            "detect (720p, tiles=3)",
            max(runs // 4, 20),
            lambda: vision.detector.detect(frame, tiles=3),
        ),
        timed("align (112x112)", runs, lambda: align(frame, det.keypoints, template, 112, 112)),
        timed("embed (profile)", runs, lambda: vision.embedder.embed(frame, det)),
        timed("match (10k entries)", runs, lambda: matcher.match(probe)),
        timed("JPEG + seal probe + sign event", runs, seal_and_sign),
    ]


def runtime_comparison(runs: int, other_python: str | None) -> tuple[list[str], dict[str, Any]]:
    """Every model under each TFLite runtime that works here (report lines, summary).

    Each runtime is first probed in a subprocess (create an interpreter, run it once): with
    this venv's Python, and for tflite-runtime also with ``other_python`` when given. What
    failed, and how, goes into the report."""
    from agent.vision.errors import RuntimeUnavailableError
    from agent.vision.runtime import select_runtime

    try:
        pipeline_runtime = select_runtime()[0]
    except RuntimeUnavailableError as exc:
        pipeline_runtime = f"none ({exc})"
    measured: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for runtime in runtimes.RUNTIMES:
        candidates = [sys.executable]
        if runtime == "tflite-runtime" and other_python:
            candidates.append(other_python)
        for python in candidates:
            probe = runtimes.run_in(python, runtime, 1, [1], probe=True)
            if "error" in probe:
                failures.append(f"`{runtime}` under `{python}`: {probe['error']}")
                continue
            result = runtimes.run_in(python, runtime, runs, [1, 2, 4], probe=False)
            if "error" in result:
                failures.append(f"`{runtime}` under `{python}`: {result['error']}")
                continue
            measured[runtime] = result
            break
    lines = [
        f"The device pipeline above uses **{pipeline_runtime}** (the first that "
        "`agent.vision.runtime.select_runtime` finds). Measured here, each in its own process:",
        "",
    ]
    lines += [
        f"- **{r}** {m['version']} (numpy {m['numpy']}, `{m['python']}`)"
        for r, m in measured.items()
    ]
    if failures:
        lines += ["", "Not measured (detected now, in a subprocess that creates an interpreter):"]
        lines += [f"- {f}" for f in failures]
    measured_elsewhere = measured.get("tflite-runtime", {}).get("python") not in (
        None,
        sys.executable,
    )
    if measured_elsewhere and other_python:
        # Show, not tell, why it needed its own venv: its package under this venv's numpy.
        here = runtimes.alongside(other_python)
        lines += [
            "",
            "tflite-runtime was measured in its own venv. Its package loaded by this venv's "
            "interpreter and numpy (what installing it here would give): "
            + (f"`{here['error']}`." if "error" in here else "it works here too."),
        ]
    if "tflite-runtime" not in measured:
        import numpy

        lines += [
            "",
            "**So the tflite-runtime column is absent.** Its last release, tflite-runtime "
            "2.14.0 (cp311 x86_64/aarch64 wheels exist), was built against numpy 1.x: under "
            f"numpy 2 (this venv has numpy {numpy.__version__}) it imports, then fails with "
            "`_ARRAY_API not found` when the first interpreter is created, so it cannot live "
            "in the project's venv beside ai-edge-litert. To fill the column, give the bench "
            "a side venv: `python3.11 -m venv /tmp/tflrt && /tmp/tflrt/bin/pip install "
            "'numpy<2' tflite-runtime` then `make bench BENCH_ARGS='--tflite-runtime-python "
            "/tmp/tflrt/bin/python'`.",
        ]
    names = sorted({n for m in measured.values() for n in m["models"]})
    columns = [r for r in runtimes.RUNTIMES if r in measured]
    header = ["model", "variant", "threads"] + [f"{r} median (p90) ms" for r in columns]
    if len(columns) == 2:
        header.append(f"{columns[1]} / {columns[0]}")
    rows = []
    summary: dict[str, Any] = {"pipeline": pipeline_runtime, "failures": failures}
    for name in names:
        for threads in ("1", "2", "4"):
            row, medians = [], []
            for runtime in columns:
                model = measured[runtime]["models"].get(name, {})
                samples = model.get("ms", {}).get(threads)
                if samples:
                    medians.append(float(np.median(samples)))
                    short = f", {len(samples)} runs" if len(samples) < runs else ""
                    row.append(f"{medians[-1]:.2f} ({np.percentile(samples, 90):.2f}{short})")
                    summary.setdefault(runtime, {})[f"{name} t{threads}"] = medians[-1]
                else:
                    row.append(model.get("error", "-"))
            spec = next(m["models"][name] for m in measured.values() if name in m["models"])
            ratio = [f"{medians[1] / medians[0]:.2f}x"] if len(medians) == 2 else []
            pad = [""] if len(columns) == 2 and not ratio else []
            rows.append([name, spec["variant"], threads, *row, *ratio, *pad])
    lines += [
        "",
        table(header, rows),
        "",
        f"invoke() only, on random inputs of each model's own shape and type, {runs} runs "
        "after 3 warm-up runs (fewer where 10 s ran out: the count is given). This machine has "
        f"{os.cpu_count()} CPUs, so threads=4 oversubscribes it.",
    ]
    return lines, summary


def haar_cascade() -> Any | None:
    """OpenCV's frontal-face Haar cascade (the baseline), or None without OpenCV."""
    try:
        import cv2
    except ImportError:
        return None
    cascades = Path(cv2.__file__).parent / "data"
    return cv2.CascadeClassifier(str(cascades / "haarcascade_frontalface_default.xml"))


def haar_detect(cascade: Any, frame: U8) -> int:
    """Faces the baseline finds in one RGB frame (grey conversion included, as a user would)."""
    import cv2

    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return len(cascade.detectMultiScale(grey, 1.1, 5, minSize=(30, 30)))


def haar_baseline(frame: U8, runs: int) -> Timing | None:
    cascade = haar_cascade()
    if cascade is None:
        return None
    return timed("baseline: OpenCV Haar detect (720p)", runs, partial(haar_detect, cascade, frame))


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


def matching_scaling(
    sizes: list[int], dim: int, runs: int
) -> tuple[list[list[str]], dict[str, list[tuple[int, float]]]]:
    rng = np.random.default_rng(1)
    rows: list[list[str]] = []
    series: dict[str, list[tuple[int, float]]] = {}
    for storage in ("float32", "float16", "int8"):
        series[storage] = []
        for n in sizes:
            entries = [
                Entry(f"S{i}", "w", None, rng.normal(size=(1, dim)).astype(np.float32))
                for i in range(n)
            ]
            matcher = Matcher(entries, 0.5, storage)
            del entries
            probe = rng.normal(size=dim).astype(np.float32)
            timing = timed(
                "",
                max(5, runs // max(1, n // 10_000)),
                partial(matcher.match, probe),
                warmup=1,
            )
            ms = float(np.median(timing.samples) * 1000)
            series[storage].append((n, ms))
            rows.append(
                [
                    storage,
                    f"{n:,}",
                    f"{ms:.3f}",
                    f"{matcher.nbytes / n:.0f}",
                    f"{matcher.nbytes / 2**20:.1f}",
                ]
            )
    return rows, series


def agent_footprint(seconds: float, vision: Vision, frame: U8) -> dict[str, Any] | None:
    """Peak RSS and CPU% of a real ``lfr-agent run`` (real models, real TLS broker), with a
    watchlist holding the people in ``frame`` pushed as ops push one, so the agent detects,
    embeds, matches, alerts and publishes, not idles. None without mosquitto."""
    if publishing.mosquitto_binary() is None:
        return None
    with publishing.tls_fleet() as (index, _broker), tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "frames"
        clip.mkdir()
        for i in range(10):
            Image.fromarray(frame).save(clip / f"{i:03d}.png")
        embeddings = [vision.embedder.embed(frame, d) for d in vision.detector.detect(frame)]
        device = index["devices"][0]
        config = Path(device["config"])
        config.write_text(config.read_text() + "\n[status]\ninterval_seconds = 5\n")
        listener = publishing.Listener(index)
        listener.link.subscribe([(f"lfr/v1/{device['site']}/{device['id']}/status", 1)])
        ops = client(index, "ops")
        topic = f"lfr/v1/{device['site']}/{device['id']}/watchlist"
        bundle = publishing.seal_watchlist(index, vision, embeddings)
        if ops.wait_ack(ops.publish(topic, bundle, qos=1, retain=True)) not in (0, 16):
            raise RuntimeError("the broker refused the bench's watchlist")
        ops.close()
        agent = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "lfr-agent"),
                "run",
                "--config",
                str(config),
                "--source",
                str(clip),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            ticks = os.sysconf("SC_CLK_TCK")
            time.sleep(5)  # models loaded, watchlist installed
            start = time.monotonic()
            cpu0 = _cpu(agent.pid, ticks)
            status0 = listener.latest_status()
            time.sleep(seconds)
            cpu = (_cpu(agent.pid, ticks) - cpu0) / (time.monotonic() - start) * 100
            rss = _status(agent.pid, "VmHWM")
            time.sleep(0.2)
            status1 = listener.latest_status()
        finally:
            agent.terminate()
            agent.wait(10)
            listener.close()
    result: dict[str, Any] = {
        "peak_rss_mb": rss / 1024,
        "cpu_percent": cpu,
        "faces_in_frame": len(embeddings),
    }
    if status0 and status1:
        frames = status1["frames"] - status0["frames"]
        result["frames_per_second"] = frames / max(status1["uptime_s"] - status0["uptime_s"], 1)
        for key in ("frames", "frames_dropped", "faces_detected", "matches", "events_published"):
            result[key] = status1.get(key)
        result["watchlist"] = status1.get("watchlist")
    return result


def _cpu(pid: int, ticks: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def _status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return 0.0


def plot_matching(series: dict[str, list[tuple[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for storage, points in series.items():
        ax.loglog([n for n, _ in points], [ms for _, ms in points], marker="o", label=storage)
    ax.set_xlabel("watchlist entries")
    ax.set_ylabel("ms per probe (median)")
    ax.set_title("Matching one probe: time vs watchlist size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    name = next(
        (
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    return f"{name}, {os.cpu_count()} CPUs"


def plot_latency(results: publishing.Results, path: Path) -> None:
    """Empirical CDFs of the publishing and frame-to-event latencies (log time axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {
        "outbox put (SQLite, fsync)": results.publish.stored,
        "put -> PUBACK": results.publish.acked,
        "put -> control room received": results.publish.received,
        "put -> PUBACK, TCP_NODELAY (diagnostic)": results.publish_nodelay.acked,
        "put -> received, TCP_NODELAY (diagnostic)": results.publish_nodelay.received,
        "frame -> pipeline done (3 faces)": results.frame_to_event.process,
        "frame -> all events received": results.frame_to_event.received,
    }
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    for label, samples in curves.items():
        ms = np.sort(np.array(samples) * 1000)
        style = "--" if "NODELAY" in label else "-"
        ax.step(ms, np.arange(1, len(ms) + 1) / len(ms), style, where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log)")
    ax.set_ylabel("fraction of samples at or below")
    ax.set_title("Publishing and frame-to-event latency (real TLS Mosquitto)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--profile", default="accurate")
    parser.add_argument("--agent-seconds", type=float, default=60.0)
    parser.add_argument(
        "--tflite-runtime-python",
        default=os.environ.get("LFR_BENCH_TFLITE_RUNTIME_PYTHON"),
        metavar="PYTHON",
        help="an interpreter where tflite-runtime works (numpy<2), for its column",
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    took: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        took[name] = time.monotonic() - since
        return time.monotonic()

    runs = 30 if args.quick else 200
    seconds = 0.5 if args.quick else 4.0
    args.out.mkdir(parents=True, exist_ok=True)
    vision = load_profile(args.profile)
    people = faces(8)
    frame720 = concourse(1280, 720, people[:1], [160])
    # Three people close enough for the default single-pass detector (see the fps table).
    near3 = concourse(1280, 720, people[:3], [160, 200, 240])
    t = time.monotonic()
    stages = stage_latencies(vision, runs, frame720)
    haar = haar_baseline(frame720, runs)
    t = lap("per-stage latency", t)
    broker = publishing.mosquitto_binary()
    pub = publishing.measure(vision, near3, runs, vision.threshold or 0.5) if broker else None
    t = lap("publishing, frame to event", t)
    runtime_lines, runtime_summary = runtime_comparison(
        max(runs // 2, 10), args.tflite_runtime_python
    )
    t = lap("TFLite runtimes", t)
    flows = throughput(vision, seconds, people, 3 if args.quick else 5)
    t = lap("throughput (synthetic)", t)
    clips = clip_throughput(vision, seconds, 12 if args.quick else None)
    t = lap("throughput (clips)", t)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    match_rows, series = matching_scaling(sizes, vision.embedder.dim, runs)
    plot_matching(series, args.out / "bench_matching.png")
    t = lap("matching", t)
    agent_seconds = 5.0 if args.quick else args.agent_seconds
    footprint = agent_footprint(agent_seconds, vision, near3)
    t = lap("agent footprint", t)
    detect = float(np.median(stages[1].samples) * 1000)
    haar_ms = float(np.median(haar.samples)) * 1000 if haar else None
    header = ["stage", "runs", "median ms", "p90 ms", "p99 ms", "Haar / this"]
    stage_rows = [t.row(haar_ms if "detect" in t.name else None) for t in stages]
    if pub:
        stage_rows += [
            Timing("publish: outbox put (SQLite WAL, fsync)", pub.publish.stored).row(),
            Timing("publish: put -> PUBACK -> outbox row deleted", pub.publish.acked).row(),
            Timing("publish: put -> received by the control room", pub.publish.received).row(),
        ]
    if haar:
        stage_rows.append(haar.row())
    no_broker = (
        "mosquitto is not installed (looked for `mosquitto` on PATH and /usr/sbin/mosquitto; "
        "`make install-system` installs it): the publishing and frame-to-event rows and the "
        "agent-process measurement are skipped."
    )
    report = [
        "# lfr-edge benchmark",
        "",
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')} on **{cpu_name()}** "
        f"({platform.machine()}), Python {platform.python_version()}, profile "
        f"`{args.profile}`, TFLite runtime of the pipeline: **{runtime_summary['pipeline']}** "
        "(the tflite-runtime comparison is below). "
        f"{'Quick (CI) sizes.' if args.quick else ''}",
        f"Load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(other work shares this machine: read the ratios to the Haar baseline, measured in "
        "the same run, rather than the absolute times).",
        "A Raspberry Pi 4/5 is several times slower per core than this machine; run the same "
        "bench there with `make bench` (or `.venv/bin/python -m tests.bench.bench`).",
        "",
        "## Per-stage latency",
        "",
        table(header, stage_rows),
        "",
        "Stages on a 720p frame with one 160 px face; `embed` is the whole profile (three "
        "models, each on the face and its mirror image). Publishing: one signed event "
        f"({pub.facts['event_bytes']:,} bytes with its sealed probe) at a time through the "
        "agent's Outbox, Publisher and MqttLink to Mosquitto on 127.0.0.1 (TLS, client "
        f"certificates, QoS 1); outbox on {pub.facts['outbox']}. The bench looks for the "
        f"PUBACK every {publishing.POLL_SECONDS * 1000:.1f} ms; the agent looks once per loop "
        "turn (after each frame), so on the device the row leaves the outbox up to one frame "
        "later; delivery to the control room does not wait for that."
        if pub
        else no_broker,
        "",
    ]
    if pub:
        nd = pub.publish_nodelay
        report += [
            "### Diagnostic: the same with TCP_NODELAY",
            "",
            table(
                header[:5],
                [
                    Timing("put -> PUBACK -> outbox row deleted", nd.acked).row()[:5],
                    Timing("put -> received by the control room", nd.received).row()[:5],
                ],
            ),
            "",
            "Not what the agent does today: here the device's socket has TCP_NODELAY and the "
            "broker runs with `set_tcp_nodelay true`. paho-mqtt does not set TCP_NODELAY and "
            "Mosquitto's default is off, so an event of tens of kB waits for Nagle's algorithm "
            "and the peer's delayed ACK (about 40 ms on Linux) once on the way to the broker "
            "and once on the way to the subscriber. Compare the rows above.",
            "",
            "## Frame to event",
            "",
            table(
                header[:5],
                [
                    Timing(
                        "pipeline: detect, quality, embed, match", pub.frame_to_event.process
                    ).row()[:5],
                    Timing("+ sign, seal probe, outbox put", pub.frame_to_event.stored).row()[:5],
                    Timing("+ publish, all PUBACKed", pub.frame_to_event.acked).row()[:5],
                    Timing("frame -> all events received", pub.frame_to_event.received).row()[:5],
                ],
            ),
            "",
            f"A 720p frame with {pub.facts['faces']} faces (160-240 px) handed to the "
            f"FramePipeline (single pass), all {pub.frame_to_event.events_per_sample} of them "
            f"on a watchlist of {pub.facts['watchlist']:,} sealed to the device and "
            "installed through the agent's WatchlistStore; each time from the frame to the last "
            "of its events. The tracker runs with window 0 here: in the field a matched face "
            "alerts on the first frame after `matching.window_seconds` (default 1 s, which picks "
            "the best frame of the track), so add that wait to these times. Every one of the "
            f"{pub.facts['events_verified']} events the control-room client received was "
            "verified against the registry's device keys.",
            "",
            "![latency](bench_latency.png)",
            "",
        ]
        plot_latency(pub, args.out / "bench_latency.png")
    report += [
        "## TFLite models alone: ai-edge-litert vs tflite-runtime, threads 1/2/4",
        "",
        *runtime_lines,
        "",
        "## End to end: frames per second through detect, quality, embed, match, track",
        "",
        table(
            [
                "frame",
                "faces",
                "tiles",
                "frames/s",
                "faces found",
                "Haar frames/s",
                "Haar found",
                "frames/s ÷ Haar",
            ],
            flows,
        ),
        "",
        "Faces are LFW photos pasted on a grey concourse at 48-120 px. `tiles=3` is the "
        "small-face mode (the frame is also searched in a 3x3 grid of overlapping squares). "
        "The single pass (`tiles=1`, BlazeFace short-range on the whole frame scaled to "
        "128x128) does not see faces this small, so its rows measure detection only: read "
        "`faces found` next to `frames/s`. Haar is the baseline in the same run: OpenCV's "
        "cascade, detection only, no embedding.",
        "",
        "## Real clips (../shared/media)",
        "",
    ]
    if clips is None:
        report.append(f"Skipped: {MEDIA} is absent (a fresh clone has no ../shared).")
    else:
        report += [
            table(
                [
                    "clip",
                    "size",
                    "tiles",
                    "frames/s",
                    "faces found",
                    "frames with a face",
                    "faces embedded",
                    "tracks",
                    "Haar frames/s",
                    "Haar found",
                ],
                clips,
            ),
            "",
            ("Quick run: the first 12 frames of each clip. " if args.quick else "")
            + "Intel IoT devkit sample videos, CC-BY 4.0 (read in place, frame by frame, with "
            "the agent's own GIF source). Every frame goes through the full pipeline against a "
            "watchlist of 1,000 random identities (so every face is embedded, matched and "
            "discarded); `faces found` counts detections over all frames, `faces embedded` "
            "those that passed the quality gate, `tracks` the people the tracker followed.",
        ]
    report += [
        "",
        "## Matching one probe against the watchlist",
        "",
        table(["storage", "entries", "ms per probe", "bytes/entry", "MiB"], match_rows),
        "",
        "![matching](bench_matching.png)",
        "",
        "## The agent as a process",
        "",
    ]
    if footprint:
        report.append(
            f"`lfr-agent run` on a looping 720p clip of {footprint['faces_in_frame']} faces "
            f"(the frame-to-event frame, paced at 10 frames/s) with a watchlist of those "
            f"people pushed by ops (status: {footprint.get('watchlist')}), for "
            f"{agent_seconds:.0f} s: peak RSS **{footprint['peak_rss_mb']:.0f} MiB**, CPU "
            f"**{footprint['cpu_percent']:.0f}%** (100% = one core), "
            f"{footprint.get('frames_per_second', float('nan')):.1f} frames/s processed "
            f"({footprint.get('frames_dropped')} dropped by the one-frame slot), "
            f"{footprint.get('faces_detected')} faces detected, "
            f"{footprint.get('events_published')} events published (one per person per "
            "cool-down)."
        )
    else:
        report.append(no_broker)
    took["total"] = time.monotonic() - began
    cpu = cpu_seconds()
    report += [
        "",
        "## This run",
        "",
        table(["section", "wall-clock s"], [[k, f"{v:.0f}"] for k, v in took.items()]),
        "",
        f"CPU time of the bench and its children: {cpu:.0f} s, i.e. at least "
        f"{cpu / (os.cpu_count() or 1):.0f} s of wall-clock on an otherwise idle "
        f"{os.cpu_count()}-CPU machine; load average at the end "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        "",
    ]
    (args.out / "bench.md").write_text("\n".join(report))
    fps = {f"tiles={r[2]}": (float(r[3]), r[4]) for r in flows if r[:2] == ["1280x720", "3"]}
    summary = {
        "detect_720p_ms": detect,
        "haar_720p_ms": haar_ms,
        "haar_over_detect": haar_ms / detect if haar_ms else None,
        "fps_720p_3_faces": fps,
        "clips": {f"{r[0]} tiles={r[2]}": {"fps": float(r[3]), "faces": int(r[4])} for r in clips}
        if clips
        else None,
        "publish_ms": _percentiles(pub.publish.acked) if pub else None,
        "publish_received_ms": _percentiles(pub.publish.received) if pub else None,
        "publish_nodelay_ms": _percentiles(pub.publish_nodelay.acked) if pub else None,
        "frame_to_event_acked_ms": _percentiles(pub.frame_to_event.acked) if pub else None,
        "frame_to_event_received_ms": _percentiles(pub.frame_to_event.received) if pub else None,
        "runtimes": runtime_summary,
        "match_ms": {f"{n}": ms for n, ms in series["float32"]},
        "agent": footprint,
        "peak_rss_bench_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": took,
        "cpu_seconds": cpu,
        "load_average": os.getloadavg(),
    }
    (args.out / "bench.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"report: {args.out / 'bench.md'}")
    return 0


def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (workers, the agent)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "n": len(ms)}


if __name__ == "__main__":
    sys.exit(main())
