"""How small a face YuNet finds at a given input scale: the ``min_face_input_px`` choice.

    python models/evaluation/yunet_min_face.py [--lfw DIR] [--pairs FILE] [--min-face 40]
        [--input-px 16 20 24] [--count 100]

Calibration faces (LFW identities the pairs file never names, ``lfw.calibration_images``;
the 100 after the first 120) are pasted, one per frame, at 0.6-2x ``--min-face`` (BlazeFace's box
side as the face size) at a random place in a 1280x720 frame of smooth synthetic colour (no
faces in it), and YuNet runs with the frame scaled so that ``--min-face`` becomes each
``--input-px``. A face counts as found when a detection's centre lies within 0.6 face sizes of
it; every other detection is counted too. Prints one line per input size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from agent.vision.detector import FaceDetector, pick_central  # noqa: E402
from agent.vision.image import read_image  # noqa: E402
from agent.vision.manifest import load_manifest  # noqa: E402
from agent.vision.yunet import input_scale  # noqa: E402
from agent.vision.yunet_detector import YuNetDetector  # noqa: E402
from tools.evaluation.lfw import add_lfw_arguments, calibration_images  # noqa: E402

FACTORS = (0.6, 0.8, 1.0, 1.2, 1.5, 2.0)


def background() -> np.ndarray:
    yy, xx = np.mgrid[0:720, 0:1280]
    return np.stack(
        [
            90 + 40 * np.sin(xx / 53.0),
            100 + 30 * np.cos(yy / 37.0),
            110 + 20 * np.sin((xx + yy) / 71.0),
        ],
        -1,
    ).astype(np.uint8)


def main() -> int:
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--min-face", type=float, default=40.0)
    ap.add_argument("--input-px", type=float, nargs="+", default=[16.0, 20.0, 24.0])
    ap.add_argument("--count", type=int, default=100)
    a = ap.parse_args()
    manifest = load_manifest()
    blaze = FaceDetector.from_manifest(manifest, "blazeface_short_float32.tflite")
    yu = YuNetDetector.from_manifest(manifest, "yunet_float32.tflite", min_face_px=a.min_face)
    faces = []
    for path in calibration_images(a.lfw, a.pairs, 300)[120 : 120 + a.count]:
        img = read_image(path)
        d = pick_central(blaze.detect(img), img.shape[1], img.shape[0])
        if d is not None:
            faces.append((img, d))
    bg = background()
    sizes = [round(a.min_face * f) for f in FACTORS]
    for px in a.input_px:
        yu.scale_for_min_face = input_scale(a.min_face, px)
        rng = np.random.default_rng(2)
        hits = dict.fromkeys(sizes, 0)
        other = 0
        for img, d in faces:
            for s in sizes:
                k = s / d.height
                side = max(1, round(img.shape[1] * k))
                small = Image.fromarray(img).resize((side, side), Image.Resampling.BOX)
                frame = bg.copy()
                x0 = int(rng.integers(0, 1280 - side))
                y0 = int(rng.integers(0, 720 - side))
                frame[y0 : y0 + side, x0 : x0 + side] = np.asarray(small)
                cx = x0 + (d.box[0] + d.box[2]) / 2 * k
                cy = y0 + (d.box[1] + d.box[3]) / 2 * k
                dets = yu.detect(frame)
                found = any(
                    abs((q.box[0] + q.box[2]) / 2 - cx) < 0.6 * s
                    and abs((q.box[1] + q.box[3]) / 2 - cy) < 0.6 * s
                    for q in dets
                )
                hits[s] += found
                other += len(dets) - found
        recall = ", ".join(f"{s} px {hits[s] / len(faces):.2f}" for s in sizes)
        print(
            f"input {px:g} px for {a.min_face:g} (input {yu.input_size(1280, 720)}): "
            f"recall {recall}; other detections per frame {other / (len(faces) * len(sizes)):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
