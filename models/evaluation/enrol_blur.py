"""Where enrolment's "face too blurred" starts: calibrated on faces that are never evaluated.

    python models/evaluation/enrol_blur.py [--lfw DIR] [--pairs FILE] [--profile accurate]
        [--cosine 0.90] [--out JSON]

Takes the calibration faces of ``build/calibration.py`` (``lfw.calibration_images``: 300 LFW
identities with a single image that the 10-fold pairs file never names), blurs each whole photo
with a Gaussian of sigma 0.5-4 pixels, and measures for each: ``central.enrol.face_detail`` (the measure enrolment applies)
and the cosine between the profile embedding of the blurred and of the sharp photo. The blur at
which the mean cosine falls to ``--cosine`` is the refusal point; the threshold is the median
face_detail of the faces at that blur (both interpolated between the measured sigmas). Finally,
for information only (the threshold is fixed before this), how many of the 7,701 pair images
fall below it. Writes ``models/enrol_blur_calibration.json``.
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
from agent.models import load_profile  # noqa: E402
from agent.vision.detector import pick_central  # noqa: E402
from agent.vision.image import read_image  # noqa: E402
from central.enrol import MIN_FACE_DETAIL, face_detail  # noqa: E402
from tools.evaluation.lfw import add_lfw_arguments, calibration_images, read_pairs  # noqa: E402

SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


def crossing(xs: list[float], ys: list[float], level: float) -> float:
    """First x where the decreasing curve ys(x) reaches ``level`` (linear interpolation)."""
    for i in range(1, len(xs)):
        if ys[i] <= level:
            f = (ys[i - 1] - level) / (ys[i - 1] - ys[i]) if ys[i - 1] != ys[i] else 1.0
            return xs[i - 1] + f * (xs[i] - xs[i - 1])
    raise ValueError(f"the mean cosine never falls to {level} over sigmas {xs}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--profile", default="accurate")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--cosine", type=float, default=0.90)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "enrol_blur_calibration.json")
    a = ap.parse_args()
    from PIL import Image, ImageFilter

    vision = load_profile(a.profile, threads=2)
    detail: dict[float, list[float]] = {s: [] for s in SIGMAS}
    cosine: dict[float, list[float]] = {s: [] for s in SIGMAS}
    images = calibration_images(a.lfw, a.pairs, a.count)
    for path in images:
        with Image.open(path) as im:
            photo = im.convert("RGB")
        sharp = None
        for s in SIGMAS:
            img = np.asarray(photo.filter(ImageFilter.GaussianBlur(s)) if s else photo)
            d = pick_central(vision.detector.detect(img), img.shape[1], img.shape[0])
            if d is None:
                continue  # counted below as "found"
            e = vision.embedder.embed(img, d)
            if s == 0.0:
                sharp = e
            if sharp is None:
                break
            detail[s].append(face_detail(img, d.keypoints))
            cosine[s].append(float(e @ sharp))
    curve = [
        {
            "sigma_px": s,
            "faces_found": len(detail[s]),
            "detail_median": round(float(np.median(detail[s])), 5),
            "detail_p10": round(float(np.percentile(detail[s], 10)), 5),
            "detail_p90": round(float(np.percentile(detail[s], 90)), 5),
            "cosine_to_sharp_mean": round(float(np.mean(cosine[s])), 4),
            "cosine_to_sharp_p10": round(float(np.percentile(cosine[s], 10)), 4),
        }
        for s in SIGMAS
    ]
    means = [c["cosine_to_sharp_mean"] for c in curve]
    sigma = crossing(list(SIGMAS), means, a.cosine)
    i = int(np.searchsorted(SIGMAS, sigma))
    lo, hi = curve[i - 1]["detail_median"], curve[i]["detail_median"]
    f = (sigma - SIGMAS[i - 1]) / (SIGMAS[i] - SIGMAS[i - 1])
    threshold = float(np.exp(np.log(lo) + f * (np.log(hi) - np.log(lo))))
    sharp_below = int(np.sum(np.array(detail[0.0]) < threshold))
    pairs = read_pairs(a.pairs)
    below = []
    for rel in pairs.images:
        img = read_image(a.lfw / rel)
        d = pick_central(vision.detector.detect(img), img.shape[1], img.shape[0])
        if d is not None and face_detail(img, d.keypoints) < threshold:
            below.append(rel)
    out: dict[str, Any] = {
        "what": "enrolment blur refusal point (central.enrol.MIN_FACE_DETAIL)",
        "profile": a.profile,
        "calibration_images": len(images),
        "criterion": f"mean cosine of blurred to sharp embedding = {a.cosine}",
        "curve": curve,
        "sigma_at_criterion_px": round(sigma, 3),
        "threshold": round(threshold, 5),
        "shipped_threshold": MIN_FACE_DETAIL,
        "sharp_calibration_faces_below": sharp_below,
        "lfw_pair_images_below (information only)": below,
    }
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    for c in curve:
        print(json.dumps(c))
    print(
        f"sigma {sigma:.2f} px -> threshold {threshold:.5f} (shipped {MIN_FACE_DETAIL}); "
        f"sharp calibration faces below: {sharp_below}; LFW pair images below: {len(below)} "
        f"{below}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
