"""The bench's detection section: the matching rule on hand-made boxes, and one quick run on
real composites (skipped with a reason when ../shared is absent). No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tools.bench import clip_truth, detection
from tools.bench.composites import SIZE_BINS, TRUTH, composites
from tools.bench.detection import assign, matches
from tools.bench.scenes import LFW, MEDIA

needs_lfw = pytest.mark.skipif(not LFW.is_dir(), reason=f"{LFW} is absent (../shared/datasets)")


def test_a_hit_is_a_centre_inside_the_truth_at_a_similar_size() -> None:
    gt = (100.0, 100.0, 140.0, 150.0)
    assert matches((95.0, 95.0, 150.0, 160.0), gt)  # Haar-like larger square
    assert matches((108.0, 112.0, 132.0, 140.0), gt)  # HOG-like tighter box
    assert not matches((0.0, 0.0, 300.0, 300.0), gt)  # too large: a body, not the face
    assert not matches((150.0, 100.0, 190.0, 150.0), gt)  # beside it


def test_each_face_counts_once_duplicates_and_ignored_regions_are_not_false() -> None:
    gts = [(100.0, 100.0, 140.0, 150.0)]
    ignore = [(400.0, 400.0, 480.0, 500.0)]
    dets = [
        ((101.0, 101.0, 141.0, 151.0), 0.9),
        ((99.0, 102.0, 139.0, 149.0), 0.8),  # a duplicate of the same face
        ((410.0, 420.0, 470.0, 490.0), 0.7),  # a real face of the background
        ((600.0, 100.0, 640.0, 150.0), 0.6),  # false
    ]
    hit, hit_iou, false = assign(dets, gts, ignore)
    assert hit == [True] and hit_iou == [True]
    assert false == [50.0]


@needs_lfw
def test_composites_are_reproducible_and_their_truth_fits_the_frame() -> None:
    first = list(composites(1280, 720, 2, 6, seed=3))
    again = list(composites(1280, 720, 2, 6, seed=3))
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.image, b.image)
        assert [f.box for f in a.faces] == [f.box for f in b.faces]
        assert a.image.shape == (720, 1280, 3)
        for face in a.faces:
            x0, y0, x1, y1 = face.box
            assert 0 <= x0 < x1 <= 1280 and 0 <= y0 < y1 <= 720
            assert SIZE_BINS[0][0] <= face.height < SIZE_BINS[-1][1]


@needs_lfw
@pytest.mark.integration
def test_quick_detection_section_writes_its_report(tmp_path: Path) -> None:
    assert detection.main(["--quick", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "detection.json").read_text())
    det = doc["measured"]["detection"]
    names = [d["name"] for d in det["detectors"]]
    assert "BlazeFace short" in names and "BlazeFace full tiles=3" in names
    for res in ("1280x720", "1920x1080"):
        rows = det["composites"][res]
        assert set(rows) == set(names)
        assert sum(b["faces"] for b in rows["BlazeFace short"]["bins"]) > 0
        # The big faces are found by our tiled detector: the section measures something real.
        assert rows["BlazeFace short tiles=3"]["bins"][-1]["recall"] > 0
    text = (tmp_path / "detection.md").read_text()
    assert "Recall per face-size bin" in text and "The real clips" in text
    assert (tmp_path / "bench_detection.png").stat().st_size > 1000


@pytest.mark.skipif(not MEDIA.is_dir(), reason=f"{MEDIA} is absent (../shared/media)")
@pytest.mark.integration
def test_committed_clip_truth_is_what_the_tool_makes_from_the_accepted_tracks(
    tmp_path: Path,
) -> None:
    clip = "intel_face-demographics-walking"
    committed = json.loads((TRUTH / f"{clip}.json").read_text())
    proposals = clip_truth.propose(clip, tmp_path)
    doc = json.loads(proposals.read_text())
    again = {
        str(i): [c["box"] for c in cands if c["track"] in committed["accepted_tracks"]]
        for i, cands in enumerate(doc["frames"])
    }
    assert {k: v for k, v in again.items() if v} == committed["faces"]
    assert (tmp_path / f"{clip}.tracks.png").stat().st_size > 1000


def test_every_committed_clip_truth_is_well_formed() -> None:
    files = sorted(TRUTH.glob("*.json"))
    assert len(files) == 4
    for path in files:
        doc = json.loads(path.read_text())
        width, height = doc["size"]
        assert doc["accepted_tracks"] and doc["note"]
        for i, boxes in doc["faces"].items():
            assert 0 <= int(i) < doc["frames"]
            for x0, y0, x1, y1 in boxes:
                assert 0 <= x0 < x1 <= width + 2 and 0 <= y0 < y1 <= height + 2
