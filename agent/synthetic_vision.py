"""A synthetic vision backend: "faces" are textured squares of known colours.

Selected with ``[vision] backend = "synthetic"``. It implements the same detector and
embedder interfaces as the TFLite path, deterministically and without model files, so the
daemon (tracking, events, outbox, broker, systemd) can be tested and demonstrated on generated
clips, and a technician can check a node end to end with a printed test card. Each palette
colour is one "person"; its embedding is a fixed random unit vector.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 40, 40),
    (40, 200, 40),
    (40, 80, 230),
    (230, 200, 30),
    (200, 40, 200),
    (30, 200, 200),
    (240, 130, 30),
    (140, 60, 230),
)
DIM = 64
PROFILE_ID = hashlib.sha256(b"lfr-edge synthetic colour vision v1").hexdigest()
_TOLERANCE = 40
_MIN_PIXELS = 200


@dataclass(frozen=True)
class SquareDetection:
    box: tuple[float, float, float, float]
    score: float
    keypoints: F32
    colour: int


def colour_embedding(index: int) -> F32:
    rng = np.random.default_rng(1000 + index)
    v = rng.normal(size=DIM).astype(np.float32)
    out: F32 = v / np.linalg.norm(v)
    return out


def draw_face(frame: U8, colour: int, x: int, y: int, size: int) -> None:
    """A textured square (checkerboard of the colour and a darker shade) in place."""
    r, g, b = PALETTE[colour]
    tile = np.zeros((size, size, 3), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    light = (yy // 4 + xx // 4) % 2 == 0
    tile[light] = (r, g, b)
    tile[~light] = (int(r * 0.6), int(g * 0.6), int(b * 0.6))
    frame[y : y + size, x : x + size] = tile


class SquareDetector:
    def detect(self, frame: U8, tiles: int = 1) -> list[SquareDetection]:
        found = []
        pixels = frame.astype(np.int16)
        for index, (r, g, b) in enumerate(PALETTE):
            diff = np.abs(pixels - np.array([r, g, b], np.int16)).max(axis=2)
            ys, xs = np.nonzero(diff <= _TOLERANCE)
            if len(xs) < _MIN_PIXELS:
                continue
            x0, x1, y0, y1 = (
                float(xs.min()),
                float(xs.max() + 1),
                float(ys.min()),
                float(ys.max() + 1),
            )
            w, h = x1 - x0, y1 - y0
            keypoints = np.array(
                [
                    [x0 + w / 3, y0 + h / 3],
                    [x0 + 2 * w / 3, y0 + h / 3],
                    [x0 + w / 2, y0 + h / 2],
                    [x0 + w / 2, y0 + 3 * h / 4],
                    [x0, y0 + h / 3],
                    [x1, y0 + h / 3],
                ],
                np.float32,
            )
            found.append(SquareDetection((x0, y0, x1, y1), 1.0, keypoints, index))
        return found


class ColourEmbedder:
    id = PROFILE_ID
    dim = DIM

    def embed(self, img: U8, det: SquareDetection) -> F32:
        return colour_embedding(det.colour)
