"""LFW View 2 with each detector's alignment, and across them (enrolled by one, seen by the other).

    python models/evaluation/detector_lfw.py [--lfw DIR] [--pairs FILE] [--workers 2] [--out JSON]

The library path (detect -> align -> embed, one embedding per image, the face nearest the
centre, cosine scores), not ``lfr-watchlist enrol``: every one of the 7,701 pair images is
embedded with each profile twice, once aligned from BlazeFace's keypoints and once from
YuNet's. Scored: BlazeFace/BlazeFace (today), YuNet/YuNet, and BlazeFace/YuNet (the first image
of each pair as enrolment aligned it, the second as a YuNet node would). 10-fold accuracy and
TAR at FAR 1e-3 as in ``eval_lfw.py``; an image without a face scores its pairs -1.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tools.evaluation.lfw import add_lfw_arguments, read_pairs, summary  # noqa: E402

PROFILES = ("accurate", "fast")
_STATE: dict[str, Any] = {}


def _init() -> None:
    from agent.vision.detector import FaceDetector
    from agent.vision.embedder import ProfileEmbedder
    from agent.vision.manifest import load_manifest
    from agent.vision.yunet_detector import YuNetDetector

    m = load_manifest()
    _STATE["detectors"] = {
        "blazeface": FaceDetector.from_manifest(m, "blazeface_short_float32.tflite", 1),
        "yunet": YuNetDetector.from_manifest(m, "yunet_float32.tflite", 1),
    }
    _STATE["embedders"] = {p: ProfileEmbedder.from_manifest(m, p, 1) for p in PROFILES}


def _embed(path: str) -> dict[str, np.ndarray | None]:
    from agent.vision.detector import pick_central
    from agent.vision.image import read_image

    img = read_image(Path(path))
    out: dict[str, np.ndarray | None] = {}
    for dname, det in _STATE["detectors"].items():
        face = pick_central(list(det.detect(img)), img.shape[1], img.shape[0])
        for p, e in _STATE["embedders"].items():
            out[f"{dname}/{p}"] = None if face is None else e.embed(img, face)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    pairs = read_pairs(a.pairs)
    paths = [str(a.lfw / r) for r in pairs.images]
    with ProcessPoolExecutor(a.workers, initializer=_init) as pool:
        embs = list(pool.map(_embed, paths, chunksize=32))
    result: dict[str, Any] = {"images": len(paths), "no_face": {}}
    for key in embs[0]:
        result["no_face"][key.split("/")[0]] = sum(e[key] is None for e in embs)
    for p in PROFILES:
        for enrol, probe in (
            ("blazeface", "blazeface"),
            ("yunet", "yunet"),
            ("blazeface", "yunet"),
        ):
            scores = np.array(
                [
                    -1.0
                    if embs[i][f"{enrol}/{p}"] is None or embs[j][f"{probe}/{p}"] is None
                    else float(embs[i][f"{enrol}/{p}"] @ embs[j][f"{probe}/{p}"])
                    for i, j in zip(pairs.a, pairs.b, strict=True)
                ]
            )
            result[f"{p}: {enrol} / {probe}"] = summary(scores, pairs)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
