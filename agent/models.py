"""Loading an embedding profile (detector + embedder) from models/MANIFEST.json.

The device, enrolment (ops) and evaluation all load through here, so a watchlist is always
made with exactly the models and constants the device matches with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.pipeline import Detector, Embedder


@dataclass(frozen=True)
class Vision:
    detector: Detector
    embedder: Embedder
    threshold: float | None  # the profile's recommended threshold, if the manifest has one
    model_hashes: dict[str, str]


def load_profile(
    profile: str = "accurate", models_dir: Path | None = None, threads: int = 2
) -> Vision:
    """Hash-checked TFLite models of ``profile`` (raises agent.vision.errors.VisionError)."""
    from agent.vision.detector import FaceDetector
    from agent.vision.embedder import ProfileEmbedder
    from agent.vision.manifest import load_manifest

    manifest = load_manifest(models_dir)
    spec = manifest.profile(profile)
    detector = FaceDetector.from_manifest(manifest, spec.detector, threads)
    embedder = ProfileEmbedder.from_manifest(manifest, spec.name, threads)
    threshold = manifest.raw["profiles"][spec.name].get("recommended_threshold")
    names = [spec.detector, *(b.model for b in spec.blocks)]
    return Vision(
        detector,
        embedder,
        float(threshold) if threshold is not None else None,
        {n: manifest.model(n).sha256 for n in names},
    )


def load_synthetic() -> Vision:
    from agent.synthetic_vision import ColourEmbedder, SquareDetector

    return Vision(SquareDetector(), ColourEmbedder(), 0.9, {})
