"""Enrolment photo quality (issue 16 §3): the score, its place in the entries file, enrol's
table of the weakest entries, and seal's warning and --min-quality refusal."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from central.enrol import (
    MIN_FACE_DETAIL,
    QUALITY_WARN,
    disagreeing,
    disagreeing_table,
    photo_quality,
    weakest,
)
from central.thresholds import one_to_one
from protocol import errors
from protocol.entries import Entries, Entry, dump_entries_file, parse_entries_file
from tests.conftest import make_entries
from tests.unit.test_cli_foundation import enrolled, seal  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]


def test_photo_quality_moves_the_right_way() -> None:
    sharp = 100 * MIN_FACE_DETAIL
    assert photo_quality(60, sharp, 0.0) == pytest.approx(0.99, abs=0.01)
    assert photo_quality(200, sharp, 0.0) == photo_quality(60, sharp, 0.0)  # 60 px is all
    assert photo_quality(30, sharp, 0.0) == pytest.approx(photo_quality(60, sharp, 0.0) / 2, 1e-3)
    assert photo_quality(112, MIN_FACE_DETAIL, 0.0) == pytest.approx(0.5)  # the blur refusal
    # The warning level: about a sharp, frontal face at the 40 px floor.
    assert (
        photo_quality(40, 4 * MIN_FACE_DETAIL, 0.0)
        > QUALITY_WARN
        > photo_quality(40, 2 * MIN_FACE_DETAIL, 0.0)
    )
    assert photo_quality(112, sharp, 0.5) < photo_quality(112, sharp, 0.1)
    assert photo_quality(112, sharp, float("nan")) == 0.0
    assert 0.0 <= photo_quality(-5, -1, 3.0) <= 1.0


def _with_quality(entries: Entries, *values: tuple[float, ...] | None) -> Entries:
    items = tuple(
        dataclasses.replace(e, quality=q) for e, q in zip(entries.entries, values, strict=True)
    )
    return dataclasses.replace(entries, entries=items)


def test_the_entries_file_keeps_one_quality_per_photo() -> None:
    entries = _with_quality(make_entries(count=2, per_entry=2), (0.8, 0.1), None)
    parsed = parse_entries_file(dump_entries_file(entries))
    assert [e.quality for e in parsed.entries] == [(0.8, 0.1), None]
    for bad in ("[0.5]", "[0.5, 1.5]", '[0.5, "x"]', "[0.5, true]", "[0.5, 1e400]"):
        data = dump_entries_file(entries).replace(b"[0.8,0.1]", bad.encode())
        with pytest.raises(errors.RejectedInput, match=r"quality|items"):
            parse_entries_file(data)


def test_enrol_lists_the_weakest_entries_first() -> None:
    entries = _with_quality(make_entries(count=3, per_entry=1), (0.9,), (0.1,), None)
    lines = weakest(entries)
    assert f"1 below {QUALITY_WARN}" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["WL-0001", "WL-0000"]


def test_seal_warns_about_weak_photos_and_refuses_them_with_min_quality(
    enrolled: Path,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = parse_entries_file(Path("entries.json").read_bytes())
    count = len(plain.entries)
    rated = _with_quality(plain, (0.1, 0.9), *[(0.8, 0.8)] * (count - 1))
    Path("entries.json").write_bytes(dump_entries_file(rated))
    capsys.readouterr()
    assert seal(1, "ops-1", "ops-2") == 0
    err = capsys.readouterr().err
    assert f"1 entries have a photo of quality below {QUALITY_WARN} (weakest: WL-0000 0.100)" in err
    assert seal(2, "ops-1", "ops-2", extra=("--min-quality", "0.3")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "below --min-quality 0.3 (weakest: WL-0000" in err
    assert not Path("wl2.jws").exists()
    Path("entries.json").write_bytes(dump_entries_file(plain))
    assert seal(2, "ops-1", "ops-2", extra=("--min-quality", "0.3")) == 2
    assert "have no photo quality" in capsys.readouterr().err


def _pair(cosine: float, dim: int) -> npt.NDArray[np.float32]:
    """Two unit rows at this cosine."""
    a, b = np.zeros(dim, np.float32), np.zeros(dim, np.float32)
    a[0], b[0], b[1] = 1.0, cosine, np.sqrt(1.0 - cosine**2)
    return np.stack([a, b])


def _accurate_entries(*photos: npt.NDArray[np.float32]) -> Entries:
    manifest = json.loads((ROOT / "models" / "MANIFEST.json").read_text())
    profile = manifest["profiles"]["accurate"]
    dim = photos[0].shape[1]
    items = tuple(Entry(f"WL-{i:04d}", "wanted", None, p) for i, p in enumerate(photos))
    return Entries(profile["id"], dim, items)


def test_entries_whose_photos_disagree_are_listed_lowest_first() -> None:
    three = np.vstack([_pair(0.9, 8), _pair(0.4, 8)[1:]])  # least alike: rows 0 and 2, 0.4
    entries = _accurate_entries(_pair(0.9, 8), _pair(0.5, 8), three, _pair(1.0, 8)[:1])
    low = disagreeing(entries, 0.7)
    assert [(ref, n) for _, ref, n in low] == [("WL-0002", 3), ("WL-0001", 2)]
    assert low[0][0] == pytest.approx(0.4, abs=1e-6) and low[1][0] == pytest.approx(0.5, abs=1e-6)
    assert disagreeing(entries, 0.3) == []
    lines = disagreeing_table(entries, 0.7)
    assert "(2: two of their photos score below the profile's 1:1 threshold 0.7000" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["WL-0002", "WL-0001"]
    assert disagreeing_table(entries, 0.3) == []


def test_seal_warns_about_an_entry_whose_photos_disagree(
    enrolled: Path,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    floor = one_to_one(_accurate_entries(_pair(1.0, 4)).embedder_sha256, None)
    assert floor is not None
    entries = _accurate_entries(_pair(0.95, 512), _pair(floor - 0.2, 512), _pair(0.9, 512))
    Path("entries.json").write_bytes(dump_entries_file(entries))
    capsys.readouterr()
    assert seal(1, "ops-1", "ops-2", extra=("--threshold", "0.9")) == 0  # above the 1:1 one
    err = capsys.readouterr().err
    assert (
        f"1 entries have photos that score below the profile's 1:1 threshold {floor:.4f} "
        f"against each other (lowest: WL-0001 {floor - 0.2:.3f})" in err
    )
    # A test backend's list: no 1:1 threshold to judge by, no warning.
    Path("entries.json").write_bytes(dump_entries_file(make_entries(count=4, dim=32)))
    assert seal(2, "ops-1", "ops-2") == 0
    assert "against each other" not in capsys.readouterr().err


@pytest.mark.parametrize("terminal", [True, False])
def test_enrol_shows_progress_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    # A log file (automation, CI, a walk-through) would get one carriage-return line per image.
    import io
    import sys

    from PIL import Image

    from central.enrol import enrol

    class Stderr(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    for ref in ("S-1", "S-2"):
        (tmp_path / ref).mkdir()
        Image.new("RGB", (96, 96), (128, 128, 128)).save(tmp_path / ref / "a.jpg")
    err = Stderr()
    monkeypatch.setattr(sys, "stderr", err)
    entries, outcomes = enrol(tmp_path, profile="fast")
    assert len(outcomes) == 2 and not entries.entries  # grey squares: no face, both refused
    assert ("enrolling 2/2 images" in err.getvalue()) is terminal
