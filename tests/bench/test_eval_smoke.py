"""CI keeps `make eval` working: a small run on LFW with a labelled group file (skipped
with a reason when ../shared/datasets is absent)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tools.evaluation import cli, report
from tools.evaluation.lfw import DATASETS

pytestmark = [pytest.mark.integration, pytest.mark.dataset]
LFW = DATASETS / "lfw"


@pytest.mark.skipif(not LFW.is_dir(), reason=f"{LFW} is absent (../shared/datasets)")
def test_small_eval_with_groups(tmp_path: Path) -> None:
    groups = tmp_path / "groups.csv"
    with groups.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "group"])
        for number, person in enumerate(sorted(p for p in LFW.iterdir() if p.is_dir())[:300]):
            for image in person.glob("*.jpg"):
                writer.writerow([image.name, "north" if number % 2 else "south"])
    args = [
        "--limit",
        "40",
        "--out",
        str(tmp_path),
        "--by-group",
        str(groups),
        "--bootstrap",
        "200",
    ]
    assert cli.main(args) == 0
    summary = json.loads((tmp_path / "eval.json").read_text())
    assert set(summary["verification"]) == {"accurate", "fast", "mobilefacenet_float32"}
    assert summary["quantisation_cosine_mobilefacenet"]["mean"] > 0.99
    text = (tmp_path / "eval.md").read_text()
    assert "| accurate | north |" in text and "| accurate | south |" in text
    for plot in ("eval_det.png", "eval_scores.png"):
        assert (tmp_path / plot).stat().st_size > 1000
    # The recommendation names its operating point, its interval and the MANIFEST's value,
    # and the searches that decide it are listed, none dropped unseen.
    for profile in ("accurate", "fast"):
        recommended = summary["recommended"][profile]
        assert recommended["ci"][0] <= recommended["threshold"] <= recommended["ci"][1]
        noise = summary["label_noise"][profile]
        assert len(noise["top"]) > 0 and "manifest" in noise
        assert recommended["excluded"] == len(noise["duplicates"])
    assert "## Label noise" in text and "## Recommended default threshold" in text
    # The report is rendered from eval.json alone: rendering it again gives the same file.
    (tmp_path / "eval.md").unlink()
    assert report.main([str(tmp_path / "eval.json")]) == 0
    assert (tmp_path / "eval.md").read_text() == text
