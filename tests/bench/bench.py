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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy
from agent.core.tracker import Tracker
from agent.models import Vision, load_profile
from agent.pipeline import FramePipeline
from protocol import hpke
from protocol.entries import Entry
from protocol.event import MatchEvent, new_event_id, seal_probe, sign_event

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
LFW = SHARED / "datasets" / "lfw"
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
        from central.demo import CACHE, fetch_assets

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


def model_latencies(runs: int) -> list[Timing]:
    from agent.vision.manifest import load_manifest
    from agent.vision.runtime import TFLiteModel

    manifest = load_manifest()
    out = []
    for name, spec in manifest.models.items():
        if spec.role != "embedder":
            continue
        for threads in (1, 2, 4):
            model = TFLiteModel.from_manifest(manifest, name, threads)
            x = np.random.default_rng(0).random((1, *spec.input_shape[1:]), dtype=np.float32)
            out.append(timed(f"{name} threads={threads}", runs, partial(model.run, x)))
    return out


def haar_baseline(frame: U8, runs: int) -> Timing | None:
    try:
        import cv2
    except ImportError:
        return None
    cascades = Path(cv2.__file__).parent / "data"
    cascade = cv2.CascadeClassifier(str(cascades / "haarcascade_frontalface_default.xml"))
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return timed(
        "baseline: OpenCV Haar detect (720p)",
        runs,
        lambda: cascade.detectMultiScale(grey, 1.1, 5, minSize=(30, 30)),
    )


def throughput(vision: Vision, seconds: float, people: list[U8]) -> list[list[str]]:
    rows = []
    for width, height in ((1280, 720), (1920, 1080)):
        for count in (0, 1, 3, 8):
            sizes = [48 + 24 * (i % 4) for i in range(count)]
            frame = concourse(width, height, people[:count], sizes)
            embeds = [vision.embedder.embed(frame, d) for d in vision.detector.detect(frame, 3)]
            entries = [Entry(f"S{i}", "wanted", None, e[None, :]) for i, e in enumerate(embeds)]
            matcher = Matcher(entries, 0.5) if entries else None
            for tiles in (1, 3):
                pipeline = FramePipeline(
                    vision.detector, vision.embedder, QualityPolicy(), Tracker(), tiles=tiles
                )
                frames, detected, start = 0, 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    pipeline.process(
                        frame,
                        matcher
                        or Matcher(
                            [Entry("X", "x", None, np.ones((1, vision.embedder.dim), np.float32))],
                            0.99,
                        ),
                        datetime.now(UTC),
                    )
                    frames += 1
                detected = len(vision.detector.detect(frame, tiles=tiles))
                fps = frames / (time.perf_counter() - start)
                rows.append(
                    [
                        f"{width}x{height}",
                        str(count),
                        str(tiles),
                        f"{fps:.2f}",
                        f"{detected}/{count}",
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


def agent_footprint(seconds: float, people: list[U8]) -> dict[str, float] | None:
    """Peak RSS and CPU% of a real `lfr-agent run` (real models, real TLS broker)."""
    import shutil

    broker = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(broker).exists():
        return None
    from provisioning.quickstart import quickstart

    with tempfile.TemporaryDirectory() as tmp:
        index = quickstart(Path(tmp) / "fleet", 1, datetime.now(UTC))
        clip = Path(tmp) / "frames"
        clip.mkdir()
        frame = concourse(1280, 720, people[:3], [64, 80, 96])
        for i in range(10):
            Image.fromarray(frame).save(clip / f"{i:03d}.png")
        config = Path(index["devices"][0]["config"])
        config.write_text(config.read_text() + "\n[matching]\nthreshold = 0.5\n")
        mosquitto = subprocess.Popen([broker, "-c", index["broker"]["config"]])
        time.sleep(0.5)
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
        ticks = os.sysconf("SC_CLK_TCK")
        time.sleep(3)  # models loaded
        start = time.monotonic()
        cpu0 = _cpu(agent.pid, ticks)
        time.sleep(seconds)
        cpu = (_cpu(agent.pid, ticks) - cpu0) / (time.monotonic() - start) * 100
        rss = _status(agent.pid, "VmHWM")
        agent.terminate()
        agent.wait(10)
        mosquitto.terminate()
        mosquitto.wait(10)
    return {"peak_rss_mb": rss / 1024, "cpu_percent": cpu}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--profile", default="accurate")
    parser.add_argument("--agent-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    runs = 30 if args.quick else 200
    args.out.mkdir(parents=True, exist_ok=True)
    vision = load_profile(args.profile)
    people = faces(8)
    frame720 = concourse(1280, 720, people[:1], [160])
    stages = stage_latencies(vision, runs, frame720)
    haar = haar_baseline(frame720, runs)
    models = model_latencies(max(runs // 2, 20))
    flows = throughput(vision, 0.5 if args.quick else 4.0, people)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    match_rows, series = matching_scaling(sizes, vision.embedder.dim, runs)
    plot_matching(series, args.out / "bench_matching.png")
    footprint = agent_footprint(5.0 if args.quick else args.agent_seconds, people)
    detect = float(np.median(stages[1].samples) * 1000)
    header = ["stage", "runs", "median ms", "p90 ms", "p99 ms", "Haar / this"]
    stage_rows = [
        t.row(float(np.median(haar.samples)) * 1000 if haar and "detect" in t.name else None)
        for t in stages
    ]
    if haar:
        stage_rows.append(haar.row())
    report = [
        "# lfr-edge benchmark",
        "",
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')} on **{cpu_name()}** "
        f"({platform.machine()}), Python {platform.python_version()}, profile "
        f"`{args.profile}`, TFLite runtime: ai-edge-litert (tflite-runtime is not installed "
        f"here, so it has no column). {'Quick (CI) sizes.' if args.quick else ''}",
        "A Raspberry Pi 4/5 is several times slower per core than this machine; run the same "
        "bench there with `make bench` (or `.venv/bin/python -m tests.bench.bench`).",
        "",
        "## Per-stage latency",
        "",
        table(header, stage_rows),
        "",
        "## Embedding models alone (one 112x112 face)",
        "",
        table(header[:5], [t.row()[:5] for t in models]),
        "",
        "## End to end: frames per second through detect, quality, embed, match, track",
        "",
        table(["frame", "faces", "tiles", "frames/s", "faces found"], flows),
        "",
        "Faces are LFW photos pasted on a grey concourse at 48-120 px. `tiles=3` is the "
        "small-face mode (the frame is also searched in a 3x3 grid of overlapping squares).",
        "",
        "## Matching one probe against the watchlist",
        "",
        table(["storage", "entries", "ms per probe", "bytes/entry", "MiB"], match_rows),
        "",
        "![matching](bench_matching.png)",
        "",
        "## The agent as a process",
        "",
        (
            f"`lfr-agent run` on a looping 720p clip with 3 faces, for "
            f"{5 if args.quick else args.agent_seconds:.0f} s: peak RSS "
            f"**{footprint['peak_rss_mb']:.0f} MiB**, CPU **{footprint['cpu_percent']:.0f}%** "
            "(100% = one core)."
            if footprint
            else "mosquitto is not installed: skipped."
        ),
        "",
    ]
    (args.out / "bench.md").write_text("\n".join(report))
    summary = {
        "detect_720p_ms": detect,
        "haar_720p_ms": float(np.median(haar.samples) * 1000) if haar else None,
        "fps_720p_3_faces": next(float(r[3]) for r in flows if r[:3] == ["1280x720", "3", "1"]),
        "match_ms": {f"{n}": ms for n, ms in series["float32"]},
        "agent": footprint,
        "peak_rss_bench_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    (args.out / "bench.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"report: {args.out / 'bench.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
