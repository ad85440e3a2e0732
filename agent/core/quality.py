"""Is a detected face good enough to embed? Size, sharpness and pose, from pixels and keypoints.

A face that fails is not embedded at all (counted by reason): a blurred or profile face would
only produce an unreliable score, and not embedding it is also the most private outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
REASONS = ("too_small", "blurred", "pose")


@dataclass(frozen=True)
class QualityPolicy:
    min_face_px: float = 40.0  # face box side, in frame pixels
    min_sharpness: float = 15.0  # variance of the Laplacian on the grey face box
    max_yaw: float = 0.45  # |nose offset from the eye midpoint| / eye distance


def sharpness(grey: npt.NDArray[np.float32]) -> float:
    """Variance of a 4-neighbour Laplacian: low on blurred images."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = (
        grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4.0 * grey[1:-1, 1:-1]
    )
    return float(lap.var())


def detail(grey: npt.NDArray[np.float32]) -> float:
    """Laplacian variance over grey-level variance: how much of a face's contrast is fine detail.

    Unlike :func:`sharpness` it does not depend on exposure or skin tone (a dark, low-contrast
    face is not "blurred"); measured on a face aligned to a fixed size it does not depend on the
    face's size either. A flat patch has no detail (0.0).
    """
    var = float(grey.var())
    if var < 1e-6:
        return 0.0
    return sharpness(grey) / var


def yaw_ratio(keypoints: F32) -> float:
    """Horizontal nose offset from the eyes' midpoint, relative to the eye distance.

    BlazeFace keypoints: 0 right eye, 1 left eye, 2 nose tip, 3 mouth, 4-5 ear tragions.
    """
    eye_a, eye_b, nose = keypoints[0], keypoints[1], keypoints[2]
    distance = float(np.hypot(*(eye_b - eye_a)))
    if distance < 1e-3:
        return float("inf")
    mid = (eye_a + eye_b) / 2
    return abs(float(nose[0] - mid[0])) / distance


def assess(
    frame: U8, box: tuple[float, float, float, float], keypoints: F32, policy: QualityPolicy
) -> str | None:
    """None if the face is good enough, else the reason it is not."""
    x0, y0, x1, y1 = box
    if min(x1 - x0, y1 - y0) < policy.min_face_px:
        return "too_small"
    if yaw_ratio(keypoints) > policy.max_yaw:
        return "pose"
    h, w = frame.shape[:2]
    ix0, iy0 = max(0, int(x0)), max(0, int(y0))
    ix1, iy1 = min(w, int(x1)), min(h, int(y1))
    patch = frame[iy0:iy1, ix0:ix1]
    if patch.size == 0:
        return "too_small"
    # Fixed-size view so the threshold does not depend on how big the face is.
    step = max(1, min(patch.shape[0], patch.shape[1]) // 64)
    grey = patch[::step, ::step].astype(np.float32).mean(axis=2)
    if sharpness(grey) < policy.min_sharpness:
        return "blurred"
    return None
