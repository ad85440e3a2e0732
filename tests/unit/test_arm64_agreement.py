"""tools/arm64/agreement.py: the cross-architecture comparison `make test-arm64` gates on."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from agent.vision.manifest import load_manifest
from tools.arm64.agreement import block_slices, compare, main, pick_faces


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _save(path: Path, emb: dict[str, np.ndarray], refs: list[str]) -> None:
    arrays = {}
    for profile, e in emb.items():
        arrays[f"{profile}/emb"] = e
        arrays[f"{profile}/refs"] = np.array(refs)
    with path.open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def test_block_slices_tile_the_profile_dimension() -> None:
    manifest = load_manifest()
    for name in ("fast", "accurate"):
        slices = block_slices(name)
        assert slices[0][1].start == 0
        assert slices[-1][1].stop == manifest.profile(name).dim
        for (_, a), (_, b) in pairwise(slices):
            assert a.stop == b.start


def test_a_drift_in_one_block_is_attributed_to_it_and_fails_the_gate(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    dim = load_manifest().profile("accurate").dim
    ref = _unit(rng, 5, dim)
    other = ref.copy()
    last_model, last = block_slices("accurate")[-1]
    other[:, last] += 0.05 * rng.normal(size=(5, last.stop - last.start)).astype(np.float32)
    _save(tmp_path / "x86.npz", {"accurate": ref}, [f"f{i}" for i in range(5)])
    _save(tmp_path / "arm.npz", {"accurate": other}, [f"f{i}" for i in range(5)])

    row = compare(tmp_path / "x86.npz", tmp_path / "arm.npz", ("accurate",))["accurate"]
    assert row["faces"] == 5
    assert row[f"min {last_model}"] < 0.999
    for model, _ in block_slices("accurate")[:-1]:
        assert row[f"min {model}"] == pytest.approx(1.0, abs=1e-6)
    args = [str(tmp_path / "x86.npz"), str(tmp_path / "arm.npz"), "--profiles", "accurate"]
    assert main(["compare", *args, "--min", "0.999"]) == 1
    assert main(["compare", *args, "--min", f"{row['min'] - 1e-4}"]) == 0


def test_only_faces_embedded_on_both_machines_are_compared(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    dim = load_manifest().profile("fast").dim
    e = _unit(rng, 3, dim)
    _save(tmp_path / "a.npz", {"fast": e}, ["a", "b", "c"])
    _save(tmp_path / "b.npz", {"fast": e[[0, 2]]}, ["a", "c"])  # "b" refused on this one
    row = compare(tmp_path / "a.npz", tmp_path / "b.npz", ("fast",))["fast"]
    assert row["faces"] == 2
    assert row["min"] == pytest.approx(1.0, abs=1e-6)


def test_pick_faces_takes_the_first_image_of_the_first_identities(tmp_path: Path) -> None:
    for person, images in {"B_b": ["2.jpg", "1.jpg"], "A_a": ["9.jpg"], "C_c": []}.items():
        (tmp_path / person).mkdir()
        for name in images:
            (tmp_path / person / name).write_bytes(b"")
    faces = pick_faces(tmp_path, 5)
    assert [(f.parent.name, f.name) for f in faces] == [("A_a", "9.jpg"), ("B_b", "1.jpg")]
    assert pick_faces(tmp_path, 1) == faces[:1]
