"""Embedders: one model (align, normalise, run, L2-normalise, optional flip averaging) and an
embedding profile (weighted concatenation of blocks whose dot product is the fused score).

For a profile with blocks ``i`` of weight ``w_i`` (summing to 1), the embedding is the
concatenation of ``sqrt(w_i) * e_i`` with each ``e_i`` a unit vector, so it is itself a unit vector
and the dot product of two embeddings is ``sum_i w_i cos_i``: the z-normalised score fusion, with
its constant offsets folded into the threshold, as one matrix-vector product.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.vision.align import align
from agent.vision.manifest import Manifest, ModelSpec, ProfileSpec
from agent.vision.runtime import TFLiteModel

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


class Detection(Protocol):
    """What alignment reads from a detection (BlazeFace's or YuNet's): right eye, left eye, nose
    tip, mouth centre first, in continuous image coordinates."""

    @property
    def keypoints(self) -> F32: ...


class TensorRunner(Protocol):
    """What an embedder needs from a model: one batch in (float32, or as :meth:`prepare` makes
    it), float32 outputs back."""

    def prepare(self, x: F32) -> npt.NDArray[Any]: ...

    def run(self, x: npt.NDArray[Any]) -> list[F32]: ...


def l2_normalise(v: F32) -> F32:
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v).astype(np.float32)


class ModelEmbedder:
    """One embedding model and its input contract (from the manifest)."""

    def __init__(self, model: TensorRunner, spec: ModelSpec) -> None:
        if len(spec.input_shape) != 4 or spec.input_shape[0] != 1:
            raise ValueError(f"{spec.file}: expected an NHWC batch-1 input, got {spec.input_shape}")
        self.model = model
        self.spec = spec
        self.height, self.width = spec.input_shape[1], spec.input_shape[2]
        self.template = np.asarray(spec.template, dtype=np.float64)
        # An int8 input value is a function of one 0..255 pixel value: normalised and quantised
        # once into a table, a crop costs one lookup instead of five passes (about 1 % of an
        # `accurate` embedding). The same float32 operations per value as on a whole crop, so
        # the same bits. A float input keeps the arithmetic, which numpy does faster.
        levels = np.arange(256, dtype=np.float32) * spec.norm_scale + spec.norm_offset
        table = model.prepare(levels)
        self._table = None if table.dtype == np.float32 else table

    @classmethod
    def from_manifest(cls, manifest: Manifest, name: str, num_threads: int = 2) -> ModelEmbedder:
        return cls(TFLiteModel.from_manifest(manifest, name, num_threads), manifest.model(name))

    def crop(self, img: U8, det: Detection) -> U8:
        """The aligned face crop (RGB uint8) this model embeds."""
        return align(img, det.keypoints, self.template, self.width, self.height)

    def embed_crop(self, crop: U8, flip: bool = False) -> F32:
        """Unit embedding of an aligned RGB crop; with ``flip``, of the crop and its mirror."""
        if crop.dtype != np.uint8:
            raise TypeError(f"{self.spec.file}: a crop is uint8 RGB, not {crop.dtype}")
        views = [crop, crop[:, ::-1]] if flip else [crop]
        acc = np.zeros(self.spec.dim, dtype=np.float32)
        for v in views:
            px = v[..., ::-1] if self.spec.color == "BGR" else v
            if self._table is not None:
                x = self._table[px]
            else:
                x = px.astype(np.float32) * self.spec.norm_scale + self.spec.norm_offset
            acc += l2_normalise(self.model.run(x[None])[0].reshape(-1))
        return l2_normalise(acc)


class ProfileEmbedder:
    """The embedder of one profile: blocks concatenated, each scaled by ``sqrt(weight)``."""

    def __init__(self, profile: ProfileSpec, blocks: list[ModelEmbedder]) -> None:
        if len(blocks) != len(profile.blocks):
            raise ValueError("one ModelEmbedder per profile block is required")
        self.profile = profile
        self.blocks = blocks

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, profile: str, num_threads: int = 2
    ) -> ProfileEmbedder:
        p = manifest.profile(profile)
        return cls(
            p, [ModelEmbedder.from_manifest(manifest, b.model, num_threads) for b in p.blocks]
        )

    @property
    def id(self) -> str:
        """The profile id: the ``embedder_sha256`` of watchlists this embedder can match."""
        return self.profile.id

    @property
    def dim(self) -> int:
        return self.profile.dim

    def embed(self, img: U8, det: Detection) -> F32:
        """Unit-norm fused embedding of the face ``det`` in ``img``."""
        crops: dict[tuple[bytes, int, int], U8] = {}  # blocks sharing a template share the crop
        parts = []
        for spec, emb in zip(self.profile.blocks, self.blocks, strict=True):
            key = (emb.template.tobytes(), emb.width, emb.height)
            if key not in crops:
                crops[key] = emb.crop(img, det)
            parts.append(spec.scale * emb.embed_crop(crops[key], flip=spec.flip))
        return np.concatenate(parts).astype(np.float32)
