"""`lfr-agent bench`'s pure parts: the conclusion rule, throttling bits, board facts, scenes."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.bench import Cell, conclude, cpu_share, decode_throttled, describe_throttling
from agent.bench_scene import cycle, scene
from agent.io.board import board_model, cpu_temperature, throttled

HAS_RUNTIME = any(
    importlib.util.find_spec(m) is not None for m in ("ai_edge_litert", "tflite_runtime")
)


def cell(profile: str, faces: int, fps: float, found: int | None = None) -> Cell:
    return Cell(
        profile,
        1280,
        720,
        faces,
        int(fps * 10),
        10.0,
        5.0,
        faces if found is None else found,
        faces,
        "yunet",
    )


def cells(accurate: float, fast: float) -> list[Cell]:
    return [
        cell("accurate", 3, accurate),
        cell("accurate", 10, accurate / 2),
        cell("fast", 3, fast),
        cell("fast", 10, fast / 2),
    ]


def test_the_most_accurate_sustainable_profile_is_chosen() -> None:
    verdict = conclude(cells(12.5, 25.0), (1280, 720))
    assert (verdict.profile, verdict.camera_fps) == ("accurate", 12)
    assert verdict.lines[-1] == (
        "conclusion: run profile 'accurate' with the camera at 1280x720, at most 12 frames/s"
    )


def test_fast_when_accurate_falls_short_and_the_rate_is_capped() -> None:
    verdict = conclude(cells(8.0, 45.0), (1280, 720))
    assert (verdict.profile, verdict.camera_fps) == ("fast", 30)
    assert any(
        "accurate: NOT sustainable" in line and "8.0 frames/s" in line for line in verdict.lines
    )


def test_nothing_sustainable() -> None:
    verdict = conclude(cells(3.0, 9.9), (1280, 720))
    assert (verdict.profile, verdict.camera_fps) == (None, 0)
    assert "no profile sustains 10 frames/s" in verdict.lines[-1]


def test_missed_faces_are_not_sustainable_however_fast() -> None:
    verdict = conclude([cell("fast", 3, 60.0, found=0)], (1280, 720))
    assert verdict.profile is None
    assert "found 0 of 3 faces" in verdict.lines[0]


def test_other_resolutions_do_not_count() -> None:
    at_1080 = [Cell("fast", 1920, 1080, 3, 300, 10.0, 5.0, 3, 3, "yunet")]
    assert conclude(at_1080, (1280, 720)).profile is None
    assert conclude(at_1080, (1920, 1080)).profile == "fast"


def test_throttling_now_is_named_in_the_conclusion() -> None:
    assert any(
        "throttling during the run" in line
        for line in conclude(cells(20, 30), (1280, 720), throttled=0x50005).lines
    )
    # Only past events (bits 16-19): not throttling now.
    assert not any(
        "throttling during the run" in line
        for line in conclude(cells(20, 30), (1280, 720), throttled=0x50000).lines
    )


def test_decode_throttled() -> None:
    assert decode_throttled(0x50005) == [
        "under-voltage now",
        "throttled now",
        "under-voltage has occurred",
        "throttling has occurred",
    ]
    assert decode_throttled(0) == []
    assert decode_throttled(1 << 30) == ["bit 30"]
    assert describe_throttling(None) == "not reported (no vcgencmd)"
    assert describe_throttling(0).startswith("none")


def test_cpu_share() -> None:
    assert cpu_share([]) is None
    assert cpu_share(cells(10, 20)) == pytest.approx(0.5)


class Vcgencmd:
    def __init__(self, answer: tuple[int, str] | None) -> None:
        self.answer = answer

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        assert list(argv) == ["vcgencmd", "get_throttled"]
        if self.answer is None:
            raise FileNotFoundError(2, "not installed", "vcgencmd")
        return self.answer


def test_throttled_reads_vcgencmd() -> None:
    assert throttled(Vcgencmd((0, "throttled=0x50005\n"))) == 0x50005
    assert throttled(Vcgencmd((0, "throttled=0x0\n"))) == 0
    assert throttled(Vcgencmd(None)) is None
    assert throttled(Vcgencmd((255, "VCHI initialization failed\n"))) is None
    assert throttled(Vcgencmd((0, "throttled=zz\n"))) is None


def test_cpu_temperature(tmp_path: Path) -> None:
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    assert cpu_temperature(zone) == pytest.approx(48.312)
    zone.write_text("garbage")
    assert cpu_temperature(zone) is None
    assert cpu_temperature(tmp_path / "absent") is None


def test_board_model(tmp_path: Path) -> None:
    tree, cpuinfo = tmp_path / "model", tmp_path / "cpuinfo"
    tree.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert board_model(tree, cpuinfo) == "Raspberry Pi 5 Model B Rev 1.0"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n")
    assert board_model(tmp_path / "none", cpuinfo) == "Intel(R) Xeon(R) Processor"
    assert board_model(tmp_path / "none", tmp_path / "none") == "unknown"


def test_scenes_are_deterministic_frames_of_the_asked_size() -> None:
    a, b = scene(1280, 720, 3, 5), scene(1280, 720, 3, 5)
    assert a.shape == (720, 1280, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, scene(1280, 720, 3, 6))  # the faces sway
    assert len(cycle(640, 360, 1, 4)) == 4


@pytest.mark.skipif(not HAS_RUNTIME, reason="no TFLite runtime installed")
@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1920, 1080)])
def test_yunet_finds_every_drawn_face(width: int, height: int) -> None:
    from agent.models import load_detector

    detector = load_detector("yunet_float32.tflite", threads=1, min_face_px=40)
    for faces in (1, 3, 10):
        for frame in cycle(width, height, faces, 4):
            assert len(detector.detect(frame)) == faces


@given(st.integers(-1, 255), st.text(max_size=200))
def test_any_vcgencmd_output_is_a_number_or_none(code: int, out: str) -> None:
    bits = throttled(lambda argv: (code, out))
    assert bits is None or (isinstance(bits, int) and isinstance(describe_throttling(bits), str))
