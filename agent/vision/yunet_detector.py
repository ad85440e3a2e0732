"""YuNet face detector: one pass over the frame, scaled from the smallest face the node wants.

YuNet is fully convolutional (strides 8/16/32, one prior per cell), so its cost follows the input
pixels and the smallest face it finds follows the input scale. Instead of tiles, the frame is
scaled once so that a face of ``min_face_px`` frame pixels becomes the model's smallest reliable
face (``min_face_input_px`` in the manifest) and run whole; tiles at one scale would only add
their overlap to the same pixels.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from agent.vision import yunet
from agent.vision.image import resize, shrink
from agent.vision.manifest import Manifest, ModelSpec
from agent.vision.runtime import TFLiteModel
from agent.vision.yunet import SecondLook, YuNetDetection

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
HEADS = ("cls", "obj", "bbox", "kps")
PIXEL_OFFSET = 0.5
SECOND_LOOK = SecondLook()


class YuNetDetector:
    """Detects faces in RGB uint8 frames; coordinates come back in frame pixels.

    ``min_face_px``: the smallest face (box side, frame pixels) to find; it fixes the input scale
    (:func:`agent.vision.yunet.input_scale`). ``None``: the frame at full resolution.
    ``second_look``: how uncertain detections are confirmed (:class:`~yunet.SecondLook`);
    ``None``: :meth:`detect` returns the reference-equivalent :meth:`decoded` as is.
    ``look_model``: the interpreter for the second look (default: ``model``, which then
    re-plans its buffers at every look; :meth:`from_manifest` gives it its own).
    """

    def __init__(
        self,
        model: TFLiteModel,
        spec: ModelSpec,
        *,
        min_face_px: float | None = None,
        min_score: float | None = None,
        second_look: SecondLook | None = SECOND_LOOK,
        look_model: TFLiteModel | None = None,
    ) -> None:
        d = spec.decode
        self.second_look = second_look
        # The second look's crops have their own input size; on the frame's interpreter every
        # look would re-plan its buffers twice (crop size, then frame size again).
        self.look_model = model if look_model is None else look_model
        self.model = model
        self.spec = spec
        self.strides = tuple(int(s) for s in d["strides"])
        self.min_score = float(d["min_score"] if min_score is None else min_score)
        self.iou = float(d["nms_iou"])
        self.top_k = int(d["top_k"])
        self.min_face_input_px = float(d["min_face_input_px"])
        self.scale_for_min_face = (
            1.0 if min_face_px is None else yunet.input_scale(min_face_px, self.min_face_input_px)
        )
        # The padded input, one per image size (the frame's and the second look's), reused:
        # the padding is never written so stays 0, and each frame is cast into it in one pass
        # (a fresh zeroed array and a float copy of the frame cost ~2 ms a frame at 720p).
        self._inputs: dict[tuple[int, int], npt.NDArray[np.float32]] = {}
        names = self.model.output_names
        self._idx = {head: [names.index(f"{head}_{s}") for s in self.strides] for head in HEADS}

    @classmethod
    def from_manifest(
        cls,
        manifest: Manifest,
        name: str,
        num_threads: int = 2,
        *,
        min_face_px: float | None = None,
        min_score: float | None = None,
        second_look: SecondLook | None = SECOND_LOOK,
    ) -> YuNetDetector:
        return cls(
            TFLiteModel.from_manifest(manifest, name, num_threads),
            manifest.model(name),
            min_face_px=min_face_px,
            min_score=min_score,
            second_look=second_look,
            look_model=(
                None if second_look is None else TFLiteModel.from_manifest(manifest, name, 1)
            ),
        )

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """The scaled frame ``(width, height)`` fed for a ``width x height`` frame (before the
        padding to a multiple of 32)."""
        return yunet.input_size(width, height, self.scale_for_min_face)

    def raw(
        self,
        image: npt.NDArray[np.float32] | U8,
        min_score: float | None = None,
        model: TFLiteModel | None = None,
        *,
        rgb: bool = False,
    ) -> tuple[yunet.F32, yunet.F32, yunet.F32]:
        """Boxes, scores and landmarks above ``min_score`` (default: the manifest's) for one
        image already at the input scale (any size; padded here), before NMS, in that image's
        pixels; run by ``model`` (default: the frame's). ``image``: BGR as the network takes it,
        or RGB uint8 (``rgb``, a camera frame) reordered here."""
        run = self.model if model is None else model
        h, w = image.shape[:2]
        ph, pw = yunet.padded(h), yunet.padded(w)
        run.resize_input((1, ph, pw, 3))
        x = self._inputs.get((h, w))
        if x is None:
            if len(self._inputs) >= 4:  # the frame size changed: drop the old buffers
                self._inputs.clear()
            x = self._inputs.setdefault((h, w), np.zeros((1, ph, pw, 3), dtype=np.float32))
        view = x[0, :h, :w]
        if rgb:
            # Channel by channel: a reversed last axis is copied element by element (1.9 ms for
            # a 768x432 input, against 0.5 ms this way; the same values).
            for c in range(3):
                view[..., c] = image[..., 2 - c]
        else:
            view[...] = image
        outs = run.run(x)
        heads = [[outs[i][0] for i in self._idx[head]] for head in HEADS]
        return yunet.decode(
            *heads,
            width=w,
            height=h,
            min_score=self.min_score if min_score is None else min_score,
            strides=self.strides,
        )

    def detect(self, frame: U8, tiles: int = 1) -> list[YuNetDetection]:
        """All faces in ``frame`` (H x W x 3 RGB uint8), best score first: :meth:`decoded`, the
        uncertain ones confirmed by a second look. ``tiles`` must be 1: the scale comes from
        ``min_face_px`` (see the module docstring)."""
        if tiles != 1:
            raise ValueError("YuNetDetector does not tile; set min_face_px instead")
        found = self.decoded(frame)
        look = self.second_look
        if look is None:
            return found
        return [d for d in found if d.score >= look.sure_score or self._confirmed(frame, d, look)]

    def _confirmed(self, frame: U8, det: YuNetDetection, look: SecondLook) -> bool:
        x0, y0, side = yunet.look_window(det.box, look)
        size = look.size
        h, w = frame.shape[:2]
        crop = np.zeros((side, side, 3), dtype=np.uint8)  # black where it leaves the frame
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
        if sx1 > sx0 and sy1 > sy0:
            crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = frame[sy0:sy1, sx0:sx1]
        seen = resize(crop, size, size)
        boxes, scores, _ = self.raw(seen, look.confirm_score, self.look_model, rgb=True)
        keep = yunet.nms(boxes, scores, self.iou, self.top_k)
        back = side / size
        boxes = (boxes[keep] + PIXEL_OFFSET) * back + np.array([x0, y0, x0, y0], np.float32)
        return yunet.confirmed(det.box, boxes.astype(np.float32), scores[keep], look)

    def decoded(self, frame: U8) -> list[YuNetDetection]:
        """What OpenCV's ``FaceDetectorYN`` finds in ``frame`` at the manifest's threshold and
        NMS (the reference the decode is tested against), best score first, frame pixels."""
        h, w = frame.shape[:2]
        iw, ih = self.input_size(w, h)
        small = shrink(frame, iw, ih) if (iw, ih) != (w, h) else frame
        boxes, scores, marks = self.raw(small, rgb=True)
        keep = yunet.nms(boxes, scores, self.iou, self.top_k)
        # YuNet's coordinates are pixel-index ones (OpenCV aligns SFace crops with them as such);
        # ours are continuous (pixel i spans [i, i+1), as BlazeFace's and agent.vision.align's).
        sx, sy = w / iw, h / ih
        boxes = (boxes[keep] + PIXEL_OFFSET) * np.array([sx, sy, sx, sy], dtype=np.float32)
        marks = (marks[keep] + PIXEL_OFFSET) * np.array([sx, sy], dtype=np.float32)
        return [
            YuNetDetection(
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                score=float(s),
                landmarks=m.astype(np.float32),
            )
            for b, s, m in zip(boxes, scores[keep], marks, strict=True)
        ]
