"""YuNet: the numpy decode, and our TFLite conversion + decode against OpenCV's FaceDetectorYN.

The reference is ``cv2.FaceDetectorYN`` on the source ONNX (committed in models/reference, so
the comparison runs in CI); both see the same BGR image at its own size, so the comparison
covers the conversion, the padding to a multiple of 32, the decode and the NMS.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.vision import yunet
from agent.vision.image import read_image
from agent.vision.manifest import Manifest
from agent.vision.yunet_detector import PIXEL_OFFSET, YuNetDetector
from tests.vision.conftest import LFW, MODELS, needs_lfw, needs_runtime

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (a dev dependency) is missing")

NAME = "yunet_float32.tflite"
ONNX = MODELS / "reference" / "face_detection_yunet_2023mar_int8bq.onnx"
MEDIA = LFW.parent.parent / "media"
needs_media = pytest.mark.skipif(
    not MEDIA.is_dir(), reason=f"clips not found at {MEDIA} (../shared/media is absent)"
)
U8 = np.ndarray


def test_priors_are_row_major_cells_of_the_padded_input() -> None:
    p8, p16, p32 = yunet.priors(100, 40)  # padded to 128 x 64
    assert p8.shape == (16 * 8, 2) and p16.shape == (8 * 4, 2) and p32.shape == (4 * 2, 2)
    assert p8[1].tolist() == [1, 0] and p8[16].tolist() == [0, 1]


def test_the_priors_cache_is_bounded_when_the_frame_size_keeps_changing() -> None:
    for side in range(32, 32 * 21, 32):  # 20 sizes, as a folder of differently sized photos
        yunet.priors(side, side)
    info = yunet.priors.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize <= 8


def test_decode_follows_opencv_formulae() -> None:
    n = [(64 // s) * (64 // s) for s in yunet.STRIDES]  # a 64 x 64 input
    cls = [np.zeros(k, np.float32) for k in n]
    obj = [np.zeros(k, np.float32) for k in n]
    bbox = [np.zeros((k, 4), np.float32) for k in n]
    kps = [np.zeros((k, 10), np.float32) for k in n]
    i = 1 * 4 + 2  # stride 16: row 1, column 2
    cls[1][i], obj[1][i] = 1.2, 0.81  # cls is clipped to 1 before sqrt(cls * obj)
    bbox[1][i] = [0.5, 0.25, np.log(2.0), np.log(3.0)]
    kps[1][i] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    boxes, scores, marks = yunet.decode(cls, obj, bbox, kps, width=64, height=64, min_score=0.5)
    assert scores.tolist() == pytest.approx([0.9])
    cx, cy, w, h = (2 + 0.5) * 16, (1 + 0.25) * 16, 2 * 16, 3 * 16
    assert boxes[0].tolist() == pytest.approx([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    assert marks[0, 0].tolist() == pytest.approx([(2 + 0.1) * 16, (1 + 0.2) * 16])
    assert marks[0, 4].tolist() == pytest.approx([(2 + 0.9) * 16, (1 + 1.0) * 16])


def test_nms_keeps_the_best_of_each_overlapping_group() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.7, 0.9, 0.8, 0.1], np.float32)
    assert yunet.nms(boxes, scores, 0.3).tolist() == [1, 2]
    assert yunet.nms(boxes, scores, 0.3, top_k=1).tolist() == [1]


def nms_candidate_by_candidate(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, top_k: int
) -> list[int]:
    """Greedy NMS as written before 2026-12-01: each candidate against every box kept so far."""
    order = np.argsort(-scores, kind="stable")[:top_k]
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    kept: list[int] = []
    for i in order:
        if kept:
            k = np.asarray(kept)
            iw = np.clip(np.minimum(x1[i], x1[k]) - np.maximum(x0[i], x0[k]), 0, None)
            ih = np.clip(np.minimum(y1[i], y1[k]) - np.maximum(y0[i], y0[k]), 0, None)
            inter = iw * ih
            iou = inter / np.maximum(area[i] + area[k] - inter, 1e-9)
            if (iou > iou_threshold).any():
                continue
        kept.append(int(i))
    return kept


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 60, width=32),  # x0, y0, width, height: a small field, so boxes overlap
            st.floats(0, 60, width=32),
            st.floats(-2, 30, width=32),  # a few empty or inverted boxes too
            st.floats(-2, 30, width=32),
            st.sampled_from([0.1, 0.5, 0.6, 0.6, 0.9, 1.0]),  # ties keep the stable order
        ),
        max_size=60,
    ),
    st.floats(0, 1),
    st.integers(1, 70),
)
def test_nms_by_kept_box_keeps_what_the_candidate_loop_keeps(
    rows: list[tuple[float, float, float, float, float]], threshold: float, top_k: int
) -> None:
    if rows:
        a = np.array(rows, dtype=np.float32)
        boxes = np.stack([a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]], axis=1)
        scores = a[:, 4]
    else:
        boxes, scores = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    expected = nms_candidate_by_candidate(boxes, scores, threshold, top_k)
    assert yunet.nms(boxes, scores, threshold, top_k).tolist() == expected


def test_keypoints_are_blazeface_order_with_the_mouth_centre() -> None:
    lm = np.array([[1, 2], [5, 2], [3, 4], [2, 6], [4, 8]], np.float32)
    d = yunet.YuNetDetection((0, 0, 6, 9), 0.9, lm)
    assert d.keypoints.tolist() == [[1, 2], [5, 2], [3, 4], [3, 7]]


def test_second_look_window_is_a_square_around_the_box_and_crops_resize_to_one_size() -> None:
    look = yunet.SecondLook()
    assert look.size == 128  # a 0.8-wide box ends up face_px = 64 tall
    assert yunet.look_window((100.0, 200.0, 132.0, 240.0), look) == (76, 180, 80)
    assert yunet.look_window((-10.0, -10.0, 10.0, 10.0), look) == (-20, -20, 40)
    with pytest.raises(ValueError, match="empty"):
        yunet.look_window((5.0, 5.0, 5.0, 9.0), look)


def test_second_look_confirms_only_the_same_face_at_the_confirm_score() -> None:
    look = yunet.SecondLook(confirm_score=0.7)
    box = (100.0, 100.0, 132.0, 140.0)
    same = np.array([[102, 98, 134, 142]], np.float32)
    assert yunet.confirmed(box, same, np.array([0.75], np.float32), look)
    assert not yunet.confirmed(box, same, np.array([0.69], np.float32), look)
    beside = np.array([[115, 100, 147, 140]], np.float32)  # centre 0.47 of the width away
    assert not yunet.confirmed(box, beside, np.array([0.95], np.float32), look)
    bigger = np.array([[84, 80, 148, 160]], np.float32)  # twice as tall: a head, not the face
    assert not yunet.confirmed(box, bigger, np.array([0.95], np.float32), look)
    empty = np.zeros((0, 4), np.float32)
    assert not yunet.confirmed(box, empty, np.zeros(0, np.float32), look)
    both = np.concatenate([beside, same])
    assert yunet.confirmed(box, both, np.array([0.95, 0.8], np.float32), look)


def test_input_scale_maps_the_smallest_face_to_the_models_and_never_upsamples() -> None:
    assert yunet.input_scale(36, 12) == pytest.approx(1 / 3)
    assert yunet.input_scale(8, 12) == 1.0
    assert yunet.input_size(1920, 1080, 0.5) == (960, 540)
    assert yunet.padded(540) == 544
    with pytest.raises(ValueError, match="positive"):
        yunet.input_scale(0, 12)


def test_reference_onnx_is_the_manifests_source(manifest: Manifest) -> None:
    source = manifest.raw["models"][NAME]["source"]
    assert hashlib.sha256(ONNX.read_bytes()).hexdigest() == source["member_sha256"]


def reference(bgr: U8, score: float, nms: float) -> np.ndarray:
    """OpenCV's detections: rows of box x, y, w, h, 5 landmarks x, y, score."""
    h, w = bgr.shape[:2]
    fd = cv2.FaceDetectorYN.create(str(ONNX), "", (w, h), score, nms, 5000)
    _, faces = fd.detect(bgr)
    return np.zeros((0, 15), np.float32) if faces is None else faces


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def assert_same_as_opencv(det: YuNetDetector, rgb: U8, score: float, nms: float) -> int:
    """Every detection on either side (clear of the threshold by 0.01) has its twin on the
    other: IoU >= 0.95, every landmark within 1 px. Returns how many were compared."""
    ref = reference(np.ascontiguousarray(rgb[..., ::-1]), score, nms)
    ours = det.decoded(rgb)  # the second look comes after; it has no reference
    # Ours are continuous coordinates; OpenCV's are pixel-index ones (see yunet_detector).
    ob = [np.asarray(d.box) - PIXEL_OFFSET for d in ours]
    rb = [np.array([r[0], r[1], r[0] + r[2], r[1] + r[3]]) for r in ref]
    clear = score + 0.01
    for i, r in enumerate(ref):
        if r[14] < clear:
            continue
        j = max(range(len(ours)), key=lambda k: iou(ob[k], rb[i]), default=None)
        assert j is not None and iou(ob[j], rb[i]) >= 0.95, f"OpenCV's face {i} not found"
        marks = ours[j].landmarks - PIXEL_OFFSET
        assert np.abs(marks - r[4:14].reshape(5, 2)).max() <= 1.0
        assert abs(ours[j].score - r[14]) < 0.01
    for j, d in enumerate(ours):
        if d.score >= clear:
            assert any(iou(ob[j], b) >= 0.95 for b in rb), f"our face {j} not in OpenCV's"
    return sum(1 for r in ref if r[14] >= clear)


@pytest.fixture(scope="module")
def detector(manifest: Manifest) -> YuNetDetector:
    return YuNetDetector.from_manifest(manifest, NAME)


def drawn_faces() -> U8:
    """Three cartoon faces (skin ellipse, hair, eyes, nose, mouth) of 36-100 px, slightly blurred:
    YuNet scores them up to 0.9, so the comparison needs no dataset."""
    from PIL import Image, ImageDraw, ImageFilter

    im = Image.new("RGB", (320, 224), (120, 130, 140))
    d = ImageDraw.Draw(im)
    for cx, cy, r in [(80, 110, 50), (220, 90, 30), (260, 180, 18)]:
        d.ellipse([cx - r, cy - 1.25 * r, cx + r, cy + 1.25 * r], fill=(225, 185, 160))
        for ex in (-0.4, 0.4):
            x, y = cx + ex * r, cy - 0.3 * r
            d.ellipse([x - 0.15 * r, y - 0.08 * r, x + 0.15 * r, y + 0.08 * r], fill=(40, 30, 30))
        nose = [(cx, cy - 0.1 * r), (cx - 0.12 * r, cy + 0.25 * r), (cx + 0.12 * r, cy + 0.25 * r)]
        d.polygon(nose, fill=(200, 150, 130))
        mouth = [cx - 0.35 * r, cy + 0.6 * r, cx + 0.35 * r, cy + 0.6 * r]
        d.line(mouth, fill=(150, 50, 50), width=max(1, int(0.08 * r)))
        d.ellipse([cx - 1.05 * r, cy - 1.45 * r, cx + 1.05 * r, cy - 0.7 * r], fill=(60, 40, 20))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(1)))


@needs_runtime
def test_matches_opencv_on_drawn_faces(detector: YuNetDetector) -> None:
    """No dataset needed (CI): at the shipped threshold and NMS, and with every raw candidate
    above 0.02 and no suppression (NMS IoU 1), one to one."""
    img = drawn_faces()
    assert assert_same_as_opencv(detector, img, detector.min_score, detector.iou) >= 1
    low = YuNetDetector(detector.model, detector.spec, min_score=0.02)
    low.iou = 1.0
    assert assert_same_as_opencv(low, img, 0.02, 1.0) >= 20


@needs_runtime
def test_reused_input_buffers_give_what_a_fresh_detector_gives(
    detector: YuNetDetector, manifest: Manifest
) -> None:
    """The padded input is reused per image size: an image of another size with the same
    padding (224 and 208 rows both pad to 224), then the first again, gives exactly what a
    new detector gives on each, and RGB uint8 in equals the BGR float the network takes."""
    img = drawn_faces()
    crop = np.ascontiguousarray(img[:208, :300])
    fresh = YuNetDetector.from_manifest(manifest, NAME)
    first = fresh.raw(img, rgb=True)
    detector.raw(img, rgb=True)
    for image, want in [(crop, fresh.raw(crop[..., ::-1].astype(np.float32))), (img, first)]:
        got = detector.raw(image, rgb=True)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


@needs_runtime
@needs_lfw
@pytest.mark.parametrize(
    "name", ["Colin_Powell_0001", "George_W_Bush_0010", "Serena_Williams_0001", "Tony_Blair_0001"]
)
def test_matches_opencv_on_lfw_photos(detector: YuNetDetector, name: str) -> None:
    rgb = read_image(LFW / name.rsplit("_", 1)[0] / f"{name}.jpg")
    assert assert_same_as_opencv(detector, rgb, detector.min_score, detector.iou) >= 1


def gif_frames(path: Path, every: int) -> list[U8]:
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return [
            np.asarray(f.convert("RGB"))
            for i, f in enumerate(ImageSequence.Iterator(im))
            if i % every == 0
        ]


@needs_runtime
@needs_media
@pytest.mark.parametrize(
    "clip",
    ["intel_face-demographics-walking.gif", "intel_head-pose-face-detection-female-and-male.gif"],
)
def test_matches_opencv_on_clip_frames_with_small_faces(detector: YuNetDetector, clip: str) -> None:
    compared = sum(
        assert_same_as_opencv(detector, f, detector.min_score, detector.iou)
        for f in gif_frames(MEDIA / clip, 8)
    )
    assert compared >= 1


@needs_runtime
@needs_lfw
def test_min_face_px_scales_a_1080p_frame_and_returns_frame_coordinates(
    manifest: Manifest,
) -> None:
    from PIL import Image

    face = read_image(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg")
    small = np.asarray(Image.fromarray(face).resize((100, 100), Image.Resampling.BILINEAR))
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    frame[700:800, 1500:1600] = small  # a face box of about 40 px
    det = YuNetDetector.from_manifest(manifest, NAME, min_face_px=40)
    assert det.input_size(1920, 1080) == (1152, 648)
    dets = det.detect(frame)
    assert len(dets) == 1
    x0, y0, x1, y1 = dets[0].box
    assert 1530 < (x0 + x1) / 2 < 1570 and 730 < (y0 + y1) / 2 < 780
    right_eye, left_eye, nose, mouth = dets[0].keypoints
    assert right_eye[0] < nose[0] < left_eye[0] and nose[1] < mouth[1]
    with pytest.raises(ValueError, match="tile"):
        det.detect(frame, tiles=2)


@needs_runtime
def test_load_profile_takes_the_configured_detector() -> None:
    from agent.models import load_profile

    vision = load_profile("fast", MODELS, 1, detector="yunet", min_face_px=48)
    assert vision.detector.setting == "yunet" and set(vision.detector.detectors) == {"yunet"}
    yunet = vision.detector.detectors["yunet"]
    assert isinstance(yunet, YuNetDetector)
    assert yunet.scale_for_min_face == pytest.approx(24 / 48)
    assert (
        NAME in vision.model_hashes and "blazeface_short_float32.tflite" not in vision.model_hashes
    )
    default = load_profile("fast", MODELS, 1)
    assert default.detector.setting == "blazeface"
    assert not isinstance(default.detector.detectors["blazeface"], YuNetDetector)


@needs_runtime
@needs_lfw
def test_second_look_keeps_small_real_faces_and_only_filters_what_decoded_found(
    manifest: Manifest,
) -> None:
    """Real LFW faces of 24-40 px on a 1080p frame (the bin where YuNet's scores are lowest)
    survive the second look; what it drops is what an impossible confirm score drops, i.e.
    only decoded detections under ``sure_score``, and nothing is added or moved."""
    from PIL import Image

    frame = np.full((1080, 1920, 3), 90, np.uint8)
    names = ["Colin_Powell", "Tony_Blair", "Serena_Williams", "George_W_Bush"]
    squares = []
    for i, (name, side) in enumerate(zip(names, (60, 70, 80, 90), strict=True)):
        face = read_image(LFW / name / f"{name}_0001.jpg")  # a face about 0.45 of the photo
        small = np.asarray(Image.fromarray(face).resize((side, side), Image.Resampling.BILINEAR))
        x = 200 + 400 * i
        frame[400 : 400 + side, x : x + side] = small
        squares.append((x + 0.25 * side, 400 + 0.25 * side, x + 0.75 * side, 400 + 0.75 * side))
    det = YuNetDetector.from_manifest(manifest, NAME, min_face_px=24)
    decoded = [(d.box, d.score) for d in det.decoded(frame)]
    # Tony Blair's photo has a second man's face at its left edge: real too, and kept.
    kept = [(d.box, d.score) for d in det.detect(frame)]
    assert kept == decoded
    for x0, y0, x1, y1 in squares:
        assert any(x0 < (b[0] + b[2]) / 2 < x1 and y0 < (b[1] + b[3]) / 2 < y1 for b, _ in kept)
    uncertain = [d for d in decoded if d[1] < det.second_look.sure_score]  # type: ignore[union-attr]
    assert uncertain  # else this test would not see the second look at work
    look = yunet.SecondLook(confirm_score=1.01)  # nothing can be confirmed
    strict = YuNetDetector(det.model, det.spec, min_face_px=24, second_look=look)
    assert [(d.box, d.score) for d in strict.detect(frame)] == [
        d for d in decoded if d[1] >= look.sure_score
    ]
