"""The camera row of ``lfr-agent check``: open the configured camera and read one frame.

A camera is local, so this runs with ``--offline`` too. ``--no-camera`` (the unit's
ExecStartPre) does not open it: a camera that is momentarily absent must not keep the agent
from starting, since the agent retries it with back-off and reports it down; but software that
is missing never comes back by retrying, so the library or tool the source needs is still
checked (issue 18: a venv without --system-site-packages cannot import apt's picamera2, and
check passed anyway).
"""

from __future__ import annotations

import importlib
import shutil
import sys
import time
from pathlib import Path

from agent.config import AgentConfig
from agent.io.sources import (
    PICAMERA2_MISSING,
    CameraError,
    FrameSource,
    OpenCvSource,
    Picamera2Source,
    SourceError,
    mask_credentials,
    open_source,
)


class CameraCheckFailed(Exception):
    pass


def venv_note() -> str:
    """Why apt's Python packages are invisible here, if this venv is the reason."""
    if sys.prefix == sys.base_prefix:
        return ""
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    try:
        text = cfg.read_text(encoding="utf-8")
    except OSError:
        return ""
    if "include-system-site-packages = false" in text:
        return f"; this venv ({sys.prefix}) was made without --system-site-packages"
    return ""


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def software(source: FrameSource) -> str:
    """What the source needs installed, checked without touching the camera."""
    from agent.io.gst import GST_LAUNCH, GstSource

    if isinstance(source, Picamera2Source):
        if not _importable("picamera2"):
            raise CameraCheckFailed(
                PICAMERA2_MISSING.format(error="No module named 'picamera2'") + venv_note()
            )
        return "picamera2 importable"
    if isinstance(source, GstSource):
        if shutil.which(GST_LAUNCH) is None:
            raise CameraCheckFailed(
                "gst-launch-1.0 is missing: sudo apt install gstreamer1.0-tools "
                "gstreamer1.0-plugins-base gstreamer1.0-plugins-good"
            )
        return "gst-launch-1.0 present"
    if isinstance(source, OpenCvSource):
        if not _importable("cv2"):
            raise CameraCheckFailed(
                "OpenCV is missing: pip install opencv-python-headless in the venv"
            )
        return "OpenCV importable"
    return "Pillow decodes it"


def check_camera(config: AgentConfig, source_uri: str | None, open_camera: bool) -> str:
    """The row's text; raises CameraCheckFailed with a one-line reason."""
    uri = source_uri or config.camera.source
    shown = mask_credentials(uri)
    try:
        source = open_source(
            uri, loop=False, width=config.camera.width, height=config.camera.height
        )
    except SourceError as exc:
        raise CameraCheckFailed(f"{shown}: {mask_credentials(str(exc))}") from None
    needs = software(source)
    if not open_camera:
        return f"{shown}: not opened (--no-camera); {needs}"
    started = time.monotonic()
    try:
        source.open()
        frame = source.read()
    except SourceError as exc:
        raise CameraCheckFailed(mask_credentials(str(exc)) + venv_note()) from None
    except CameraError as exc:
        hint = ""
        if "busy" in str(exc):
            hint = " (if that is the lfr-agent service: check --no-camera, or stop it first)"
        raise CameraCheckFailed(f"{shown}: {mask_credentials(str(exc))}{hint}") from None
    finally:
        source.close()
    if frame is None:
        raise CameraCheckFailed(f"{shown}: no frames")
    h, w = frame.image.shape[:2]
    return f"{shown}: read one {w}x{h} frame in {time.monotonic() - started:.1f} s"
