"""Face detector: BlazeFace on a letterboxed frame, optionally tiled for small, far-away faces."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from agent.vision import blazeface
from agent.vision.blazeface import Detection
from agent.vision.image import resize
from agent.vision.manifest import Manifest, ModelSpec
from agent.vision.runtime import TFLiteModel

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]


class FaceDetector:
    """Detects faces in RGB uint8 frames; coordinates come back in frame pixels.

    ``tiles`` > 1 also runs the detector on a ``tiles x tiles`` grid of overlapping squares (and
    merges everything with weighted NMS), which finds faces too small for one whole-frame pass.
    """

    def __init__(self, model: TFLiteModel, spec: ModelSpec, min_score: float | None = None) -> None:
        self.model = model
        self.spec = spec
        d = spec.decode
        self.size = int(d["input_size"])
        self.strides = tuple(int(s) for s in d["strides"])
        self.per_cell = tuple(int(k) for k in d["anchors_per_cell"])
        self.min_score = float(d["min_score"] if min_score is None else min_score)
        self.iou = float(d["nms_iou"])
        self.score_clip = float(d.get("score_clip", 100.0))
        self._reg = self.model.output_names.index(str(d["regressors"]))
        self._cls = self.model.output_names.index(str(d["scores"]))

    @classmethod
    def from_manifest(cls, manifest: Manifest, name: str, num_threads: int = 2) -> FaceDetector:
        return cls(TFLiteModel.from_manifest(manifest, name, num_threads), manifest.model(name))

    def _raw(self, frame: U8, x0: int, y0: int, side: int) -> tuple[np.ndarray, ...]:
        """Detect in the square ``frame[y0:y0+side, x0:x0+side]`` (zero-padded past the edge)."""
        crop = frame[y0 : y0 + side, x0 : x0 + side]
        h, w = crop.shape[:2]
        scale = self.size / side
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = resize(crop, nw, nh) if (nw, nh) != (w, h) else crop
        canvas = np.zeros((self.size, self.size, 3), dtype=np.float32)
        canvas[:nh, :nw] = small
        x = canvas * self.spec.norm_scale + self.spec.norm_offset
        outs = self.model.run(x[None].astype(np.float32))
        boxes, scores, kps = blazeface.decode(
            outs[self._reg][0],
            outs[self._cls][0],
            input_size=self.size,
            strides=self.strides,
            per_cell=self.per_cell,
            min_score=self.min_score,
            score_clip=self.score_clip,
        )
        inv = side / self.size
        boxes = boxes * inv + np.array([x0, y0, x0, y0], dtype=np.float32)
        kps = kps * inv + np.array([x0, y0], dtype=np.float32)
        return boxes, scores, kps

    def detect(self, frame: U8, tiles: int = 1) -> list[Detection]:
        """All faces in ``frame`` (H x W x 3 RGB uint8), best score first."""
        h, w = frame.shape[:2]
        parts = [self._raw(frame, 0, 0, max(h, w))]
        if tiles > 1:
            # Squares of side ~1.5 * longer side / tiles, overlapping by a third, covering it all.
            side = min(h, w, int(np.ceil(max(h, w) / tiles * 1.5)))
            step = max(1, side * 2 // 3)
            nx = int(np.ceil(max(w - side, 0) / step)) + 1
            ny = int(np.ceil(max(h - side, 0) / step)) + 1
            for ty in np.linspace(0, max(h - side, 0), ny):
                for tx in np.linspace(0, max(w - side, 0), nx):
                    parts.append(self._raw(frame, int(tx), int(ty), side))
        boxes = np.concatenate([p[0] for p in parts]).astype(np.float32)
        scores = np.concatenate([p[1] for p in parts]).astype(np.float32)
        kps = np.concatenate([p[2] for p in parts]).astype(np.float32)
        return blazeface.weighted_nms(boxes, scores, kps, self.iou)


def pick_central(dets: list[Detection], width: int, height: int) -> Detection | None:
    """The detection whose box centre is nearest the image centre (LFW: one face there)."""
    if not dets:
        return None

    def dist(d: Detection) -> float:
        cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
        return float((cx - width / 2) ** 2 + (cy - height / 2) ** 2)

    return min(dets, key=dist)
