"""Manifest validation and sha256 refusal before any model is handed to a runtime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.vision.errors import ManifestError, ModelIntegrityError
from agent.vision.manifest import Manifest, load_manifest, profile_id
from agent.vision.runtime import TFLiteModel, read_verified
from tests.vision.conftest import MODELS, needs_runtime


def test_committed_files_match_manifest(manifest: Manifest) -> None:
    for name, spec in manifest.models.items():
        read_verified(manifest.path(name), spec.sha256)  # raises on mismatch
        assert manifest.path(name).stat().st_size < 20 * 1024 * 1024


def test_profiles_have_ids_and_known_models(manifest: Manifest) -> None:
    assert {"fast", "accurate"} <= set(manifest.profiles)
    ids = {p.id for p in manifest.profiles.values()}
    assert len(ids) == len(manifest.profiles)
    for p in manifest.profiles.values():
        assert p.dim == sum(manifest.model(b.model).dim for b in p.blocks)
        assert abs(sum(b.weight for b in p.blocks) - 1.0) < 1e-3


def test_tampered_model_is_refused(tmp_path: Path, manifest: Manifest) -> None:
    name = manifest.profile("fast").detector
    shutil.copy(MODELS / "MANIFEST.json", tmp_path / "MANIFEST.json")
    data = bytearray((MODELS / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(data))
    tampered = load_manifest(tmp_path)
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        TFLiteModel.from_manifest(tampered, name)


def test_profile_id_changes_with_weights(manifest: Manifest) -> None:
    raw = json.loads((MODELS / "MANIFEST.json").read_text())
    blocks = raw["profiles"]["accurate"]["blocks"]
    assert profile_id(blocks, raw["models"]) == manifest.profile("accurate").id
    changed = [{**b, "weight": b["weight"] + 0.01} for b in blocks]
    assert profile_id(changed, raw["models"]) != manifest.profile("accurate").id


def test_profile_id_changes_with_flip(manifest: Manifest) -> None:
    # Flip averaging changes every embedding, so a watchlist made with it must not match a
    # device without it (and the other way round): the flag is part of the id.
    raw = json.loads((MODELS / "MANIFEST.json").read_text())
    for name in ("fast", "accurate"):
        blocks = raw["profiles"][name]["blocks"]
        toggled = [{**b, "flip": not b["flip"]} for b in blocks]
        assert profile_id(toggled, raw["models"]) != manifest.profile(name).id


def test_profile_measurements_belong_to_the_profile(manifest: Manifest) -> None:
    # LFW figures and timing in a profile were measured on that profile (its id), not carried
    # over from an earlier profile of the same name.
    raw = json.loads((MODELS / "MANIFEST.json").read_text())
    for name, prof in raw["profiles"].items():
        if "lfw" in prof:
            assert prof["lfw"]["id"] == manifest.profile(name).id
        else:
            assert "per_face_ms_here" not in prof


def test_edited_profile_id_is_rejected(tmp_path: Path) -> None:
    raw = json.loads((MODELS / "MANIFEST.json").read_text())
    raw["profiles"]["fast"]["id"] = "0" * 64
    (tmp_path / "MANIFEST.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match=r"profiles\.fast\.id"):
        load_manifest(tmp_path)


def test_missing_manifest_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"MANIFEST\.json"):
        load_manifest(tmp_path)


@needs_runtime
def test_untampered_model_loads(manifest: Manifest) -> None:
    m = TFLiteModel.from_manifest(manifest, manifest.profile("fast").detector)
    assert m.input_shape == manifest.model(manifest.profile("fast").detector).input_shape
