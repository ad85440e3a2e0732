"""The agent as a process: peak RSS and CPU of a real ``lfr-agent run`` doing real work."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from agent.models import Vision
from protocol.topics import DEFAULT_SHARE_GROUP, DeviceTopics, shared
from tools.bench import publishing
from tools.bench.scenes import U8
from tools.broker import client, mosquitto_binary, tls_fleet


def agent_footprint(
    seconds: float,
    vision: Vision,
    frame: U8,
    camera_fps: float | None = None,
    profile: str = "accurate",
    *,
    threads: int | None = None,
) -> dict[str, Any] | None:
    """Peak RSS and CPU% of a real ``lfr-agent run`` (real models, real TLS broker), with a
    watchlist holding the people in ``frame`` pushed as ops push one, so the agent detects,
    embeds, matches, alerts and publishes, not idles. None without mosquitto.

    ``camera_fps``: instead of the still frame at 10 frames/s, a video at that rate in which
    the people walk across the frame (2 s, looping seamlessly), like a camera the agent has to
    keep up with: frames it cannot process are dropped (needs OpenCV). ``profile``: the one
    ``vision`` was loaded with (the agent runs it too, or it refuses the watchlist).
    ``threads``: the agent's ``[vision] threads`` (its default when None)."""
    if mosquitto_binary() is None:
        return None
    with tls_fleet() as (index, _broker), tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "frames"
        if camera_fps is None:
            clip.mkdir()
            for i in range(10):
                Image.fromarray(frame).save(clip / f"{i:03d}.png")
        else:
            clip = _walking_video(Path(tmp) / "walk.mp4", frame, camera_fps)
        embeddings = [vision.embedder.embed(frame, d) for d in vision.detector.detect(frame)]
        device = index["devices"][0]
        config = Path(device["config"])
        extra = f'\n[status]\ninterval_seconds = 5\n\n[vision]\nprofile = "{profile}"\n'
        if threads is not None:
            extra += f"threads = {threads}\n"
        config.write_text(config.read_text() + extra)
        listener = publishing.Listener(index)
        topics = DeviceTopics(device["site"], device["id"])
        listener.link.subscribe([(shared(DEFAULT_SHARE_GROUP, topics.status), 1)])
        ops = client(index, "ops")
        topic = topics.watchlist
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
        result.update(_from_status(status0, status1))
    return result


def _from_status(status0: dict[str, Any], status1: dict[str, Any]) -> dict[str, Any]:
    """What the agent's own status says about the measured span."""
    result: dict[str, Any] = {}
    frames = status1["frames"] - status0["frames"]
    result["frames_per_second"] = frames / max(status1["uptime_s"] - status0["uptime_s"], 1)
    for key in ("frames", "frames_dropped", "faces_detected", "matches", "events_published"):
        result[key] = status1.get(key)
    result["watchlist"] = status1.get("watchlist")
    embedded = _embedded(status1) - _embedded(status0)
    result["embeddings_per_frame"] = embedded / max(frames, 1)
    result["faces_per_frame"] = (status1["faces_detected"] - status0["faces_detected"]) / max(
        frames, 1
    )
    dropped = status1["frames_dropped"] - status0["frames_dropped"]
    result["dropped_per_second"] = dropped / max(status1["uptime_s"] - status0["uptime_s"], 1)
    result["stage_cpu_s"] = status1.get("stage_cpu_s")
    return result


def _embedded(status: dict[str, Any]) -> int:
    """Embeddings run so far; a device from before the embedding schedule embedded every face
    past the quality gate."""
    if "faces_embedded" in status:
        return int(status["faces_embedded"])
    rejected = sum(int(n) for n in status["faces_rejected_quality"].values())
    return int(status["faces_detected"]) - rejected


def _walking_video(path: Path, frame: U8, fps: float) -> Path:
    import cv2  # the bench's own dependency (opencv-python-headless), only for this clip

    height, width = frame.shape[:2]
    count = round(2 * fps)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    try:
        for i in range(count):
            # Shifted by whole pixels so that the last frame leads back to the first.
            writer.write(
                np.ascontiguousarray(np.roll(frame, i * width // count, axis=1)[..., ::-1])
            )
    finally:
        writer.release()
    return path


def _cpu(pid: int, ticks: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def _status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return 0.0
