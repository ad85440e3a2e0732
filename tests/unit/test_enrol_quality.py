"""Enrolment photo quality (issue 16 §3): the score, its place in the entries file, enrol's
table of the weakest entries, and seal's warning and --min-quality refusal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from central.enrol import MIN_FACE_DETAIL, QUALITY_WARN, photo_quality, weakest
from protocol import errors
from protocol.entries import Entries, dump_entries_file, parse_entries_file
from tests.conftest import make_entries
from tests.unit.test_cli_foundation import enrolled, seal  # noqa: F401 - fixture


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
