"""Typed view of ``models/MANIFEST.json``: model files, their contracts, embedding profiles.

The manifest is the single source of truth for how a model is fed (input shape, colour order,
normalisation, alignment template) and for what an embedding profile is (which embedders, block
weights, flip averaging). A profile's ``id`` is the sha256 of its canonical description and is the
``embedder_sha256`` written into watchlists: a device matches only lists made with its own profile.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.vision.errors import ManifestError

MANIFEST_NAME = "MANIFEST.json"
MAX_MANIFEST_BYTES = 1 << 20


def default_models_dir() -> Path:
    """``$LFR_MODELS_DIR`` if set, else the ``models/`` folder of the source tree."""
    env = os.environ.get("LFR_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class ModelSpec:
    """One ``.tflite`` file and how to feed it."""

    file: str
    sha256: str
    role: str  # "detector" or "embedder"
    family: str
    variant: str
    input_shape: tuple[int, ...]
    color: str  # "RGB" or "BGR"
    norm_scale: float  # model input = pixel (0..255) * norm_scale + norm_offset
    norm_offset: float
    dim: int
    template: tuple[tuple[float, float], ...]  # alignment points in crop pixels (embedders)
    decode: dict[str, Any]  # detector decode parameters (detectors)


@dataclass(frozen=True)
class BlockSpec:
    """One embedder inside a profile: its model, weight in the fused score, flip averaging."""

    model: str
    weight: float
    flip: bool

    @property
    def scale(self) -> float:
        """Factor on the block's unit vector, so that its dot products carry ``weight``."""
        return float(np.sqrt(self.weight))


@dataclass(frozen=True)
class ProfileSpec:
    """An embedding profile: a detector plus one or more weighted embedder blocks."""

    name: str
    id: str
    detector: str
    blocks: tuple[BlockSpec, ...]
    dim: int


def canonical_profile(blocks: list[dict[str, Any]], models: dict[str, dict[str, Any]]) -> bytes:
    """Canonical bytes hashed into a profile id: model hashes, templates, weights, flips, order."""
    desc = [
        {
            "sha256": models[b["model"]]["sha256"],
            "template": models[b["model"]]["alignment"]["template"],
            "weight": round(float(b["weight"]), 6),
            "flip": bool(b["flip"]),
        }
        for b in blocks
    ]
    return json.dumps(
        {"lfr_profile": 1, "blocks": desc}, sort_keys=True, separators=(",", ":")
    ).encode()


def profile_id(blocks: list[dict[str, Any]], models: dict[str, dict[str, Any]]) -> str:
    return hashlib.sha256(canonical_profile(blocks, models)).hexdigest()


def _model(name: str, raw: dict[str, Any]) -> ModelSpec:
    try:
        inp = raw["input"]
        norm = inp["normalisation"]
        align = raw.get("alignment") or {}
        return ModelSpec(
            file=name,
            sha256=str(raw["sha256"]),
            role=str(raw["role"]),
            family=str(raw["family"]),
            variant=str(raw["variant"]),
            input_shape=tuple(int(d) for d in inp["shape"]),
            color=str(inp["color"]),
            norm_scale=float(norm["scale"]),
            norm_offset=float(norm["offset"]),
            dim=int(raw.get("dim", 0)),
            template=tuple((float(x), float(y)) for x, y in align.get("template", [])),
            decode=dict(raw.get("decode") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"models.{name}: bad or missing field ({exc})") from exc


class Manifest:
    """Parsed manifest; ``models_dir`` is where the ``.tflite`` files sit."""

    def __init__(self, raw: dict[str, Any], models_dir: Path) -> None:
        self.raw = raw
        self.models_dir = models_dir
        models = raw.get("models")
        profiles = raw.get("profiles")
        if not isinstance(models, dict) or not isinstance(profiles, dict):
            raise ManifestError("manifest: 'models' and 'profiles' must be objects")
        self.models = {name: _model(name, m) for name, m in models.items()}
        self.profiles: dict[str, ProfileSpec] = {}
        for pname, p in profiles.items():
            try:
                blocks = [dict(b) for b in p["blocks"]]
                expected = profile_id(blocks, models)
                if p["id"] != expected:
                    raise ManifestError(f"profiles.{pname}.id: {p['id']} != computed {expected}")
                self.profiles[pname] = ProfileSpec(
                    name=pname,
                    id=expected,
                    detector=str(p["detector"]),
                    blocks=tuple(
                        BlockSpec(str(b["model"]), float(b["weight"]), bool(b["flip"]))
                        for b in blocks
                    ),
                    dim=int(p["dim"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ManifestError(f"profiles.{pname}: bad or missing field ({exc})") from exc
            for name in [self.profiles[pname].detector, *(str(b["model"]) for b in blocks)]:
                if name not in self.models:
                    raise ManifestError(f"profiles.{pname}: unknown model {name!r}")

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ManifestError(f"manifest has no model {name!r}") from None

    def profile(self, name: str) -> ProfileSpec:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise ManifestError(f"unknown profile {name!r} (known: {known})") from None

    def path(self, name: str) -> Path:
        return self.models_dir / self.model(name).file


def load_manifest(models_dir: Path | None = None) -> Manifest:
    """Read and validate ``MANIFEST.json`` in ``models_dir`` (default: ``default_models_dir()``)."""
    d = models_dir if models_dir is not None else default_models_dir()
    path = d / MANIFEST_NAME
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from exc
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ManifestError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: top level must be an object")
    return Manifest(raw, d)
