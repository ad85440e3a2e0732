"""Embedding sanity on real LFW faces with the committed models (skipped without ../shared)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from agent.vision.detector import FaceDetector, pick_central
from agent.vision.embedder import ModelEmbedder, ProfileEmbedder
from agent.vision.image import read_image
from agent.vision.manifest import Manifest
from tests.vision.conftest import LFW, needs_lfw, needs_runtime

pytestmark = [needs_runtime, needs_lfw, pytest.mark.dataset]

PEOPLE = ["Colin_Powell", "George_W_Bush", "Tony_Blair", "Gerhard_Schroeder", "Ariel_Sharon"]


def _embed(manifest: Manifest, profile: str) -> npt.NDArray[np.float32]:
    det = FaceDetector.from_manifest(manifest, manifest.profile(profile).detector)
    emb = ProfileEmbedder.from_manifest(manifest, profile)
    out = []
    for p in PEOPLE:
        for n in (1, 2):
            img = read_image(LFW / p / f"{p}_{n:04d}.jpg")
            d = pick_central(det.detect(img), img.shape[1], img.shape[0])
            assert d is not None, f"no face in {p}_{n:04d}"
            out.append(emb.embed(img, d))
    return np.stack(out)


@pytest.mark.parametrize("profile", ["fast", "accurate"])
def test_same_person_scores_above_every_impostor(manifest: Manifest, profile: str) -> None:
    e = _embed(manifest, profile)
    s = e @ e.T
    same = np.array([s[2 * i, 2 * i + 1] for i in range(len(PEOPLE))])
    ids = np.repeat(np.arange(len(PEOPLE)), 2)
    impostor = s[ids[:, None] != ids[None, :]]
    assert same.min() > impostor.max()
    # The profile's recommended threshold (FAR 1e-3 on calibration faces) separates them too.
    threshold = float(manifest.raw["profiles"][profile]["recommended_threshold"])
    assert impostor.max() < threshold < same.min()


def test_quantised_embedders_agree_with_float(manifest: Manifest) -> None:
    det = FaceDetector.from_manifest(manifest, manifest.profile("fast").detector)
    floats = {
        m.family: n
        for n, m in manifest.models.items()
        if m.role == "embedder" and m.variant == "float32"
    }
    quants = [
        n
        for n, m in manifest.models.items()
        if m.role == "embedder" and m.variant != "float32" and m.family in floats
    ]
    if not quants:
        pytest.skip("no quantised embedder with its float model committed")
    imgs = [read_image(LFW / p / f"{p}_0001.jpg") for p in PEOPLE]
    dets = [pick_central(det.detect(i), i.shape[1], i.shape[0]) for i in imgs]
    for q in quants:
        fq = ModelEmbedder.from_manifest(manifest, q)
        ff = ModelEmbedder.from_manifest(manifest, floats[manifest.model(q).family])
        for img, d in zip(imgs, dets, strict=True):
            assert d is not None
            cos = float(fq.embed_crop(fq.crop(img, d)) @ ff.embed_crop(ff.crop(img, d)))
            assert cos >= 0.97, f"{q}: cosine to float {cos:.4f}"
