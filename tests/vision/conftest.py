"""Shared fixtures for the vision tests: the committed models and, when present, ../shared."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from agent.vision.manifest import Manifest, load_manifest

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO.parent / "shared" / "datasets"
LFW = DATASETS / "lfw"
MODELS = REPO / "models"

HAS_RUNTIME = any(
    importlib.util.find_spec(m) is not None for m in ("ai_edge_litert", "tflite_runtime")
)
needs_runtime = pytest.mark.skipif(
    not HAS_RUNTIME, reason="no TFLite runtime installed (pip install ai-edge-litert)"
)
needs_lfw = pytest.mark.skipif(
    not LFW.is_dir(), reason=f"LFW not found at {LFW} (../shared/datasets is absent in this clone)"
)


@pytest.fixture(scope="session")
def manifest() -> Manifest:
    return load_manifest(MODELS)
