"""Do the embedders see the same face whichever detector aligned it? BlazeFace vs YuNet on LFW.

    python models/evaluation/detector_agreement.py [--lfw DIR] [--pairs FILE] [--count 300]
        [--out JSON]

A profile's id hashes its models and alignment templates, not its detector; so a node that
detects with YuNet can match a watchlist enrolled with BlazeFace only if the aligned crops agree.
For the two images of ``--count / 2`` genuine pairs of the 10-fold file (evenly spaced), the face
nearest the centre is taken from each detector and embedded with each profile; reported: the
cosine between the two embeddings of the same photo (mean, percentiles, minimum, share >= 0.99),
with YuNet's coordinates read as pixel-index (as shipped) and as continuous ones (the other
reading), and how far the two detectors' eyes, nose and mouth centre lie apart (in eye
distances). For scale: each detector against itself on the same photo moved by (7, 5) pixels
(what any detector's own jitter does to the crops), and the cosines of those genuine pairs (two
photos of one person) under BlazeFace, accurate profile.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from agent.vision import yunet_detector  # noqa: E402
from agent.vision.detector import FaceDetector, pick_central  # noqa: E402
from agent.vision.embedder import ProfileEmbedder  # noqa: E402
from agent.vision.image import read_image  # noqa: E402
from agent.vision.manifest import load_manifest  # noqa: E402
from agent.vision.yunet_detector import YuNetDetector  # noqa: E402
from tools.evaluation.lfw import add_lfw_arguments, read_pairs  # noqa: E402

PROFILES = ("accurate", "fast")
OFFSETS = {"pixel_index": 0.5, "continuous": 0.0}


def stats(x: list[float]) -> dict[str, Any]:
    a = np.asarray(x)
    return {
        "n": len(a),
        "mean": round(float(a.mean()), 5),
        "p5": round(float(np.percentile(a, 5)), 5),
        "median": round(float(np.median(a)), 5),
        "min": round(float(a.min()), 5),
        "share_ge_0.99": round(float((a >= 0.99).mean()), 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    manifest = load_manifest()
    blaze = FaceDetector.from_manifest(manifest, "blazeface_short_float32.tflite")
    yu = YuNetDetector.from_manifest(manifest, "yunet_float32.tflite")
    embedders = {p: ProfileEmbedder.from_manifest(manifest, p) for p in PROFILES}
    pairs = read_pairs(a.pairs)
    genuine_idx = np.flatnonzero(pairs.same)
    chosen = genuine_idx[:: max(1, 2 * len(genuine_idx) // a.count)][: a.count // 2]
    images = [pairs.images[k] for i in chosen for k in (pairs.a[i], pairs.b[i])]
    cos: dict[str, dict[str, list[float]]] = {o: {p: [] for p in PROFILES} for o in OFFSETS}
    spread: dict[str, list[float]] = {k: [] for k in ("right_eye", "left_eye", "nose", "mouth")}
    shifted: dict[str, dict[str, list[float]]] = {
        d: {p: [] for p in PROFILES} for d in ("blazeface", "yunet")
    }
    missed = {"blazeface": 0, "yunet": 0}
    ref: dict[str, np.ndarray] = {}
    for rel in images:
        img = read_image(a.lfw / rel)
        h, w = img.shape[:2]
        b = pick_central(blaze.detect(img), w, h)
        if b is None:
            missed["blazeface"] += 1
            continue
        eb = {p: e.embed(img, b) for p, e in embedders.items()}
        ref[rel] = eb["accurate"]
        yunet_detector.PIXEL_OFFSET = OFFSETS["pixel_index"]  # as shipped
        moved = np.zeros_like(img)
        moved[5:, 7:] = img[:-5, :-7]
        for dname, det in (("blazeface", blaze), ("yunet", yu)):
            here, there = pick_central(det.detect(img), w, h), pick_central(det.detect(moved), w, h)
            if here is not None and there is not None:
                for p, e in embedders.items():
                    shifted[dname][p].append(float(e.embed(img, here) @ e.embed(moved, there)))
        for name, off in OFFSETS.items():
            yunet_detector.PIXEL_OFFSET = off
            y = pick_central(yu.detect(img), w, h)
            if y is None:
                missed["yunet"] += name == "pixel_index"
                continue
            for p, e in embedders.items():
                cos[name][p].append(float(e.embed(img, y) @ eb[p]))
            if name == "pixel_index":
                kb, ky = b.keypoints[:4], y.keypoints
                eye = float(np.hypot(*(kb[1] - kb[0])))
                for k, key in enumerate(spread):
                    spread[key].append(float(np.hypot(*(ky[k] - kb[k]))) / eye)
    yunet_detector.PIXEL_OFFSET = OFFSETS["pixel_index"]
    genuine = [
        float(ref[pairs.images[pairs.a[i]]] @ ref[pairs.images[pairs.b[i]]])
        for i in chosen
        if pairs.images[pairs.a[i]] in ref and pairs.images[pairs.b[i]] in ref
    ]
    out = {
        "images": len(images),
        "missed": missed,
        "cosine_same_photo": {o: {p: stats(v) for p, v in d.items()} for o, d in cos.items()},
        "cosine_same_detector_photo_moved_7_5_px": {
            d: {p: stats(v) for p, v in x.items()} for d, x in shifted.items()
        },
        "keypoint_offset_in_eye_distances": {
            k: {"mean": round(float(np.mean(v)), 4), "p95": round(float(np.percentile(v, 95)), 4)}
            for k, v in spread.items()
        },
        "genuine_pairs_blazeface_accurate": stats(genuine) if genuine else None,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
