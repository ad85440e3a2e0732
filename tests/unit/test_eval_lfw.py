"""The LFW pairs file as ``make eval`` and models/ read it (one reader for both)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.evaluation.lfw import read_pairs, summary

# Two folds of one genuine and one impostor pair each.
PAIRS = "2\t1\nAda\t1\t2\nAda\t1\tBo\t3\nCy\t2\t4\nBo\t1\tCy\t1\n"


def test_read_pairs_indexes_images_folds_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(PAIRS)
    pairs = read_pairs(path)
    assert pairs.images == [
        "Ada/Ada_0001.jpg",
        "Ada/Ada_0002.jpg",
        "Bo/Bo_0001.jpg",
        "Bo/Bo_0003.jpg",
        "Cy/Cy_0001.jpg",
        "Cy/Cy_0002.jpg",
        "Cy/Cy_0004.jpg",
    ]
    named = [(pairs.images[a], pairs.images[b]) for a, b in zip(pairs.a, pairs.b, strict=True)]
    assert named[1] == ("Ada/Ada_0001.jpg", "Bo/Bo_0003.jpg")
    assert list(pairs.same) == [True, False, True, False]
    assert list(pairs.fold) == [0, 0, 1, 1]
    second = pairs.subset(pairs.fold == 1)
    assert second.images == pairs.images and list(second.same) == [True, False]
    assert [second.images[i] for i in second.a] == ["Cy/Cy_0002.jpg", "Bo/Bo_0001.jpg"]


@pytest.mark.parametrize(
    "text", [PAIRS.replace("Cy\t2\t4", "Cy\t2"), "\n".join(PAIRS.splitlines()[:-1])]
)
def test_read_pairs_refuses_a_malformed_or_short_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(ValueError):
        read_pairs(path)


def test_summary_in_percent_as_the_models_json_files(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(PAIRS)
    scores = np.array([0.9, 0.1, 0.8, 0.2])  # separable: every fold right
    assert summary(scores, read_pairs(path)) == {
        "acc_mean": 100.0,
        "acc_std": 0.0,
        "tar_at_far_1e-3": 100.0,
        "threshold_far_1e-3": 0.2,
    }
