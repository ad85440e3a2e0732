"""Per-model timing on real faces: align and one inference, median over N LFW pair images.

python models/evaluation/bench_models.py --models-dir DIR [--lfw DIR --pairs FILE] [--n 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from agent.vision.detector import FaceDetector, pick_central  # noqa: E402
from agent.vision.embedder import ModelEmbedder  # noqa: E402
from agent.vision.image import read_image  # noqa: E402
from agent.vision.manifest import load_manifest  # noqa: E402
from tools.evaluation.lfw import add_lfw_arguments, read_pairs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, required=True)
    add_lfw_arguments(ap)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    man = load_manifest(a.models_dir)
    p = read_pairs(a.pairs)
    imgs = [read_image(a.lfw / r) for r in p.images[:: max(1, len(p.images) // a.n)][: a.n]]
    res = {}
    for name, spec in man.models.items():
        if spec.role != "detector":
            continue
        det = FaceDetector.from_manifest(man, name)
        t = []
        for im in imgs:
            t0 = time.perf_counter()
            det.detect(im)
            t.append(time.perf_counter() - t0)
        res[name] = {"detect_ms": round(float(np.median(t)) * 1e3, 2)}
    det = FaceDetector.from_manifest(man, "blazeface_short_float32.tflite")
    dets = [pick_central(det.detect(im), im.shape[1], im.shape[0]) for im in imgs]
    for name, spec in man.models.items():
        if spec.role != "embedder":
            continue
        emb = ModelEmbedder.from_manifest(man, name)
        ta, te = [], []
        for im, d in zip(imgs, dets, strict=True):
            if d is None:
                continue
            t0 = time.perf_counter()
            c = emb.crop(im, d)
            t1 = time.perf_counter()
            emb.embed_crop(c)
            ta.append(t1 - t0)
            te.append(time.perf_counter() - t1)
        res[name] = {
            "align_ms": round(float(np.median(ta)) * 1e3, 2),
            "inference_ms": round(float(np.median(te)) * 1e3, 2),
            "bytes": (a.models_dir / name).stat().st_size,
        }
    out = {"images": len(imgs), "threads": 2, "models": res}
    print(json.dumps(out, indent=2))
    if a.out:
        a.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
