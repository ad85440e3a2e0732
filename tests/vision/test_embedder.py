"""Profile embeddings: unit norm, and the fused score is one dot product of concatenated blocks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from agent.vision.blazeface import Detection
from agent.vision.embedder import ModelEmbedder, ProfileEmbedder, l2_normalise
from agent.vision.manifest import BlockSpec, Manifest, ModelSpec, ProfileSpec
from tests.vision.conftest import needs_runtime

F32 = npt.NDArray[np.float32]


class ProjectionModel:
    """A real (if untrained) embedder: a fixed random projection of the input pixels."""

    def __init__(self, dim: int, seed: int) -> None:
        self.w = (
            np.random.default_rng(seed).standard_normal((112 * 112 * 3, dim)).astype(np.float32)
        )

    def prepare(self, x: F32) -> F32:
        return x

    def run(self, x: F32) -> list[F32]:
        return [(x.reshape(1, -1) @ self.w).astype(np.float32)]


def _spec(name: str, dim: int, color: str) -> ModelSpec:
    return ModelSpec(
        file=name,
        sha256="0" * 64,
        role="embedder",
        family=name,
        variant="float32",
        input_shape=(1, 112, 112, 3),
        color=color,
        norm_scale=1 / 128,
        norm_offset=-1.0,
        dim=dim,
        template=((38.3, 51.7), (73.5, 51.5), (56.0, 71.7), (56.1, 92.3)),
        decode={},
    )


def _profile(weights: tuple[float, float]) -> ProfileEmbedder:
    blocks = (BlockSpec("a", weights[0], True), BlockSpec("b", weights[1], False))
    prof = ProfileSpec(name="t", id="x", detector="d", blocks=blocks, dim=48)
    return ProfileEmbedder(
        prof,
        [
            ModelEmbedder(ProjectionModel(32, 1), _spec("a", 32, "RGB")),
            ModelEmbedder(ProjectionModel(16, 2), _spec("b", 16, "BGR")),
        ],
    )


def _face(seed: int) -> tuple[npt.NDArray[np.uint8], Detection]:
    img = np.random.default_rng(seed).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    kps = np.array([[80, 90], [120, 90], [100, 110], [100, 135], [60, 100], [140, 100]], np.float32)
    return img, Detection((50, 50, 150, 150), 0.9, kps)


def test_fused_score_is_weighted_sum_of_block_cosines() -> None:
    prof = _profile((0.3, 0.7))
    (i1, d1), (i2, d2) = _face(1), _face(2)
    e1, e2 = prof.embed(i1, d1), prof.embed(i2, d2)
    assert e1.shape == (48,)
    assert np.isclose(np.linalg.norm(e1), 1.0, atol=1e-5)
    cos = []
    for blk, emb in zip(prof.profile.blocks, prof.blocks, strict=True):
        a = emb.embed_crop(emb.crop(i1, d1), flip=blk.flip)
        b = emb.embed_crop(emb.crop(i2, d2), flip=blk.flip)
        cos.append(float(a @ b))
    assert np.isclose(float(e1 @ e2), 0.3 * cos[0] + 0.7 * cos[1], atol=1e-5)


def test_flip_average_is_mirror_invariant() -> None:
    emb = ModelEmbedder(ProjectionModel(32, 3), _spec("a", 32, "RGB"))
    crop = np.random.default_rng(4).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    a = emb.embed_crop(crop, flip=True)
    b = emb.embed_crop(np.ascontiguousarray(crop[:, ::-1]), flip=True)
    assert np.allclose(a, b, atol=1e-5)
    assert not np.allclose(emb.embed_crop(crop), emb.embed_crop(crop[:, ::-1]), atol=1e-3)


@needs_runtime
def test_committed_profiles_concatenate_their_blocks(manifest: Manifest) -> None:
    img, det = _face(5)
    for name in ("fast", "accurate"):
        prof = ProfileEmbedder.from_manifest(manifest, name)
        e = prof.embed(img, det)
        assert e.shape == (prof.dim,)
        assert np.isclose(np.linalg.norm(e), 1.0, atol=1e-3)


@needs_runtime
def test_the_pixel_table_gives_the_same_bits_as_normalising_each_crop(manifest: Manifest) -> None:
    # The table is a speed-up only: the profile id promises the embeddings it was measured with.
    rng = np.random.default_rng(6)
    for name in ("fast", "accurate"):
        for emb in ProfileEmbedder.from_manifest(manifest, name, num_threads=1).blocks:
            crop = rng.integers(0, 256, (emb.height, emb.width, 3), dtype=np.uint8)
            px = crop[..., ::-1] if emb.spec.color == "BGR" else crop
            x = px.astype(np.float32) * emb.spec.norm_scale + emb.spec.norm_offset
            out = emb.model.run(x[None].astype(np.float32))[0].reshape(-1)
            acc = np.zeros(emb.spec.dim, dtype=np.float32)
            acc += l2_normalise(out)  # embed_crop's own steps after the model
            reference = l2_normalise(acc)
            assert np.array_equal(emb.embed_crop(crop), reference), emb.spec.file


def test_a_crop_that_is_not_uint8_is_a_programming_error() -> None:
    emb = ModelEmbedder(ProjectionModel(32, 3), _spec("a", 32, "RGB"))
    with pytest.raises(TypeError, match="uint8"):
        emb.embed_crop(np.zeros((112, 112, 3), dtype=np.float32))
