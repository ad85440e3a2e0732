"""The face detectors the bench's detection section compares, by name.

Ours are anything with the agent's ``Detector`` protocol (:class:`agent.pipeline.Detector`,
``detect(frame, tiles)``); a new one is one entry in :data:`OURS`. The baselines: OpenCV's
Haar cascade, and face_recognition's HOG detector run by its own venv (``make -C models
peer-venv``) through :mod:`tools.bench.hog_worker`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agent.pipeline import Detector
from tools.bench.composites import Box
from tools.bench.scenes import ROOT, U8

THREADS = 2  # the agent's default; Haar gets the same
PEER_PYTHON = ROOT / "models" / ".cache" / "peer-venv" / "bin" / "python"


class Runner(Protocol):
    name: str
    note: str

    def detect(self, frame: U8) -> list[tuple[Box, float]]: ...


@dataclass
class Ours:
    """One of our detectors, run as the agent runs it."""

    name: str
    detector: Detector
    tiles: int
    note: str = ""

    def detect(self, frame: U8) -> list[tuple[Box, float]]:
        return [(d.box, d.score) for d in self.detector.detect(frame, tiles=self.tiles)]


def _manifest_detector(model: str, min_face_px: float | None = None) -> Detector:
    from agent.models import load_detector

    return load_detector(model, threads=THREADS, min_face_px=min_face_px)


def _yunet_decoded(min_face_px: float) -> Detector:
    """YuNet as OpenCV decodes it, without the second look (to measure what that look pays)."""
    from agent.vision.manifest import load_manifest
    from agent.vision.yunet_detector import YuNetDetector

    return YuNetDetector.from_manifest(
        load_manifest(), "yunet_float32.tflite", THREADS, min_face_px=min_face_px, second_look=None
    )


# name -> (model loader, tiles). YuNet's scale is the agent's [vision] min_face_px: 24 keeps a
# 1080p frame at full size, 40 (the default) shrinks it to 1152x648.
OURS: dict[str, tuple[Callable[[], Detector], int]] = {
    "BlazeFace short": (lambda: _manifest_detector("blazeface_short_float32.tflite"), 1),
    "BlazeFace short tiles=3": (lambda: _manifest_detector("blazeface_short_float32.tflite"), 3),
    "BlazeFace full": (lambda: _manifest_detector("blazeface_full_float32.tflite"), 1),
    "BlazeFace full tiles=3": (lambda: _manifest_detector("blazeface_full_float32.tflite"), 3),
    "YuNet min 40 px": (lambda: _manifest_detector("yunet_float32.tflite", 40), 1),
    "YuNet min 24 px": (lambda: _manifest_detector("yunet_float32.tflite", 24), 1),
    "YuNet min 40 px, no second look": (lambda: _yunet_decoded(40), 1),
    "YuNet min 24 px, no second look": (lambda: _yunet_decoded(24), 1),
}


class Haar:
    """OpenCV's frontal-face cascade, down to 16 px (the smallest size bin), 2 threads."""

    name = "OpenCV Haar"
    note = "haarcascade_frontalface_default, scale 1.1, 5 neighbours, min 16 px"

    def __init__(self) -> None:
        import cv2

        cv2.setNumThreads(THREADS)
        path = Path(cv2.__file__).parent / "data" / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))

    def detect(self, frame: U8) -> list[tuple[Box, float]]:
        import cv2

        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        found = self.cascade.detectMultiScale(grey, 1.1, 5, minSize=(16, 16))
        return [((float(x), float(y), float(x + w), float(y + h)), 1.0) for x, y, w, h in found]


class Hog:
    """face_recognition's HOG detector (upsample 1, its default) in the peer venv, one frame
    per request over a pipe; the worker times itself (frame transfer excluded)."""

    name = "face_recognition HOG"
    note = "face_locations(model='hog', upsample 1), dlib single-threaded"

    def __init__(self, python: Path) -> None:
        worker = Path(__file__).with_name("hog_worker.py")
        env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
        self.proc = subprocess.Popen(
            [str(python), str(worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.tmp = tempfile.TemporaryDirectory(prefix="lfr-hog-")
        self.last_seconds = 0.0
        ready = self._line()
        self.note += f" ({ready.removeprefix('ready ')})"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(
                "the HOG worker ended (is face_recognition installed in the peer venv? "
                "make -C models peer-venv)"
            )
        return line.strip()

    def detect(self, frame: U8) -> list[tuple[Box, float]]:
        assert self.proc.stdin is not None
        path = Path(self.tmp.name) / "frame.npy"
        np.save(path, frame)
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        self.last_seconds = float(answer["seconds"])
        return [
            ((float(b[0]), float(b[1]), float(b[2]), float(b[3])), 1.0) for b in answer["boxes"]
        ]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.tmp.cleanup()


def runners(hog: bool = True) -> tuple[list[Runner], list[str]]:
    """Every detector that can run here, and why any other cannot."""
    out: list[Runner] = []
    missing: list[str] = []
    for name, (load, tiles) in OURS.items():
        out.append(Ours(name, load(), tiles))
    try:
        out.append(Haar())
    except ImportError:
        missing.append("OpenCV Haar: opencv-python-headless is not installed")
    if not hog:
        missing.append("face_recognition HOG: not run (--quick)")
    elif PEER_PYTHON.exists():
        try:
            out.append(Hog(PEER_PYTHON))
        except RuntimeError as exc:
            missing.append(f"face_recognition HOG: {exc}")
    else:
        missing.append(
            f"face_recognition HOG: no {PEER_PYTHON.relative_to(ROOT)} (make -C models "
            "peer-venv builds it; dlib compiles from source, ~20 min on 2 cores)"
        )
    return out, missing
