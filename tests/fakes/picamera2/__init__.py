"""A stand-in for Raspberry Pi's ``picamera2`` (python3-picamera2), for tests only.

It implements the surface ``agent.io.sources.Picamera2Source`` and ``agent.camera_check`` use,
with the behaviour of the real library as read from raspberrypi/picamera2 (picamera2.py,
job.py):

- ``Picamera2(camera_num)``: no camera at all, or an index past the last one, raises what the
  real one raises: current releases wrap every failure of the opening sequence in
  ``RuntimeError("Camera __init__ sequence did not complete.")`` (the cause chained); older
  ones (``FAKE_PICAMERA2_LEGACY=1``) let ``IndexError: list index out of range`` out of
  ``camera_manager.cameras[idx]``. A camera another process holds fails libcamera's
  ``acquire()``: ``RuntimeError("Failed to acquire camera: Device or resource busy")``.
- ``create_video_configuration`` / ``create_preview_configuration`` build the dict the real
  ones return (``main`` defaults to XBGR8888; the size is aligned to even numbers).
- ``configure`` refuses while started; ``capture_array(name, wait=...)`` returns a copy of the
  next frame: for "RGB888" a (h, w, 3) array in B, G, R memory order (libcamera's naming), for
  "XBGR8888"/"XRGB8888" (h, w, 4) (R, G, B, X and B, G, R, X). A number as ``wait`` is a
  timeout (TimeoutError), as in job.py's ``Future.result(timeout)``.
- ``stop`` and ``close`` are idempotent; close releases the camera for the next opener.

Driven by environment variables so a subprocess (``lfr-agent check``) sees the same world:
``FAKE_PICAMERA2_CAMERAS`` (how many are attached, default 1), ``FAKE_PICAMERA2_BUSY=1``
(another process holds every camera), ``FAKE_PICAMERA2_LEGACY=1``, and
``FAKE_PICAMERA2_FAIL_AFTER=N`` (the N+1th capture fails: a cable pulled mid-stream).
Each frame's pixel (0, 0) carries the frame number in its blue byte; the rest of the top row
is red, so a test can tell BGR from RGB.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

__all__ = ["Picamera2"]

_lock = threading.Lock()
_held: set[int] = set()  # cameras this process has acquired
opened: list[Picamera2] = []  # every camera successfully opened, for tests to inspect


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _attached() -> list[dict[str, Any]]:
    return [
        {"Model": "imx708", "Location": 2, "Rotation": 180, "Id": f"/base/i2c@{n}/imx708@1a"}
        for n in range(_env_int("FAKE_PICAMERA2_CAMERAS", 1))
    ]


class Picamera2:
    """The camera object: open in the constructor, as the real one."""

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return _attached()

    def __init__(self, camera_num: int = 0, tuning: object = None) -> None:
        self.camera_idx = camera_num
        self.is_open = False
        self.started = False
        self.camera_config: dict[str, Any] | None = None
        self.frames = 0
        self.closed_count = 0
        if os.environ.get("FAKE_PICAMERA2_LEGACY") == "1":
            self._open_camera()  # older releases: the IndexError escapes as is
        else:
            try:
                self._open_camera()
            except Exception as exc:
                raise RuntimeError("Camera __init__ sequence did not complete.") from exc
        self.sensor_resolution = (4608, 2592)
        opened.append(self)

    def _open_camera(self) -> None:
        cameras = _attached()
        if not cameras and os.environ.get("FAKE_PICAMERA2_LEGACY") != "1":
            raise RuntimeError(
                "Camera(s) not found (Do not forget to disable legacy camera with raspi-config)."
            )
        cameras[self.camera_idx]  # IndexError past the last camera, as _grab_camera
        with _lock:
            if os.environ.get("FAKE_PICAMERA2_BUSY") == "1" or self.camera_idx in _held:
                # libcamera's Camera.acquire() -> std::system_error(EBUSY) -> RuntimeError
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
            _held.add(self.camera_idx)
        self.is_open = True

    def __enter__(self) -> Picamera2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _config(self, main: dict[str, Any] | None, default_size: tuple[int, int]) -> dict[str, Any]:
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        stream: dict[str, Any] = {"format": "XBGR8888", "size": default_size, "preserve_ar": True}
        for key, value in (main or {}).items():
            if key not in ("format", "size", "stride", "preserve_ar"):
                raise ValueError(f"Bad key {key!r}: valid stream configuration keys are ...")
            stream[key] = value
        w, h = stream["size"]
        stream["size"] = (w - w % 2, h - h % 2)
        return {"use_case": "video", "buffer_count": 6, "main": stream, "lores": None, "raw": None}

    def create_video_configuration(
        self, main: dict[str, Any] | None = None, **_: Any
    ) -> dict[str, Any]:
        return self._config(main, (1280, 720))

    def create_preview_configuration(
        self, main: dict[str, Any] | None = None, **_: Any
    ) -> dict[str, Any]:
        config = self._config(main, (640, 480))
        config["use_case"] = "preview"
        return config

    def configure(self, camera_config: dict[str, Any] | None = None) -> None:
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        main = (camera_config or {}).get("main") or {}
        if main.get("format") not in ("RGB888", "BGR888", "XBGR8888", "XRGB8888"):
            raise RuntimeError(f"Bad format {main.get('format')} in stream main")
        self.camera_config = camera_config

    def start(self, config: dict[str, Any] | None = None, show_preview: bool = False) -> None:
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def capture_array(
        self, name: str = "main", wait: bool | float | None = None, signal_function: Any = None
    ) -> np.ndarray[Any, np.dtype[np.uint8]]:
        if not self.started or self.camera_config is None:
            if isinstance(wait, (int, float)) and not isinstance(wait, bool):
                raise TimeoutError()
            # The real one would wait forever for a request that never comes.
            raise AssertionError("fake picamera2: capture_array before start() blocks forever")
        fail_after = _env_int("FAKE_PICAMERA2_FAIL_AFTER", -1)
        if 0 <= fail_after <= self.frames:
            raise RuntimeError("Camera frontend has timed out!")
        self.frames += 1
        stream = self.camera_config[name]
        w, h = stream["size"]
        channels = 3 if stream["format"] in ("RGB888", "BGR888") else 4
        image = np.zeros((h, w, channels), np.uint8)
        # Memory order (picamera2 manual): RGB888 and XRGB8888 are B, G, R; the others R, G, B.
        bgr = stream["format"] in ("RGB888", "XRGB8888")
        image[0, :, :3] = [0, 0, 255] if bgr else [255, 0, 0]
        image[0, 0, 0 if bgr else 2] = self.frames % 256
        return image

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        if not self.is_open:
            return
        self.stop()
        with _lock:
            _held.discard(self.camera_idx)
        self.is_open = False
        self.closed_count += 1
