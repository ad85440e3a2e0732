"""picamera2 against the fake package (tests/fakes/picamera2) and the capture thread's
back-off: a camera that is absent, busy, unplugged mid-stream or not installed."""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from agent.io.capture import Capture
from agent.io.sources import (
    CameraError,
    Frame,
    Picamera2Source,
    SourceError,
    mask_credentials,
    open_source,
)
from tests.fakes import use_fake_picamera2


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The fake as ``picamera2``, one camera attached."""
    return use_fake_picamera2(monkeypatch)


def _source(camera: int = 0) -> Picamera2Source:
    source = open_source(f"picamera2:{camera}", loop=False, width=64, height=48)
    assert isinstance(source, Picamera2Source)
    return source


def test_picamera2_frames_are_rgb_at_the_configured_size(fake_picamera2: ModuleType) -> None:
    source = _source()
    source.open()
    first, second = source.read(), source.read()
    source.close()
    source.close()  # idempotent
    assert first is not None and second is not None
    assert first.image.shape == (48, 64, 3) and first.image.dtype == np.uint8
    assert first.image[0, 5].tolist() == [255, 0, 0]  # red stays red: R, G, B memory order
    assert (first.image[0, 0, 2], second.image[0, 0, 2]) == (1, 2)  # frame numbers
    cam = fake_picamera2.opened[-1]
    # libcamera's "BGR888" is R, G, B in memory (picamera2 manual, appendix A): no swap needed.
    assert cam.camera_config["main"] == {"format": "BGR888", "size": (64, 48), "preserve_ar": True}
    assert not cam.is_open and cam.closed_count == 1


@pytest.mark.parametrize(
    ("env", "camera", "expected"),
    [
        ({"FAKE_PICAMERA2_CAMERAS": "0"}, 0, "camera 0 is absent: libcamera sees no camera"),
        ({"FAKE_PICAMERA2_CAMERAS": "1"}, 1, "camera 1 is absent: libcamera sees 1 camera(s)"),
        (
            {"FAKE_PICAMERA2_CAMERAS": "0", "FAKE_PICAMERA2_LEGACY": "1"},
            0,
            "camera 0 is absent",  # older picamera2: a bare IndexError
        ),
        ({"FAKE_PICAMERA2_BUSY": "1"}, 0, "camera 0 is busy: another process holds it"),
    ],
)
def test_picamera2_absent_or_busy_is_a_camera_error_that_says_which(
    fake_picamera2: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    camera: int,
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    source = _source(camera)
    with pytest.raises(CameraError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        source.open()
    source.close()


def test_picamera2_held_by_another_opener_is_busy_until_it_closes(
    fake_picamera2: ModuleType,
) -> None:
    first, second = _source(), _source()
    first.open()
    with pytest.raises(CameraError, match="busy"):
        second.open()
    first.close()
    second.open()
    assert second.read() is not None
    second.close()


def test_picamera2_unplugged_mid_stream_fails_the_read(
    fake_picamera2: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PICAMERA2_FAIL_AFTER", "2")
    source = _source()
    source.open()
    assert source.read() is not None and source.read() is not None
    with pytest.raises(CameraError, match="picamera2: Camera frontend has timed out"):
        source.read()
    source.close()


def test_picamera2_missing_says_what_to_install_and_how_to_make_the_venv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 -> ImportError
    with pytest.raises(SourceError) as caught:
        _source().open()
    text = str(caught.value)
    assert "sudo apt install python3-picamera2" in text
    assert "--system-site-packages" in text


def test_a_video_files_frames_are_rgb(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2", reason="the video extra (opencv-python-headless)")
    clip = tmp_path / "red.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), (0, 0, 255), np.uint8))  # red, in OpenCV's BGR
    writer.release()
    source = open_source(str(clip), loop=False)
    source.open()
    frames = [source.read() for _ in range(4)]
    source.close()
    assert frames[3] is None
    for frame in frames[:3]:
        assert frame is not None and frame.image.shape == (48, 64, 3)
        assert np.abs(frame.image.astype(int) - [255, 0, 0]).max() <= 8  # JPEG's rounding
        assert frame.image.flags.c_contiguous and frame.image.flags.writeable


def test_credentials_are_masked() -> None:
    assert mask_credentials("cannot open 'rtsp://admin:pa:ss@10.0.0.5/s1'") == (
        "cannot open 'rtsp://admin:***@10.0.0.5/s1'"
    )
    assert "hunter2" not in mask_credentials("rtspsrc location=rtsp://h/x user-pw=hunter2 ! x")
    assert mask_credentials("rtsp://cam.local/s1") == "rtsp://cam.local/s1"


class DeadCamera:
    """Fails to open until ``alive``; records when each attempt was made."""

    finite = False

    def __init__(self) -> None:
        self.attempts: list[float] = []
        self.alive = False

    def open(self) -> None:
        self.attempts.append(time.monotonic())
        if not self.alive:
            raise CameraError("cannot open 'rtsp://admin:secret@cam/1'")

    def read(self) -> Frame | None:
        time.sleep(0.01)
        return Frame(np.zeros((2, 2, 3), np.uint8), len(self.attempts), 0.0)

    def close(self) -> None:
        pass


def test_a_dead_camera_backs_off_logs_once_and_counts_as_retrying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    camera = DeadCamera()
    capture = Capture(camera, replay=False, min_backoff=0.05, max_backoff=0.4)
    caplog.set_level(logging.DEBUG, logger="agent.io.capture")
    capture.start()
    time.sleep(2.0)
    assert capture.retrying(time.monotonic())
    assert capture.stats.down_since is not None
    assert "secret" not in capture.stats.last_error and "admin:***@" in capture.stats.last_error
    gaps = np.diff(camera.attempts)
    # 0.05, 0.1, 0.2, 0.4, 0.4, ...: doubling, then capped (not a tight loop).
    assert len(camera.attempts) <= 9, gaps
    # (generous bounds: the machine may be busy, which only lengthens the gaps)
    assert 0.04 <= gaps[0] < 0.25 and 0.09 <= gaps[1] < 0.3 and 0.19 <= gaps[2] < 0.45
    assert all(0.39 <= g < 0.8 for g in gaps[3:]), gaps
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "camera down" in warnings[0].getMessage()
    assert all("secret" not in r.getMessage() for r in caplog.records)

    camera.alive = True
    deadline = time.monotonic() + 3
    while capture.get(0.2) is None and time.monotonic() < deadline:
        pass
    assert capture.stats.down_since is None and not capture.retrying(time.monotonic())
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and infos[0].startswith("camera back after")
    capture.stop()
    assert not capture.retrying(time.monotonic())


def test_the_frames_status_carries_the_camera_down_alarm_until_it_is_back() -> None:
    from datetime import timedelta

    from agent.core.quality import QualityPolicy
    from agent.core.tracker import Tracker
    from agent.frames import CameraFrames, WallTimeline
    from agent.pipeline import FramePipeline
    from agent.status import AlarmKind
    from agent.synthetic_vision import ColourEmbedder, SquareDetector

    tracker: Tracker[np.ndarray] = Tracker(
        window=timedelta(seconds=10), cooldown=timedelta(hours=1)
    )
    pipeline = FramePipeline(SquareDetector(), ColourEmbedder(), QualityPolicy(10, 0, 1.0), tracker)
    camera = DeadCamera()
    capture = Capture(camera, replay=False, min_backoff=0.2, max_backoff=0.2)
    frames = CameraFrames(capture, pipeline, tracker, WallTimeline())
    frames.start()
    time.sleep(0.5)
    part = frames.status()
    kinds = [a.kind for a in part.alarms]
    assert kinds == [AlarmKind.CAMERA_DOWN, AlarmKind.CAMERA_ERRORS]
    assert re.match(
        r"camera down for [01]s: cannot open 'rtsp://admin:\*\*\*@cam/1' \(next",
        part.alarms[0].text,
    )
    assert frames.retrying(time.monotonic())
    camera.alive = True
    deadline = time.monotonic() + 3
    while capture.stats.down_since is not None and time.monotonic() < deadline:
        capture.get(0.1)
    assert [a.kind for a in frames.status().alarms] == [AlarmKind.CAMERA_ERRORS]
    capture.stop()
