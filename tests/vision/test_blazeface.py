"""BlazeFace anchors, decoding and weighted NMS (pure numpy), and detection on real images."""

from __future__ import annotations

import numpy as np

from agent.vision import blazeface
from agent.vision.detector import FaceDetector, pick_central
from agent.vision.image import read_image
from agent.vision.manifest import Manifest
from tests.vision.conftest import LFW, needs_lfw, needs_runtime


def test_short_range_anchor_layout() -> None:
    a = blazeface.anchors(128, (8, 16), (2, 6))
    assert a.shape == (896, 2)
    assert np.allclose(a[0], [4, 4]) and np.allclose(a[1], [4, 4]) and np.allclose(a[2], [12, 4])
    assert np.allclose(a[512], [8, 8]) and np.allclose(a[-1], [120, 120])


def test_decode_places_box_and_keypoints_relative_to_anchor() -> None:
    reg = np.zeros((896, 16), dtype=np.float32)
    logits = np.full((896, 1), -50.0, dtype=np.float32)
    i = 512 + 6 * (3 * 8 + 5)  # stride 16, row 3, column 5 -> centre (88, 56)
    reg[i, :4] = [2.0, -1.0, 40.0, 50.0]
    reg[i, 4:6] = [-10.0, -8.0]
    logits[i] = 4.0
    boxes, scores, kps = blazeface.decode(
        reg, logits, input_size=128, strides=(8, 16), per_cell=(2, 6), min_score=0.5
    )
    assert boxes.shape == (1, 4)
    assert np.allclose(boxes[0], [70, 30, 110, 80])
    assert np.allclose(kps[0, 0], [78, 48])
    assert np.isclose(scores[0], 1 / (1 + np.exp(-4.0)))


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.9, 0.6, 0.8], dtype=np.float32)
    kps = np.zeros((3, 6, 2), dtype=np.float32)
    kps[1] += 1.0
    dets = blazeface.weighted_nms(boxes, scores, kps, 0.3)
    assert len(dets) == 2
    assert dets[0].score == np.float32(0.9)
    assert np.isclose(dets[0].box[0], 0.6 / 1.5)  # score-weighted mean of 0 and 1
    assert np.allclose(dets[0].keypoints, 0.4)
    assert dets[1].box == (50.0, 50.0, 60.0, 60.0)


@needs_runtime
@needs_lfw
def test_detects_one_face_in_lfw_image(manifest: Manifest) -> None:
    det = FaceDetector.from_manifest(manifest, manifest.profile("fast").detector)
    img = read_image(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg")
    dets = det.detect(img)
    assert len(dets) == 1
    d = dets[0]
    assert d.score > 0.8
    assert 60 < (d.box[0] + d.box[2]) / 2 < 190 and 60 < (d.box[1] + d.box[3]) / 2 < 190
    right_eye, left_eye, nose, mouth = d.keypoints[:4]
    assert right_eye[0] < nose[0] < left_eye[0]  # subject's right eye is on the image left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]


@needs_runtime
@needs_lfw
def test_detects_four_faces_in_a_mosaic(manifest: Manifest) -> None:
    names = ["Colin_Powell", "George_W_Bush", "Tony_Blair", "Serena_Williams"]
    tiles = [read_image(LFW / n / f"{n}_0001.jpg") for n in names]
    top = np.concatenate(tiles[:2], axis=1)
    bottom = np.concatenate(tiles[2:], axis=1)
    mosaic = np.ascontiguousarray(np.concatenate([top, bottom], axis=0))
    det = FaceDetector.from_manifest(manifest, manifest.profile("fast").detector)
    dets = det.detect(mosaic)
    assert len(dets) == 4
    cells = sorted(
        (int((d.box[1] + d.box[3]) / 2 // 250), int((d.box[0] + d.box[2]) / 2 // 250)) for d in dets
    )
    assert cells == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert len(det.detect(mosaic, tiles=2)) == 4  # tiling finds the same faces, merged once
    c = pick_central(dets[:1], 500, 500)
    assert c is dets[0]


@needs_runtime
@needs_lfw
def test_tiling_finds_a_small_face_in_a_1080p_frame(manifest: Manifest) -> None:
    frame = np.zeros((1080, 1920, 3), dtype=np.uint8)
    frame[600:850, 1500:1750] = read_image(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg")
    det = FaceDetector.from_manifest(manifest, "blazeface_full_float32.tflite")
    assert det.detect(frame) == []  # a ~95 px face is too small for one whole-frame pass
    dets = det.detect(frame, tiles=3)
    assert len(dets) == 1
    x0, y0, x1, y1 = dets[0].box
    assert 1550 < (x0 + x1) / 2 < 1700 and 650 < (y0 + y1) / 2 < 800
