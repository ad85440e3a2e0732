"""LFW on disk: the View 2 pairs file, the 1:N sets, the calibration faces, and the rounded
verification summary the model evaluations write.

Shared by ``make eval`` and models/ (``eval_lfw.py``, ``evaluation/*``, and the build's
``calibration.py``, which runs in the build venv: numpy and the standard library only).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tools.evaluation.metrics import fold_accuracies, tar_at_far

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"
F64 = npt.NDArray[np.float64]


def add_lfw_arguments(parser: argparse.ArgumentParser) -> None:
    """``--lfw DIR`` and ``--pairs FILE``, defaulting to ../shared/datasets."""
    parser.add_argument("--lfw", type=Path, default=DATASETS / "lfw")
    parser.add_argument("--pairs", type=Path, default=DATASETS / "lfw_pairs_10fold.txt")


@dataclass(frozen=True)
class Pairs:
    images: list[str]  # unique relative paths, sorted
    a: npt.NDArray[np.int64]  # index into images, per pair
    b: npt.NDArray[np.int64]
    same: npt.NDArray[np.bool_]
    fold: npt.NDArray[np.int64]

    def subset(self, keep: npt.NDArray[np.bool_]) -> Pairs:
        """The pairs where ``keep`` is true (``images`` unchanged, so indices stay valid)."""
        return Pairs(self.images, self.a[keep], self.b[keep], self.same[keep], self.fold[keep])


def rel(name: str, n: str) -> str:
    return f"{name}/{name}_{int(n):04d}.jpg"


def read_pairs(path: Path) -> Pairs:
    """The pairs file: a header ``folds per_fold``, then per fold ``per_fold`` genuine rows
    (name, n1, n2) and ``per_fold`` impostor rows (name1, n1, name2, n2)."""
    lines = path.read_text().splitlines()
    folds, per = (int(x) for x in lines[0].split())
    rows: list[tuple[str, str, bool, int]] = []
    for i, line in enumerate(lines[1 : 1 + folds * 2 * per]):
        f = line.split("\t")
        k = i // (2 * per)
        if len(f) == 3:
            rows.append((rel(f[0], f[1]), rel(f[0], f[2]), True, k))
        elif len(f) == 4:
            rows.append((rel(f[0], f[1]), rel(f[2], f[3]), False, k))
        else:
            raise ValueError(f"{path}:{i + 2}: expected 3 or 4 fields")
    if len(rows) != folds * 2 * per:
        raise ValueError(f"{path}: {len(rows)} pairs, its header says {folds * 2 * per}")
    images = sorted({r[0] for r in rows} | {r[1] for r in rows})
    idx = {p: i for i, p in enumerate(images)}
    return Pairs(
        images,
        np.array([idx[r[0]] for r in rows]),
        np.array([idx[r[1]] for r in rows]),
        np.array([r[2] for r in rows]),
        np.array([r[3] for r in rows]),
    )


def pair_identities(path: Path) -> set[str]:
    """Every identity named in the pairs file (calibration must avoid them)."""
    out: set[str] = set()
    for line in path.read_text().splitlines()[1:]:
        f = line.split("\t")
        out.add(f[0])
        if len(f) == 4:
            out.add(f[2])
    return out


def calibration_images(lfw: Path, pairs: Path, count: int) -> list[Path]:
    """``count`` images of LFW identities with a single image that the pairs file never names,
    evenly spaced over the sorted names: faces that no evaluation ever sees."""
    excluded = pair_identities(pairs)
    singles = sorted(
        d.name
        for d in lfw.iterdir()
        if d.is_dir() and d.name not in excluded and len(list(d.glob("*.jpg"))) == 1
    )
    chosen = singles[:: max(1, len(singles) // count)][:count]
    return [next((lfw / name).glob("*.jpg")) for name in chosen]


def identification_sets(
    lfw: Path, limit: int | None
) -> tuple[list[Path], list[int], list[Path], list[int]]:
    """1:N on LFW: (gallery, its ids, probes, their ids). The gallery is the first image of
    every identity with two or more; mated probes are their other images; non-mated probes
    (id -1) every image of identities with one. ``limit``: at most that many identities in
    the gallery and three times as many non-mated probes."""
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    gallery, gallery_ids, probes, probe_ids = [], [], [], []
    enrolled = singles = 0
    for number, person in enumerate(people):
        images = sorted(person.glob("*.jpg"))
        if len(images) >= 2 and (limit is None or enrolled < limit):
            gallery.append(images[0])
            gallery_ids.append(number)
            probes += images[1:]
            probe_ids += [number] * (len(images) - 1)
            enrolled += 1
        elif len(images) == 1 and (limit is None or singles < 3 * limit):
            probes.append(images[0])
            probe_ids.append(-1)
            singles += 1
    return gallery, gallery_ids, probes, probe_ids


def summary(scores: F64, p: Pairs) -> dict[str, float]:
    """10-fold accuracy and TAR at FAR 1e-3 in percent, rounded as the models' JSON files."""
    accs = fold_accuracies(scores, p.same, p.fold)
    tar, thr = tar_at_far(scores, p.same, 1e-3)
    return {
        "acc_mean": round(float(accs.mean()) * 100, 3),
        "acc_std": round(float(accs.std()) * 100, 3),
        "tar_at_far_1e-3": round(tar * 100, 2),
        "threshold_far_1e-3": round(thr, 4),
    }
