"""Loading an embedding profile (detector + embedder) from models/MANIFEST.json.

The device, enrolment (ops) and evaluation all load through here, so a watchlist is always
made with exactly the models and constants the device matches with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.detector_choice import AUTO, SETTINGS, ChosenDetector
from agent.pipeline import Detector, Embedder


@dataclass(frozen=True)
class Vision:
    detector: ChosenDetector
    embedder: Embedder
    threshold: float | None  # the profile's recommended threshold, if the manifest has one
    model_hashes: dict[str, str]


# vision.detector -> the manifest's model ("blazeface": the profile's own detector).
DETECTORS = {"yunet": "yunet_float32.tflite"}


def load_detector(
    name: str,
    models_dir: Path | None = None,
    threads: int = 2,
    *,
    min_face_px: float | None = None,
) -> Detector:
    """A hash-checked detector by manifest file name (``blazeface_short_float32.tflite``,
    ``yunet_float32.tflite``, ...); ``min_face_px`` sets YuNet's scale (BlazeFace tiles instead)."""
    from agent.vision.detector import FaceDetector
    from agent.vision.manifest import load_manifest
    from agent.vision.yunet_detector import YuNetDetector

    manifest = load_manifest(models_dir)
    if manifest.model(name).family == "yunet":
        return YuNetDetector.from_manifest(manifest, name, threads, min_face_px=min_face_px)
    return FaceDetector.from_manifest(manifest, name, threads)


def load_profile(
    profile: str = "accurate",
    models_dir: Path | None = None,
    threads: int = 2,
    *,
    detector: str = "blazeface",
    min_face_px: float | None = None,
) -> Vision:
    """Hash-checked TFLite models of ``profile`` (raises agent.vision.errors.VisionError), with
    the profile's detector (``blazeface``), YuNet (``yunet``, scaled for ``min_face_px``), or
    both, chosen by each frame's height (``auto``: :mod:`agent.detector_choice`)."""
    from agent.vision.embedder import ProfileEmbedder
    from agent.vision.manifest import load_manifest

    manifest = load_manifest(models_dir)
    spec = manifest.profile(profile)
    if detector not in SETTINGS:
        raise ValueError(f"unknown detector {detector!r}")
    wanted = ("blazeface", "yunet") if detector == AUTO else (detector,)
    files = {name: DETECTORS.get(name, spec.detector) for name in wanted}
    det = ChosenDetector(
        detector,
        {
            name: load_detector(file, models_dir, threads, min_face_px=min_face_px)
            for name, file in files.items()
        },
    )
    embedder = ProfileEmbedder.from_manifest(manifest, spec.name, threads)
    threshold = manifest.raw["profiles"][spec.name].get("recommended_threshold")
    names = [*files.values(), *(b.model for b in spec.blocks)]
    return Vision(
        det,
        embedder,
        float(threshold) if threshold is not None else None,
        {n: manifest.model(n).sha256 for n in names},
    )


def load_synthetic() -> Vision:
    from agent.synthetic_vision import ColourEmbedder, SquareDetector

    return Vision(
        ChosenDetector("synthetic", {"synthetic": SquareDetector()}), ColourEmbedder(), 0.9, {}
    )
