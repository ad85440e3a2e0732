"""Detect -> align -> embed for one embedding profile (what the agent and enrolment call)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agent.vision.blazeface import Detection
from agent.vision.detector import FaceDetector
from agent.vision.embedder import ProfileEmbedder
from agent.vision.manifest import Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Face:
    """One face in a frame and its profile embedding (unit norm). Never persisted."""

    detection: Detection
    embedding: npt.NDArray[np.float32]


class FacePipeline:
    """The detector and embedder of one profile, loaded and hash-checked once."""

    def __init__(self, detector: FaceDetector, embedder: ProfileEmbedder) -> None:
        self.detector = detector
        self.embedder = embedder

    @classmethod
    def from_manifest(cls, manifest: Manifest, profile: str, num_threads: int = 2) -> FacePipeline:
        spec = manifest.profile(profile)
        det = FaceDetector.from_manifest(manifest, spec.detector, num_threads)
        emb = ProfileEmbedder.from_manifest(manifest, profile, num_threads)
        log.info("profile %s ready: id %s, dim %d", profile, spec.id, spec.dim)
        return cls(det, emb)

    @property
    def embedder_sha256(self) -> str:
        """The profile id written into watchlists as ``embedder_sha256``."""
        return self.embedder.id

    def faces(
        self, frame: npt.NDArray[np.uint8], tiles: int = 1, min_size: float = 0.0
    ) -> list[Face]:
        """Every face in an RGB frame at least ``min_size`` pixels wide, with its embedding."""
        return [
            Face(d, self.embedder.embed(frame, d))
            for d in self.detector.detect(frame, tiles=tiles)
            if d.width >= min_size
        ]
