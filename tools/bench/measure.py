"""Every measurement of ``make bench``, in one run, as the document ``bench.json`` holds: the
summary figures at the top level, and under ``measured`` every sample and row the report
(:mod:`tools.bench.report`) is rendered from."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np

from agent.models import load_profile
from tools.bench import publishing
from tools.bench.concourse_fps import measure_concourse
from tools.bench.detection import detection_summary, measure_detection
from tools.bench.footprint import agent_footprint
from tools.bench.haar import haar_baseline
from tools.bench.matching import matching_scaling
from tools.bench.runtime_compare import compare_runtimes, runtime_summary
from tools.bench.scenes import MEDIA, concourse, faces
from tools.bench.stages import stage_latencies
from tools.bench.throughput import clip_throughput, throughput
from tools.bench.timing import percentiles
from tools.broker import mosquitto_binary
from tools.report import cpu_seconds


def measure(
    *, quick: bool, profile: str, agent_seconds: float, other_python: str | None
) -> dict[str, Any]:
    """The whole bench (``quick``: CI sizes). ``other_python``: an interpreter where
    tflite-runtime works, for its column."""
    began = time.monotonic()
    took: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        took[name] = time.monotonic() - since
        return time.monotonic()

    runs = 30 if quick else 200
    seconds = 0.5 if quick else 4.0
    vision = load_profile(profile)
    people = faces(8)
    frame720 = concourse(1280, 720, people[:1], [160])
    # Three people close enough for the default single-pass detector (see the fps table).
    near3 = concourse(1280, 720, people[:3], [160, 200, 240])
    t = time.monotonic()
    stages = stage_latencies(vision, runs, frame720)
    haar = haar_baseline(frame720, runs)
    t = lap("per-stage latency", t)
    broker = mosquitto_binary()
    pub = publishing.measure(vision, near3, runs, vision.threshold or 0.5) if broker else None
    t = lap("publishing, frame to event", t)
    runtimes = compare_runtimes(max(runs // 2, 10), other_python)
    t = lap("TFLite runtimes", t)
    flows = throughput(vision, seconds, people, 3 if quick else 5)
    t = lap("throughput (synthetic)", t)
    clips = clip_throughput(vision, seconds, 12 if quick else None)
    t = lap("throughput (clips)", t)
    concourse_1080p = measure_concourse(quick)
    t = lap("1080p concourse, both profiles", t)
    detection = measure_detection(quick=quick)
    t = lap("detection", t)
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    match_rows, series = matching_scaling(sizes, vision.embedder.dim, runs)
    t = lap("matching", t)
    agent_seconds = 5.0 if quick else agent_seconds
    # A camera at 30 frames/s with the three people walking across: can the agent keep up?
    footprint = agent_footprint(agent_seconds, vision, near3, camera_fps=30.0, profile=profile)
    t = lap("agent footprint", t)
    took["total"] = time.monotonic() - began
    measured: dict[str, Any] = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "profile": profile,
        "quick": quick,
        "agent_seconds": agent_seconds,
        "stages": [asdict(s) for s in stages],
        "haar": asdict(haar) if haar else None,
        "publishing": asdict(pub) if pub else None,
        "poll_seconds": publishing.POLL_SECONDS,
        "runtimes": runtimes,
        "throughput": flows,
        "media": str(MEDIA),
        "clips": clips,
        "concourse": concourse_1080p,
        "detection": detection,
        "matching": {"rows": match_rows, "series": series},
    }
    detect = float(np.median(stages[1].samples) * 1000)
    haar_ms = float(np.median(haar.samples)) * 1000 if haar else None
    fps = {f"tiles={r[2]}": (float(r[3]), r[4]) for r in flows if r[:2] == ["1280x720", "3"]}
    return {
        "detect_720p_ms": detect,
        "haar_720p_ms": haar_ms,
        "haar_over_detect": haar_ms / detect if haar_ms else None,
        "fps_720p_3_faces": fps,
        "clips": {f"{r[0]} tiles={r[2]}": {"fps": float(r[3]), "faces": int(r[4])} for r in clips}
        if clips
        else None,
        "concourse_1080p_fps": {
            name: {"fps": p["fps"], "per_cpu_s": p["fps_per_cpu_s"], "target": p["target_fps"]}
            for name, p in concourse_1080p.get("profiles", {}).items()
        },
        "detection": detection_summary(detection),
        "publish_ms": percentiles(pub.publish.acked) if pub else None,
        "publish_received_ms": percentiles(pub.publish.received) if pub else None,
        "publish_nodelay_ms": percentiles(pub.publish_nodelay.acked) if pub else None,
        "frame_to_event_acked_ms": percentiles(pub.frame_to_event.acked) if pub else None,
        "frame_to_event_received_ms": percentiles(pub.frame_to_event.received) if pub else None,
        "runtimes": runtime_summary(runtimes),
        "match_ms": {f"{n}": ms for n, ms in series["float32"]},
        "agent": footprint,
        "peak_rss_bench_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": took,
        "cpu_seconds": cpu_seconds(),
        "load_average": os.getloadavg(),
        "measured": measured,
    }


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
