"""``[vision] detector``: ``auto`` picks YuNet for frames of 720 rows or more, BlazeFace below,
from the frames themselves; a fixed setting runs its own detector whatever the frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from agent.config import parse_config
from agent.detector_choice import ChosenDetector, resolve
from agent.pipeline import Detection

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
MINIMAL = '[device]\nid = "cam-01"\nsite = "kx"\n[broker]\nhost = "mqtt"\n'


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]
    score: float
    keypoints: F32


@dataclass
class Recording:
    """A detector that names itself in the face it returns and records the tiles it was given."""

    name: str
    tiles: list[int] = field(default_factory=list)

    def detect(self, frame: U8, tiles: int = 1) -> list[Detection]:
        self.tiles.append(tiles)
        score = {"blazeface": 0.25, "yunet": 0.75}[self.name]
        return [Face((0.0, 0.0, 1.0, 1.0), score, np.zeros((4, 2), np.float32))]


def frame(height: int, width: int) -> U8:
    return np.zeros((height, width, 3), np.uint8)


def test_the_default_is_auto_and_auto_decides_by_frame_height() -> None:
    config = parse_config(MINIMAL, Path("agent.toml"))
    assert config.vision.detector == "auto"
    assert [resolve("auto", h) for h in (270, 480, 719, 720, 1080, 2160)] == [
        "blazeface",
        "blazeface",
        "blazeface",
        "yunet",
        "yunet",
        "yunet",
    ]
    assert resolve("blazeface", 1080) == "blazeface" and resolve("yunet", 270) == "yunet"


def test_auto_runs_the_detector_for_each_frame_size_and_reports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="agent.detector_choice")
    blaze, yunet = Recording("blazeface"), Recording("yunet")
    chosen = ChosenDetector("auto", {"blazeface": blaze, "yunet": yunet})
    assert chosen.describe() == "auto"  # before the first frame
    faces = chosen.detect(frame(1080, 1920), tiles=3)
    assert [f.score for f in faces] == [0.75] and chosen.describe() == "yunet"
    # YuNet never tiles (its scale comes from min_face_px); the tiles setting is BlazeFace's.
    assert yunet.tiles == [1] and blaze.tiles == []
    faces = chosen.detect(frame(480, 640), tiles=3)
    assert [f.score for f in faces] == [0.25] and chosen.describe() == "blazeface"
    assert blaze.tiles == [3]
    for height in (1080, 480, 1080, 480):
        chosen.detect(frame(height, 640))
    # Each detector is announced once, however often the frame size changes.
    assert [r.getMessage() for r in caplog.records if r.name == "agent.detector_choice"] == [
        "detector: yunet for 1920x1080 frames (vision.detector = auto)",
        "detector: blazeface for 640x480 frames (vision.detector = auto)",
    ]


def test_a_fixed_setting_ignores_the_frame_size() -> None:
    blaze = Recording("blazeface")
    chosen = ChosenDetector("blazeface", {"blazeface": blaze})
    assert chosen.describe() == "blazeface"
    chosen.detect(frame(1080, 1920), tiles=2)
    assert blaze.tiles == [2] and chosen.describe() == "blazeface"


def test_auto_needs_both_detectors() -> None:
    with pytest.raises(ValueError, match="needs"):
        ChosenDetector("auto", {"yunet": Recording("yunet")})


def test_check_names_the_detector_for_the_configured_source(tmp_path: Path) -> None:
    from PIL import Image

    from agent.check import _detector

    for name, (w, h) in {"hd": (1280, 720), "small": (640, 480)}.items():
        (tmp_path / name).mkdir()
        Image.new("RGB", (w, h)).save(tmp_path / name / "0.png")

    def row(extra: str) -> str:
        return _detector(parse_config(MINIMAL + extra, tmp_path / "agent.toml"))

    assert row(f'[camera]\nsource = "{tmp_path / "hd"}"\n').startswith("yunet for 1280x720 frames")
    assert row(f'[camera]\nsource = "file:{tmp_path / "small"}"\n').startswith(
        "blazeface for 640x480 frames"
    )
    assert row("[camera]\nwidth = 1920\nheight = 1080\n").startswith(
        "yunet for 1920x1080 (camera.width/height"
    )
    assert row('[camera]\nsource = "rtsp://cam/1"\n').startswith("chosen at the first frame")
    assert row('[vision]\ndetector = "blazeface"\ntiles = 3\n') == (
        "blazeface (vision.detector), tiles 3"
    )
