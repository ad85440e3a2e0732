"""Face alignment: least-squares similarity transform to a template, then a bilinear warp.

Coordinates: detector keypoints are continuous image coordinates (pixel ``i`` spans ``[i, i+1)``);
templates are given, as OpenCV and the ArcFace reference use them, in pixel-index coordinates
(pixel ``i`` is centred on ``i``). :func:`align` converts between the two.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

# ArcFace 112x112 five-point template (eyes, nose, mouth corners), pixel-index coordinates.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
# BlazeFace gives eyes, nose tip and mouth centre: map the mouth centre to the corners' midpoint.
ARCFACE_112_4PT = np.vstack([ARCFACE_112[:3], ARCFACE_112[3:].mean(axis=0)])


def similarity(src: F64, dst: F64) -> F64:
    """2x3 matrix ``M`` of the similarity (rotation, uniform scale, translation; no reflection)
    minimising ``sum |M @ [src, 1] - dst|^2`` (Umeyama 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError("similarity() needs two (N, 2) point sets with N >= 2")
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1.0
    r = u @ e @ vt
    var = (s**2).sum() / len(src)
    scale = float((sig * np.diag(e)).sum() / var) if var > 0 else 1.0
    t = md - scale * r @ ms
    return np.hstack([scale * r, t[:, None]])


def warp(img: U8, m: F64, width: int, height: int) -> U8:
    """Output pixel ``(u, v)`` takes the bilinear sample of ``img`` at ``M^-1 (u, v)`` (pixel-index
    coordinates, like ``cv2.warpAffine``); outside the image is black.

    Only the part of ``img`` the crop can see is handed to Pillow, so the cost does not grow with
    the frame size.
    """
    from PIL import Image

    inv = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
    corners = np.array(
        [[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]]
    )
    src = corners @ inv.T
    h, w = img.shape[:2]
    x0 = int(np.clip(np.floor(src[:, 0].min()) - 1, 0, w))
    y0 = int(np.clip(np.floor(src[:, 1].min()) - 1, 0, h))
    x1 = int(np.clip(np.ceil(src[:, 0].max()) + 2, 0, w))
    y1 = int(np.clip(np.ceil(src[:, 1].max()) + 2, 0, h))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((height, width, img.shape[2]), dtype=np.uint8)
    roi = Image.fromarray(np.ascontiguousarray(img[y0:y1, x0:x1]))
    # Pillow maps output to input in continuous coordinates (pixel i spans [i, i+1)).
    a = inv[:, :2]
    t = inv[:, 2] + 0.5 - a.sum(axis=1) * 0.5 - np.array([x0, y0])
    data = (a[0, 0], a[0, 1], t[0], a[1, 0], a[1, 1], t[1])
    out = roi.transform((width, height), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def align(img: U8, keypoints: F32, template: F64, width: int, height: int) -> U8:
    """Warp the face whose first ``len(template)`` keypoints (continuous image coordinates) are
    given onto ``template`` (pixel-index coordinates) in a ``width x height`` crop."""
    src = np.asarray(keypoints, dtype=np.float64)[: len(template)] - 0.5
    return warp(img, similarity(src, np.asarray(template, dtype=np.float64)), width, height)
