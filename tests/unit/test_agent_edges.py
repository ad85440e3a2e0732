"""The agent's edges with their real backends: SQLite outbox, sd_notify datagrams, frame
sources and the capture thread, typed config."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.config import ConfigError, parse_config
from agent.io.capture import Capture
from agent.io.notify import Notifier
from agent.io.outbox import Outbox, OutboxFull
from agent.io.sources import CameraError, Frame, ImageSequenceSource, open_source

MINIMAL = '[device]\nid = "cam-01"\nsite = "kx"\n[broker]\nhost = "mqtt"\n'


def test_outbox_is_ordered_idempotent_bounded_and_durable(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite", max_events=3)
    for i in range(3):
        box.put(f"e{i}", "t", f"payload{i}".encode())
    box.put("e1", "t", b"again")  # the same event twice is one event
    with pytest.raises(OutboxFull):
        box.put("e3", "t", b"x")
    assert [p.event_id for p in box.pending(10)] == ["e0", "e1", "e2"]
    box.ack("e0")
    box.close()
    reopened = Outbox(tmp_path / "outbox.sqlite", max_events=3)
    assert [p.payload for p in reopened.pending(10)] == [b"payload1", b"payload2"]
    assert reopened.integrity_ok()
    assert (tmp_path / "outbox.sqlite").stat().st_mode & 0o077 == 0


def test_notify_datagrams(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        notifier.ready("loaded")
        notifier.watchdog()
        assert server.recv(4096) == b"READY=1\nSTATUS=loaded"
        assert server.recv(4096) == b"WATCHDOG=1"
    assert not Notifier({}).enabled


def _gif(path: Path, frames: int) -> Path:
    images = [Image.fromarray(np.full((24, 32, 3), 10 * i, np.uint8)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, loop=0)
    return path


def test_gif_and_folder_sources(tmp_path: Path) -> None:
    source = open_source(str(_gif(tmp_path / "c.gif", 5)), loop=False)
    source.open()
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert [f.index for f in frames] == [1, 2, 3, 4, 5]
    assert frames[0].image.shape == (24, 32, 3) and frames[0].duration == 0.05
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / f"{i}.png")
    assert isinstance(open_source(f"file:{folder}", loop=False), ImageSequenceSource)


def test_replay_capture_hands_over_every_frame(tmp_path: Path) -> None:
    capture = Capture(open_source(str(_gif(tmp_path / "c.gif", 12)), loop=False), replay=True)
    capture.start()
    got = []
    while not capture.ended:
        frame = capture.get(0.5)
        if frame is not None:
            got.append(frame.index)
            time.sleep(0.01)  # a slow consumer
    capture.stop()
    assert got == list(range(1, 13))


class FlakyCamera:
    """A camera that fails twice, then works (a real FrameSource implementation)."""

    finite = False

    def __init__(self) -> None:
        self.opens = 0

    def open(self) -> None:
        self.opens += 1
        if self.opens <= 2:
            raise CameraError("no signal")

    def read(self) -> Frame | None:
        return Frame(np.zeros((4, 4, 3), np.uint8), self.opens, 0.0)

    def close(self) -> None:
        pass


def test_live_capture_retries_with_backoff_and_keeps_only_the_newest() -> None:
    camera = FlakyCamera()
    capture = Capture(camera, replay=False, max_backoff=0.2)
    capture.start()
    deadline = time.monotonic() + 10
    frame = None
    while frame is None and time.monotonic() < deadline:
        frame = capture.get(0.5)
    time.sleep(0.2)
    capture.stop()
    assert frame is not None
    assert capture.stats.camera_errors == 2 and capture.stats.camera_restarts == 2
    assert capture.stats.frames_dropped > 0  # nobody took frames: newest kept, rest dropped


def test_config_errors_name_the_key_and_file() -> None:
    config = parse_config(MINIMAL, Path("/etc/lfr-agent/agent.toml"))
    assert config.broker.port == 8883 and config.camera.source == "picamera2:0"
    assert config.client_key == Path("/var/lib/lfr-agent/keys/tls.key")
    assert config.vision.detector == "auto" and config.vision.min_face_px == 40.0
    concourse = parse_config(
        MINIMAL + "[vision]\ndetector = 'yunet'\nmin_face_px = 24\n", Path("a")
    )
    assert concourse.vision.detector == "yunet" and concourse.vision.min_face_px == 24.0
    cases = {
        MINIMAL + "prot = 1\n": "agent.toml: broker.prot: unknown key",
        MINIMAL.replace('host = "mqtt"', "host = 3"): "broker.host: must be a string",
        MINIMAL + "[matching]\nstorage = 'bf16'\n": "matching.storage: must be one of",
        MINIMAL + "[cameras]\n": "[cameras]: unknown section",
        MINIMAL + "[camera]\nwidth = -1\n": "camera.width: must not be negative",
        '[device]\nid = "x"\n[broker]\nhost = "h"\n': "device.site: required key is missing",
        "[device\n": "not valid TOML",
        MINIMAL + "[vision]\ndetector = 'haar'\n": "vision.detector: must be one of",
        MINIMAL + "[vision]\ndetector = 'yunet'\ntiles = 3\n": "vision.tiles: yunet does not",
        MINIMAL + "[vision]\nmin_face_px = 0\n": "vision.min_face_px: must be positive",
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
            parse_config(text, Path("/etc/lfr-agent/agent.toml"))
