"""The gst: source against Debian's GStreamer (videotestsrc): frames, a pipeline that ends or
cannot start, passwords masked, and the child dying with its parent (setpriv --pdeathsig)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agent.io.capture import Capture
from agent.io.gst import GstSource, gst_command
from agent.io.sources import CameraError, SourceError, open_source

pytestmark = pytest.mark.skipif(
    shutil.which("gst-launch-1.0") is None,
    reason="needs gst-launch-1.0 (.ci/system-deps installs gstreamer1.0-tools)",
)


def _gst(pipeline: str, width: int = 64, height: int = 48) -> GstSource:
    source = open_source(f"gst:{pipeline}", loop=False, width=width, height=height)
    assert isinstance(source, GstSource)
    return source


def test_videotestsrc_frames_are_rgb_at_the_configured_size_until_the_pipeline_ends() -> None:
    source = _gst("videotestsrc pattern=red num-buffers=3 ! video/x-raw,width=320,height=240")
    source.open()
    frames = [source.read() for _ in range(3)]
    with pytest.raises(CameraError, match=r"pipeline ended \(exit 0\) after 3 frames"):
        source.read()
    source.close()
    for frame in frames:
        assert frame is not None and frame.image.shape == (48, 64, 3)
        # 320x240 scaled into 64x48 (same aspect): all red, in RGB order.
        assert np.abs(frame.image.astype(int) - [255, 0, 0]).max() <= 2
    assert [f.index for f in frames if f is not None] == [1, 2, 3]


def test_a_different_aspect_ratio_is_letterboxed_not_stretched() -> None:
    source = _gst("videotestsrc pattern=white num-buffers=1 ! video/x-raw,width=640,height=240")
    source.open()
    frame = source.read()
    source.close()
    assert frame is not None
    column = frame.image[:, 32].max(axis=1)
    assert column[0] < 20 and column[24] > 230  # black border above, picture in the middle


def test_a_broken_pipeline_is_a_camera_error_naming_gstreamers_reason() -> None:
    source = _gst("nosuchelement ! videoconvert")
    source.open()
    started = time.monotonic()
    with pytest.raises(CameraError, match="no element"):
        source.read()
    assert time.monotonic() - started < 5
    source.close()


def test_rtsp_passwords_never_reach_the_error_text() -> None:
    source = _gst("rtspsrc location=rtsp://admin:hunter2@127.0.0.1:9/s1 ! decodebin")
    source.open()
    with pytest.raises(CameraError) as caught:
        source.read()
    source.close()
    assert "hunter2" not in str(caught.value) and "admin:***@" in str(caught.value)
    assert "hunter2" not in source.describe()


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ("", "needs a pipeline"),
        ("videotestsrc ! fdsink", "without a sink"),
        ('videotestsrc ! "unbalanced', "does not parse"),
        ("x" * 5000, "longer than"),
    ],
)
def test_pipelines_that_cannot_work_are_source_errors(pipeline: str, expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        gst_command(pipeline, 64, 48)


def test_quoted_caps_stay_one_token() -> None:
    argv = gst_command('nvarguscamerasrc ! "video/x-raw(memory:NVMM),width=1920"', 1280, 720)
    assert "video/x-raw(memory:NVMM),width=1920" in argv
    assert argv[-4:] == ["!", "fdsink", "fd=1", "sync=false"]


def test_a_live_pipeline_that_ends_is_reopened_by_the_capture() -> None:
    capture = Capture(
        _gst("videotestsrc num-buffers=2"), replay=False, min_backoff=0.05, max_backoff=0.1
    )
    capture.start()
    got = 0
    deadline = time.monotonic() + 20
    while capture.stats.camera_restarts < 2 and time.monotonic() < deadline:
        got += capture.get(0.2) is not None
    capture.stop()
    assert capture.stats.camera_restarts >= 2 and got >= 2


CHILD = """
import sys, time
from agent.io.gst import GstSource
source = GstSource("videotestsrc is-live=true", 32, 24)
source.open()
source.read()
print(source._proc.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(") ")[1][0] != "Z"


def test_the_pipeline_dies_with_an_agent_killed_by_sigkill() -> None:
    agent = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert agent.stdout is not None
    gst_pid = int(agent.stdout.readline())
    assert _alive(gst_pid)
    os.kill(agent.pid, signal.SIGKILL)  # no shutdown code runs in the agent
    agent.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _alive(gst_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(gst_pid)
