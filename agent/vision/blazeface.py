"""BlazeFace decoding (anchors, boxes, keypoints) and weighted NMS. Pure numpy, no runtime imports.

Keypoint order (MediaPipe): 0 right eye (image-left), 1 left eye, 2 nose tip, 3 mouth centre,
4 right ear tragion, 5 left ear tragion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

RIGHT_EYE, LEFT_EYE, NOSE, MOUTH = 0, 1, 2, 3


@dataclass(frozen=True)
class Detection:
    """A face in image pixels: box ``(x0, y0, x1, y1)``, score in 0..1, keypoints ``(6, 2)``."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: F32

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@cache
def anchors(input_size: int, strides: tuple[int, ...], per_cell: tuple[int, ...]) -> F32:
    """Anchor centres ``(N, 2)`` in input pixels: per stride, row-major cells, ``per_cell`` each."""
    out: list[F32] = []
    for stride, k in zip(strides, per_cell, strict=True):
        n = input_size // stride
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        c = (np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) + 0.5) * stride
        out.append(np.repeat(c, k, axis=0))
    return np.concatenate(out).astype(np.float32)


def decode(
    regressors: F32,
    logits: F32,
    *,
    input_size: int,
    strides: Sequence[int],
    per_cell: Sequence[int],
    min_score: float,
    score_clip: float = 100.0,
    num_keypoints: int = 6,
) -> tuple[F32, F32, F32]:
    """Raw outputs ``(N, 4 + 2K)`` and ``(N, 1)`` to boxes ``(M, 4)`` (x0,y0,x1,y1 in input
    pixels), scores ``(M,)`` and keypoints ``(M, K, 2)`` for anchors scoring ``>= min_score``."""
    reg = regressors.reshape(-1, 4 + 2 * num_keypoints)
    lg = np.clip(logits.reshape(-1).astype(np.float64), -score_clip, score_clip)
    scores = (1.0 / (1.0 + np.exp(-lg))).astype(np.float32)
    keep = scores >= min_score
    a = anchors(input_size, tuple(strides), tuple(per_cell))[keep]
    reg = reg[keep]
    cx = a[:, 0] + reg[:, 0]
    cy = a[:, 1] + reg[:, 1]
    hw, hh = reg[:, 2] / 2, reg[:, 3] / 2
    boxes = np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1).astype(np.float32)
    kps = (reg[:, 4:].reshape(-1, num_keypoints, 2) + a[:, None, :]).astype(np.float32)
    return boxes, scores[keep], kps


def iou(box: F32, boxes: F32) -> F32:
    """IoU of one box ``(4,)`` with each of ``boxes (N, 4)``."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    out: F32 = (inter / np.maximum(area + areas - inter, 1e-9)).astype(np.float32)
    return out


def weighted_nms(boxes: F32, scores: F32, keypoints: F32, iou_threshold: float) -> list[Detection]:
    """MediaPipe's WEIGHTED suppression: each cluster (IoU > threshold with its best member)
    becomes one detection whose box and keypoints are the score-weighted mean of the cluster and
    whose score is the best member's."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    alive = np.ones(len(scores), dtype=bool)
    out: list[Detection] = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        cluster = alive & (iou(boxes[i], boxes) > iou_threshold)
        cluster[i] = True
        w = scores[cluster][:, None]
        box = (boxes[cluster] * w).sum(0) / w.sum()
        kp = (keypoints[cluster] * w[:, :, None]).sum(0) / w.sum()
        out.append(
            Detection(
                box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                score=float(scores[i]),
                keypoints=kp.astype(np.float32),
            )
        )
        alive &= ~cluster
    return out
