"""Is a detected face good enough to embed? Size, sharpness and pose, from pixels and keypoints.

A face that fails the gate (:func:`gate`) is not embedded at all (counted by reason): a
blurred or profile face would only produce an unreliable score, and not embedding it is also
the most private outcome. A face that passes gets a quality :func:`score`, which the embedding
schedule (:mod:`agent.core.schedule`) compares with the best its track has had.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
REASONS = ("too_small", "blurred", "pose")
DETAIL_PX = 32


@dataclass(frozen=True)
class QualityPolicy:
    min_face_px: float = 40.0  # face box side, in frame pixels
    min_sharpness: float = 15.0  # variance of the Laplacian on the grey face box
    max_yaw: float = 0.45  # |nose offset from the eye midpoint| / eye distance
    # A face bigger than this is also measured shrunk to it (0: own pixels only); see measure.
    detail_px: int = DETAIL_PX


def grey_of(rgb: U8) -> F32:
    """The mean of the three channels, as float32: the same bits as
    ``rgb.astype(np.float32).mean(axis=2)`` (the channel sum is an exact integer either way,
    divided by 3 once), at a fifteenth of its cost, which is 1.2 ms for a 240 px face on a
    2-core x86 node: numpy reduces a 3-long last axis element by element."""
    total = rgb[..., 0].astype(np.uint16)
    total += rgb[..., 1]
    total += rgb[..., 2]
    out: F32 = total.astype(np.float32)
    out /= np.float32(3)
    return out


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


@dataclass(frozen=True)
class FaceMeasure:
    """What the gate and the score read from one detected face: pixels in, three numbers out."""

    size_px: float  # the face box's shorter side, in frame pixels
    sharpness: float  # :func:`sharpness` on a fixed-size grey view of the face box
    yaw: float  # :func:`yaw_ratio`
    detail: float = 0.0  # :func:`sharpness` of the face box shrunk to ``detail_px`` (0: not)

    @property
    def crispness(self) -> float:
        """What the gate and the score read: the sharper of the two views."""
        return max(self.sharpness, self.detail)


def shrink(grey: F32, side: int) -> F32:
    """Area-average ``grey`` down to ``side`` x ``side`` (it must be at least that big)."""
    rows = np.linspace(0, grey.shape[0], side + 1).astype(np.intp)[:-1]
    cols = np.linspace(0, grey.shape[1], side + 1).astype(np.intp)[:-1]
    sums = np.add.reduceat(np.add.reduceat(grey, rows, axis=0), cols, axis=1)
    counts = np.outer(
        np.diff(np.append(rows, grey.shape[0])), np.diff(np.append(cols, grey.shape[1]))
    )
    out: F32 = (sums / counts).astype(np.float32)
    return out


def measure(
    frame: U8,
    box: tuple[float, float, float, float],
    keypoints: F32,
    detail_px: int = DETAIL_PX,
) -> FaceMeasure:
    """Size, sharpness and yaw of one face.

    A big face that was magnified on its way to the frame (digital zoom, an upscaled stream, a
    photo pasted larger than it was taken) has soft pixels, yet as much facial detail as the
    same face seen smaller, and the embedders shrink it to 112 px anyway. Its Laplacian at its
    own pixels called it blurred, so a track preferred its small, distant faces; shrunk to
    ``detail_px`` it is measured on the detail it actually carries. ``crispness`` is the max.
    """
    x0, y0, x1, y1 = box
    size = min(x1 - x0, y1 - y0)
    h, w = frame.shape[:2]
    ix0, iy0 = max(0, int(x0)), max(0, int(y0))
    ix1, iy1 = min(w, int(x1)), min(h, int(y1))
    patch = frame[iy0:iy1, ix0:ix1]
    if patch.size == 0:
        return FaceMeasure(0.0, 0.0, yaw_ratio(keypoints))
    # Fixed-size view so the threshold does not depend on how big the face is.
    step = max(1, min(patch.shape[0], patch.shape[1]) // 64)
    grey = grey_of(patch[::step, ::step])
    fine = 0.0
    if detail_px and min(patch.shape[0], patch.shape[1]) > detail_px:
        fine = sharpness(shrink(grey_of(patch), detail_px))
    return FaceMeasure(float(size), sharpness(grey), yaw_ratio(keypoints), fine)


def gate(face: FaceMeasure, policy: QualityPolicy) -> str | None:
    """None if the face is good enough to embed, else the reason it is not."""
    if face.size_px < policy.min_face_px:
        return "too_small"
    if face.yaw > policy.max_yaw:
        return "pose"
    if face.crispness < policy.min_sharpness:
        return "blurred"
    return None


# Where each factor of :func:`score` reaches one half: a face of 56 px is half as good as one
# of the embedders' 112 px input or more; a Laplacian variance of 60 (four times the default
# gate) is half-sharp.
SIZE_FULL_PX = 112.0
SHARPNESS_HALF = 60.0


def score(face: FaceMeasure) -> float:
    """How good a face is for recognition, in [0, 1]: size x sharpness x frontalness.

    - size: ``min(1, size_px / 112)``; the embedders see 112 px, a bigger face adds nothing;
    - sharpness: ``s / (s + 60)`` of :attr:`FaceMeasure.crispness`; saturating, so noise on
      a sharp face does not dominate;
    - frontalness: ``max(0, 1 - yaw)``; 1 frontal, 0 when the nose is an eye distance aside.

    Only comparisons between faces of one track use it (is this face better than the best the
    track has had?), so the three factors need to move the right way, not be calibrated.
    """
    size = min(1.0, max(0.0, face.size_px) / SIZE_FULL_PX)
    sharp = max(0.0, face.crispness)
    sharp = sharp / (sharp + SHARPNESS_HALF)
    frontal = max(0.0, 1.0 - face.yaw) if face.yaw == face.yaw else 0.0  # NaN: not frontal
    return size * sharp * frontal


def assess(
    frame: U8, box: tuple[float, float, float, float], keypoints: F32, policy: QualityPolicy
) -> str | None:
    """None if the face is good enough, else the reason it is not."""
    return gate(measure(frame, box, keypoints, policy.detail_px), policy)
