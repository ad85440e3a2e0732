"""Capture in its own thread; the pipeline takes frames from a one-frame slot.

Live mode: the slot keeps only the newest frame, so a slow model drops frames (counted) and
never builds a backlog. Replay mode (``--until-end`` on a file): every frame is handed over in
order, for audits and tests. Camera failures are retried with exponential back-off (1 s
doubling to 30 s, back to 1 s after a frame): the camera is then *down*, which the status
reports as an alarm, and the log says so once per change of state, not once per attempt
(issue 18: a missing camera logged 100 identical errors per second). While the thread waits
out a back-off it is alive, so the loop keeps the systemd watchdog fed (:meth:`retrying`);
a read that hangs is not retrying, and the watchdog stops as before.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass

from agent.io.sources import CameraError, Frame, FrameSource, SourceError, mask_credentials

log = logging.getLogger(__name__)
MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# An attempt to open a camera may itself take this long (RTSP: 10 s open + 5 s read timeouts;
# gst: 15 s to the first frame) and still be a retry in progress, not a hang.
ATTEMPT_GRACE_S = 20.0


@dataclass
class CaptureStats:
    frames_captured: int = 0
    frames_dropped: int = 0
    camera_errors: int = 0
    camera_restarts: int = 0
    last_error: str = ""  # passwords masked
    down_since: float | None = None  # monotonic: the camera failed and has not delivered since
    retry_at: float = 0.0  # monotonic: the next attempt to open it


def thread_cpu_seconds(native_id: int) -> float | None:
    """CPU seconds another thread of this process has used (Linux: its per-thread CPU clock,
    as ``pthread_getcpuclockid`` builds it from the kernel thread id, which, unlike a
    ``pthread_t``, is safe to ask about once the thread has gone: the call then fails); None
    where there is no such clock or the thread is gone."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return time.clock_gettime((~native_id << 3) | 6)  # CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED
    except OSError:
        return None


class Capture:
    def __init__(
        self,
        source: FrameSource,
        *,
        replay: bool,
        max_backoff: float = MAX_BACKOFF_S,
        min_backoff: float = MIN_BACKOFF_S,
    ) -> None:
        self._source = source
        self._replay = replay
        self._max_backoff = max_backoff
        self._min_backoff = min(min_backoff, max_backoff)
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._ended = False
        self._fatal: str | None = None
        self._stop = threading.Event()
        self.stats = CaptureStats()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._cpu_s = 0.0  # the last reading of the thread's CPU (kept once it has ended)

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

    def retrying(self, mono: float) -> bool:
        """The camera is down and this thread is working on it: waiting out a back-off, or in
        an attempt no longer than :data:`ATTEMPT_GRACE_S` past its start."""
        stats = self.stats
        return (
            stats.down_since is not None
            and self._thread.is_alive()
            and mono < stats.retry_at + ATTEMPT_GRACE_S
        )

    def cpu_seconds(self) -> float:
        """CPU seconds the capture thread has used: reading and decoding frames (a decoder's
        own threads, such as FFmpeg's, are not included)."""
        native_id = self._thread.native_id
        if native_id is not None and self._thread.is_alive():
            now = thread_cpu_seconds(native_id)
            if now is not None:
                self._cpu_s = max(self._cpu_s, now)
        return self._cpu_s

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
        try:
            self._capture()
        finally:
            self._cpu_s = max(self._cpu_s, time.thread_time())

    def _capture(self) -> None:
        backoff = self._min_backoff
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
                self._came_back()  # before the frame is handed over: a reader sees it back
                backoff = self._min_backoff
                self._put(frame)
                if not self._replay and frame.duration > 0:
                    # A file played live keeps its own frame rate.
                    self._stop.wait(max(0.0, frame.duration - (time.monotonic() - started)))
            except SourceError as exc:
                self._fatal = mask_credentials(str(exc))
                log.error("camera source unusable: %s", self._fatal)
                with self._cond:
                    self._ended = True
                    self._cond.notify_all()
                return
            except CameraError as exc:
                self._went_down(mask_credentials(str(exc)), backoff)
                self._source.close()
                opened = False
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                self.stats.camera_restarts += 1
        self._source.close()

    def _went_down(self, error: str, backoff: float) -> None:
        stats = self.stats
        stats.camera_errors += 1
        stats.retry_at = time.monotonic() + backoff
        changed = error != stats.last_error
        stats.last_error = error
        if stats.down_since is None:
            stats.down_since = time.monotonic()
            log.warning(
                "camera error, camera down: %s (retrying every %g s up to %g s)",
                error,
                backoff,
                self._max_backoff,
            )
        elif changed:
            log.warning("camera error, still down: %s", error)
        else:
            log.debug("camera still down (attempt %d): %s", stats.camera_errors, error)

    def _came_back(self) -> None:
        stats = self.stats
        if stats.down_since is not None:
            log.info(
                "camera back after %.0f s down (%d errors)",
                time.monotonic() - stats.down_since,
                stats.camera_errors,
            )
            stats.down_since = None
