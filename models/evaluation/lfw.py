"""LFW View 2 pairs and the standard metrics (10-fold accuracy, TAR at a fixed FAR)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Pairs:
    images: list[str]  # unique relative paths, sorted
    a: npt.NDArray[np.int64]  # index into images, per pair
    b: npt.NDArray[np.int64]
    same: npt.NDArray[np.bool_]
    fold: npt.NDArray[np.int64]


def rel(name: str, n: str) -> str:
    return f"{name}/{name}_{int(n):04d}.jpg"


def read_pairs(path: Path) -> Pairs:
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


def _best_threshold(scores: F64, same: npt.NDArray[np.bool_]) -> float:
    order = np.argsort(scores)
    s, y = scores[order], same[order]
    # Accept score > t. For t between s[i-1] and s[i]: correct = negatives below + positives above.
    neg_below = np.concatenate([[0], np.cumsum(~y)])
    pos_above = y.sum() - np.concatenate([[0], np.cumsum(y)])
    acc = neg_below + pos_above
    i = int(np.argmax(acc))
    if i == 0:
        return float(s[0] - 1e-6)
    if i == len(s):
        return float(s[-1] + 1e-6)
    return float((s[i - 1] + s[i]) / 2)


def ten_fold(scores: F64, same: npt.NDArray[np.bool_], fold: npt.NDArray[np.int64]) -> F64:
    """Per-fold accuracy, each fold's threshold chosen on the other folds."""
    accs = []
    for k in np.unique(fold):
        tr, te = fold != k, fold == k
        t = _best_threshold(scores[tr], same[tr])
        accs.append(float(((scores[te] > t) == same[te]).mean()))
    return np.array(accs)


def tar_at_far(scores: F64, same: npt.NDArray[np.bool_], far: float = 1e-3) -> tuple[float, float]:
    """(TAR, threshold) with at most ``far`` of the impostor pairs scoring above the threshold."""
    imp = np.sort(scores[~same])[::-1]
    k = int(np.floor(far * len(imp)))
    t = float(imp[k])
    return float((scores[same] > t).mean()), t


def summary(scores: F64, p: Pairs) -> dict[str, float]:
    accs = ten_fold(scores, p.same, p.fold)
    tar, thr = tar_at_far(scores, p.same)
    return {
        "acc_mean": round(float(accs.mean()) * 100, 3),
        "acc_std": round(float(accs.std()) * 100, 3),
        "tar_at_far_1e-3": round(tar * 100, 2),
        "threshold_far_1e-3": round(thr, 4),
    }
