"""Capture in its own thread; the pipeline takes frames from a one-frame slot.

Live mode: the slot keeps only the newest frame, so a slow model drops frames (counted) and
never builds a backlog. Replay mode (``--until-end`` on a file): every frame is handed over in
order, for audits and tests. Camera failures are retried with exponential back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from agent.io.sources import CameraError, Frame, FrameSource, SourceError

log = logging.getLogger(__name__)


@dataclass
class CaptureStats:
    frames_captured: int = 0
    frames_dropped: int = 0
    camera_errors: int = 0
    camera_restarts: int = 0
    last_error: str = ""


class Capture:
    def __init__(self, source: FrameSource, *, replay: bool, max_backoff: float = 30.0) -> None:
        self._source = source
        self._replay = replay
        self._max_backoff = max_backoff
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._ended = False
        self._fatal: str | None = None
        self._stop = threading.Event()
        self.stats = CaptureStats()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)

    @property
    def ended(self) -> bool:
        """A finite source is exhausted and its last frame was taken."""
        with self._cond:
            return self._ended and self._slot is None

    @property
    def fatal(self) -> str | None:
        return self._fatal

    def get(self, timeout: float) -> Frame | None:
        """The next frame, or None if none arrived within ``timeout``."""
        with self._cond:
            if self._slot is None and not self._ended:
                self._cond.wait(timeout)
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self._replay:
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.5)
            elif self._slot is not None:
                self.stats.frames_dropped += 1
            self._slot = frame
            self.stats.frames_captured += 1
            self._cond.notify_all()

    def _run(self) -> None:
        backoff = 0.5
        opened = False
        while not self._stop.is_set():
            try:
                if not opened:
                    self._source.open()
                    opened = True
                started = time.monotonic()
                frame = self._source.read()
                if frame is None:
                    with self._cond:
                        self._ended = True
                        self._cond.notify_all()
                    return
                self._put(frame)
                backoff = 0.5
                if not self._replay and frame.duration > 0:
                    # A file played live keeps its own frame rate.
                    self._stop.wait(max(0.0, frame.duration - (time.monotonic() - started)))
            except SourceError as exc:
                self._fatal = str(exc)
                log.error("camera source unusable: %s", exc)
                with self._cond:
                    self._ended = True
                    self._cond.notify_all()
                return
            except CameraError as exc:
                self.stats.camera_errors += 1
                self.stats.last_error = str(exc)
                log.warning("camera error (retry in %.1fs): %s", backoff, exc)
                self._source.close()
                opened = False
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                self.stats.camera_restarts += 1
        self._source.close()
