"""``gst:PIPELINE``: a GStreamer pipeline as the camera (Jetson CSI, USB, RTSP; issue 18 §5).

The pipeline (the source part, in gst-launch syntax) runs in a child process::

    setpriv --pdeathsig KILL -- gst-launch-1.0 -q PIPELINE ! videoconvert ! videoscale
        ! video/x-raw,format=RGB,width=W,height=H,pixel-aspect-ratio=1/1 ! fdsink fd=1 sync=false

and frames of exactly W*H*3 bytes are read from its stdout. Why a child and not OpenCV's
GStreamer backend: the venv's OpenCV is PyPI's opencv-python-headless, built without
GStreamer (``cv2.getBuildInformation()`` says ``GStreamer: NO``); Debian's python3-opencv has
it, but the venv's wheel shadows it, and on a Jetson running Python 3.11 (JetPack 6 has 3.10)
apt's compiled Python modules do not load at all. gst-launch-1.0 needs no Python bindings, a
vendor plugin that crashes (nvarguscamerasrc) takes only the child down, and a hung pipeline
is killed rather than waited for. ``setpriv --pdeathsig KILL`` makes the kernel kill the child
when the thread that started it dies, so an agent killed with SIGKILL leaves no orphan holding
the camera. videoscale keeps the aspect ratio (black borders), so frames have the configured
size whatever the camera delivers.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import shlex
import shutil
import subprocess
import threading
import time
from typing import IO

import numpy as np

from agent.io.source_types import CameraError, Frame, SourceError, mask_credentials

log = logging.getLogger(__name__)
GST_LAUNCH = "gst-launch-1.0"
MAX_PIPELINE_CHARS = 4096
FIRST_FRAME_TIMEOUT_S = 15.0  # an RTSP camera may take a while to negotiate
READ_TIMEOUT_S = 5.0
STDERR_LINES = 5
SINKS = ("fdsink", "appsink", "filesink", "autovideosink", "fakesink")
SETPRIV = ("setpriv", "--pdeathsig", "KILL", "--")


def gst_command(pipeline: str, width: int, height: int, launcher: str = GST_LAUNCH) -> list[str]:
    """The child's argv (without the setpriv prefix); raises SourceError for a pipeline that
    cannot be one (empty, too long, unbalanced quotes, or already ending in a sink)."""
    if not pipeline.strip():
        raise SourceError("gst: source needs a pipeline, e.g. gst:videotestsrc")
    if len(pipeline) > MAX_PIPELINE_CHARS:
        raise SourceError(f"gst: pipeline longer than {MAX_PIPELINE_CHARS} characters")
    try:
        tokens = shlex.split(pipeline)
    except ValueError as exc:
        raise SourceError(f"gst: pipeline does not parse: {exc}") from None
    sinks = [t for t in tokens if t.split(" ")[0] in SINKS]
    if sinks:
        raise SourceError(
            f"gst: give the pipeline without a sink ({sinks[0]}): the agent adds "
            "videoconvert ! videoscale ! RGB caps ! fdsink itself"
        )
    # Square pixels make videoscale add borders instead of stretching to a new aspect ratio.
    # RGB straight from videoconvert (one pass in the child), not BGR swapped here.
    caps = f"video/x-raw,format=RGB,width={width},height={height},pixel-aspect-ratio=1/1"
    tail = ["!", "videoconvert", "!", "videoscale", "!", caps, "!", "fdsink", "fd=1", "sync=false"]
    return [launcher, "-q", *tokens, *tail]


class GstSource:
    """Frames from a gst-launch-1.0 child, RGB on its stdout."""

    finite = False

    def __init__(
        self,
        pipeline: str,
        width: int,
        height: int,
        *,
        read_timeout: float = READ_TIMEOUT_S,
        first_frame_timeout: float = FIRST_FRAME_TIMEOUT_S,
    ) -> None:
        self.pipeline, self.width, self.height = pipeline, width, height
        self.read_timeout, self.first_frame_timeout = read_timeout, first_frame_timeout
        self.frame_bytes = width * height * 3
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stderr_thread: threading.Thread | None = None
        self._count = 0
        self._frames_this_run = 0

    def describe(self) -> str:
        """The source for logs and status: passwords masked, long pipelines shortened."""
        text = mask_credentials(f"gst:{self.pipeline}")
        return text if len(text) <= 160 else text[:157] + "..."

    def open(self) -> None:
        argv = gst_command(self.pipeline, self.width, self.height)
        launcher = shutil.which(GST_LAUNCH)
        if launcher is None:
            raise SourceError(
                "gst: source needs gst-launch-1.0: sudo apt install gstreamer1.0-tools "
                "gstreamer1.0-plugins-base gstreamer1.0-plugins-good (RTSP: also "
                "gstreamer1.0-plugins-bad gstreamer1.0-libav)"
            )
        argv[0] = launcher
        # Dies with the thread that starts it (PR_SET_PDEATHSIG): no orphan keeps the camera.
        prefix = list(SETPRIV) if shutil.which("setpriv") else []
        self._stderr.clear()
        self._frames_this_run = 0
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - argv, no shell; the pipeline is config
                [*prefix, *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
            )
        except OSError as exc:
            raise CameraError(f"gst: cannot start gst-launch-1.0: {exc}") from exc
        assert self._proc.stderr is not None
        self._stderr_thread = threading.Thread(
            target=self._drain, args=(self._proc.stderr,), name="gst-stderr", daemon=True
        )
        self._stderr_thread.start()
        log.info("gst pipeline started (pid %d): %s", self._proc.pid, self.describe())

    def _drain(self, stream: IO[bytes]) -> None:
        """Keep the last few lines gst-launch wrote, to say why a pipeline ended."""
        for line in iter(stream.readline, b""):
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._stderr.append(mask_credentials(text)[:300])

    def _why(self) -> str:
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=1.0)
        return " | ".join(self._stderr) or "no message"

    def read(self) -> Frame | None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise CameraError("source is not open")
        timeout = self.first_frame_timeout if self._frames_this_run == 0 else self.read_timeout
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        buf = bytearray()
        while len(buf) < self.frame_bytes:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                raise CameraError(f"gst: no frame within {timeout:g} s ({self.describe()})")
            chunk = os.read(fd, self.frame_bytes - len(buf))
            if not chunk:
                proc.wait(timeout=2)
                raise CameraError(
                    f"gst: pipeline ended (exit {proc.returncode}) after "
                    f"{self._frames_this_run} frames: {self._why()} ({self.describe()})"
                )
            buf += chunk
        self._count += 1
        self._frames_this_run += 1
        # The bytearray is this frame's own: the array takes it over, writable, without a copy.
        rgb = np.frombuffer(buf, np.uint8).reshape(self.height, self.width, 3)
        return Frame(rgb, self._count, 0.0)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=1.0)
            self._stderr_thread = None
