"""Frame sources, one small adapter per kind, chosen by config (``camera.source`` URI).

- ``file:PATH`` or a plain path: an animated GIF, an image folder (sorted), or a video file
  (video needs OpenCV: ``pip install opencv-python-headless``); ``rtsp://...`` too (OpenCV).
- ``v4l2:/dev/video0`` or ``v4l2:0``: USB/CSI camera through OpenCV (Jetson, laptops).
- ``picamera2:`` or ``picamera2:N``: Raspberry Pi camera (python3-picamera2 from apt).
- ``gst:PIPELINE``: a GStreamer pipeline through gst-launch-1.0 (Jetson CSI with
  nvarguscamerasrc, USB with v4l2src, RTSP with rtspsrc): :mod:`agent.io.gst`.

Vendor libraries are imported in ``open()``, never at import time. Frames are RGB uint8.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# The base types live in source_types (the gst adapter needs them without this module).
from agent.io.source_types import (
    CameraError,
    Frame,
    FrameSource,
    SourceError,
    mask_credentials,
)

__all__ = [
    "CameraError",
    "Frame",
    "FrameSource",
    "ImageSequenceSource",
    "OpenCvSource",
    "Picamera2Source",
    "SourceError",
    "mask_credentials",
    "open_source",
]
U8 = npt.NDArray[np.uint8]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class ImageSequenceSource:
    """GIFs (each frame with its own duration) and image folders, decoded with Pillow."""

    def __init__(self, path: Path, loop: bool, frame_seconds: float = 0.1) -> None:
        self.path, self.loop, self.frame_seconds = path, loop, frame_seconds
        self.finite = not loop
        self._frames: Iterator[Frame] | None = None
        self._count = 0

    def _iterate(self) -> Iterator[Frame]:
        from PIL import Image, ImageSequence

        while True:
            if self.path.is_dir():
                files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if not files:
                    raise SourceError(f"{self.path}: no images")
                for file in files:
                    with Image.open(file) as img:
                        yield self._frame(np.asarray(img.convert("RGB")), self.frame_seconds)
            else:
                with Image.open(self.path) as img:
                    for page in ImageSequence.Iterator(img):
                        seconds = page.info.get("duration", self.frame_seconds * 1000) / 1000
                        yield self._frame(np.asarray(page.convert("RGB")), float(seconds))
            if not self.loop:
                return

    def _frame(self, image: U8, seconds: float) -> Frame:
        self._count += 1
        return Frame(np.ascontiguousarray(image), self._count, seconds)

    def open(self) -> None:
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such file or folder")
        self._frames = self._iterate()

    def read(self) -> Frame | None:
        if self._frames is None:
            raise CameraError("source is not open")
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except OSError as exc:
            raise CameraError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        self._frames = None


OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 5_000


class OpenCvSource:
    """Video files, RTSP streams and V4L2 devices through OpenCV (imported in open())."""

    def __init__(self, target: str | int, live: bool, loop: bool = False) -> None:
        self.target, self.live, self.loop = target, live, loop
        self.finite = not live and not loop
        self._capture: Any = None
        self._count = 0
        self._seconds = 0.0

    def open(self) -> None:
        try:
            import cv2
        except ImportError:
            raise SourceError(
                "this source needs OpenCV: pip install opencv-python-headless "
                "(or apt install python3-opencv)"
            ) from None
        self._cv2 = cv2
        if self.live and isinstance(self.target, str):
            # A network camera that stops sending must fail the read (and be reopened with
            # back-off), not block the capture thread for FFmpeg's default 30 s or forever.
            self._capture = cv2.VideoCapture(
                self.target,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    OPEN_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    READ_TIMEOUT_MS,
                ],
            )
        else:
            self._capture = cv2.VideoCapture(self.target)
        if not self._capture.isOpened():
            raise CameraError(f"cannot open {self.target!r}")
        fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        self._seconds = 0.0 if self.live or fps <= 0 else 1.0 / fps

    def read(self) -> Frame | None:
        if self._capture is None:
            raise CameraError("source is not open")
        ok, bgr = self._capture.read()
        if not ok:
            if self.live:
                raise CameraError(f"{self.target!r} returned no frame")
            if not self.loop:
                return None
            self._capture.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
            if not ok:
                raise CameraError(f"{self.target!r}: cannot rewind")
        self._count += 1
        # OpenCV's own conversion: 0.1 ms for a 720p frame, where numpy's reversed-axis copy
        # took 9 ms, a quarter of a core at 30 frames/s (the same bytes either way).
        rgb = self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)
        return Frame(rgb, self._count, self._seconds)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._capture = None


PICAMERA2_MISSING = (
    "picamera2 cannot be imported ({error}): install it with "
    "`sudo apt install python3-picamera2` and make the venv with --system-site-packages "
    "(`python3 -m venv --system-site-packages VENV`; make install-service does)"
)
# capture_array's wait: a number is a timeout in current picamera2 (older ones wait forever).
PICAMERA2_READ_TIMEOUT_S = 5.0


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (picamera2 wraps libcamera's in its own RuntimeError)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def describe_picamera2_error(exc: BaseException, camera: int, count: int | None) -> str:
    """One line for an error Picamera2(N) raised: absent, busy, or what it said."""
    chain = _chain(exc)
    text = "; ".join(dict.fromkeys(str(e) for e in chain if str(e)))
    if any("resource busy" in str(e).lower() for e in chain):
        return (
            f"picamera2 camera {camera} is busy: another process holds it (the lfr-agent "
            "service, or rpicam-*/libcamera-* apps): stop it first"
        )
    if any(isinstance(e, IndexError) or "not found" in str(e) for e in chain):
        seen = "no camera" if not count else f"{count} camera(s) (numbered from 0)"
        return (
            f"picamera2 camera {camera} is absent: libcamera sees {seen}; check the ribbon "
            "cable and camera_auto_detect=1 in /boot/firmware/config.txt"
        )
    return f"picamera2 camera {camera}: {text or type(exc).__name__}"


class Picamera2Source:
    """Raspberry Pi camera. picamera2 comes from apt (python3-picamera2)."""

    finite = False

    def __init__(self, camera: int, width: int, height: int) -> None:
        self.camera, self.width, self.height = camera, width, height
        self._cam: Any = None
        self._count = 0

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceError(PICAMERA2_MISSING.format(error=exc)) from None
        try:
            self._cam = Picamera2(self.camera)
            config = self._cam.create_video_configuration(
                # libcamera names formats by register order: "BGR888" is R, G, B in memory
                # (picamera2 manual, appendix A), the order the pipeline wants, so no copy here.
                main={"size": (self.width, self.height), "format": "BGR888"}
            )
            self._cam.configure(config)
            self._cam.start()
        except (RuntimeError, IndexError, OSError) as exc:
            self.close()
            message = describe_picamera2_error(exc, self.camera, _count(Picamera2))
            raise CameraError(message) from exc

    def read(self) -> Frame | None:
        if self._cam is None:
            raise CameraError("source is not open")
        try:
            # capture_array copies out of the request, so the buffer goes back at once.
            array = self._cam.capture_array("main", wait=PICAMERA2_READ_TIMEOUT_S)
        except TimeoutError:
            raise CameraError(
                f"picamera2: no frame within {PICAMERA2_READ_TIMEOUT_S:g} s"
            ) from None
        except (RuntimeError, OSError) as exc:
            raise CameraError(f"picamera2: {exc}") from exc
        self._count += 1
        # Contiguous already unless the ISP padded its rows (then one copy, row by row).
        return Frame(np.ascontiguousarray(array), self._count, 0.0)

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            with contextlib.suppress(RuntimeError, OSError):  # a vanished camera cannot be released
                cam.close()


def _count(picamera2: Any) -> int | None:
    try:
        return len(picamera2.global_camera_info())
    except Exception:  # noqa: BLE001 - only a hint for the message
        return None


def open_source(uri: str, *, loop: bool, width: int = 1280, height: int = 720) -> FrameSource:
    """Build the adapter a source URI names (not opened yet)."""
    kind, sep, rest = uri.partition(":")
    if uri.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        return OpenCvSource(uri, live=True)
    if sep and kind == "v4l2":
        return OpenCvSource(int(rest) if rest.isdigit() else rest, live=True)
    if sep and kind == "picamera2":
        if rest and not rest.isdigit():
            raise SourceError(f"picamera2:{rest}: the camera number must be 0, 1, ...")
        return Picamera2Source(int(rest or 0), width, height)
    if sep and kind == "gst":
        from agent.io.gst import GstSource

        return GstSource(rest, width, height)
    path = Path(rest if sep and kind == "file" else uri)
    if path.is_dir() or path.suffix.lower() in {".gif", *IMAGE_SUFFIXES}:
        return ImageSequenceSource(path, loop=loop)
    if sep and kind not in ("file",) and len(kind) > 1:
        raise SourceError(f"unknown source kind {kind!r} (file, v4l2, picamera2, gst, rtsp)")
    return OpenCvSource(str(path), live=False, loop=loop)
