"""Calibration crops: aligned faces of LFW identities that never occur in the pairs file.

Takes identities with exactly one image that the 10-fold pairs file does not name (so no
calibration face is ever evaluated), evenly spaced over the sorted list, detects the central face
with the float BlazeFace and aligns it to the ArcFace 112x112 template with agent.vision's own
code. Output: ``(N, 112, 112, 3)`` RGB uint8 ``.npy`` plus the list of images used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))
from catalog import DLIB_150_4PT  # noqa: E402

from agent.vision.align import ARCFACE_112_4PT, align  # noqa: E402
from agent.vision.detector import FaceDetector, pick_central  # noqa: E402
from agent.vision.image import read_image  # noqa: E402
from agent.vision.manifest import load_manifest  # noqa: E402
from tools.evaluation.lfw import calibration_images  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--template", choices=["arcface112", "dlib150"], default="arcface112")
    a = ap.parse_args()
    chosen = calibration_images(a.lfw, a.pairs, a.count)
    man = load_manifest(a.models_dir)
    det = FaceDetector.from_manifest(man, "blazeface_short_float32.tflite")
    crops, used = [], []
    for path in chosen:
        img = read_image(path)
        d = pick_central(det.detect(img), img.shape[1], img.shape[0])
        if d is None:
            continue
        if a.template == "arcface112":
            crops.append(align(img, d.keypoints, ARCFACE_112_4PT, 112, 112))
        else:
            crops.append(align(img, d.keypoints, np.array(DLIB_150_4PT), 150, 150))
        used.append(f"{path.parent.name}/{path.name}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(a.out, np.stack(crops))
    a.out.with_suffix(".txt").write_text("\n".join(used) + "\n")
    print(
        f"calibration: {len(crops)} crops of {len(chosen)} identities with a single image "
        f"that the pairs file never names -> {a.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
