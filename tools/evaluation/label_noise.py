"""The non-mated searches that decide a low FPIR: name duplicates and near-duplicates (label
noise in LFW), the Gumbel tail model fitted to all of them, and the recommended threshold."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tools.evaluation.metrics import (
    Searches,
    binomial_interval,
    bootstrap_gumbel,
    gumbel_fit,
    gumbel_threshold,
    name_key,
)


def name_duplicates(
    gallery: list[Path], nonmated: list[Path]
) -> tuple[npt.NDArray[np.bool_], list[str | None]]:
    """Non-mated probes whose identity is an enrolled identity filed under its name with the
    words in another order (LFW's Sung_Hong_Choi / Choi_Sung-hong): evidence from the labels,
    not from the scores, that the search is in fact mated. (mask, enrolled name or None)."""
    enrolled = {name_key(p.parent.name): p.parent.name for p in gallery}
    of = [enrolled.get(name_key(p.parent.name)) for p in nonmated]
    return np.array([o is not None for o in of], dtype=bool), of


def label_noise(
    result: Searches,
    best: npt.NDArray[np.int_],
    gallery: list[Path],
    nonmated: list[Path],
    *,
    duplicates: npt.NDArray[np.bool_],
    duplicate_of: list[str | None],
) -> dict[str, Any]:
    """The non-mated searches a reader should look at: the name duplicates, and every search
    whose best score is above the median score of the mated searches that found their mate
    (a stranger who looks more alike than half the genuine pairs: a near-duplicate)."""
    hits = result.mated_score[result.mated_rank1]
    cutoff = float(np.median(hits)) if len(hits) else 1.0
    near = result.nonmated_top >= cutoff

    def row(i: int) -> dict[str, Any]:
        return {
            "probe": nonmated[i].name,
            "best_hit": gallery[int(best[i])].parent.name,
            "score": float(result.nonmated_top[i]),
            "name_duplicate_of": duplicate_of[i],
        }

    order = np.argsort(result.nonmated_top)[::-1]
    return {
        "near_cutoff": cutoff,
        "near_mask": near.tolist(),
        "near": [row(int(i)) for i in order if near[i]],
        "duplicates": [row(int(i)) for i in order if duplicates[i]],
        "top": [row(int(i)) for i in order[:12]],
    }


LIST_SIZES = (100, 1_000, 10_000, 100_000)


def relation(probe: str, enrolled: str) -> str:
    """What the two identities' names say: the same name reordered, a shared name word
    (a relative, or one person spelt two ways), or nothing."""
    a, b = name_key(probe), name_key(enrolled)
    if a == b:
        return "same name, reordered"
    shared = sorted(set(a) & set(b))
    return f"share '{' '.join(shared)}'" if shared else ""


def tail_model(
    result: Searches,
    reps: int,
    gallery: list[Path],
    nonmated: list[Path],
    best: npt.NDArray[np.int_],
) -> dict[str, Any]:
    """The Gumbel law of the non-mated best scores (all searches, nothing excluded), how well
    it fits, its thresholds, and the searches above its FPIR 1e-3 threshold."""
    location, scale = gumbel_fit(result.nonmated_top)
    threshold, fnir = bootstrap_gumbel(result, 1e-3, reps)
    above = np.flatnonzero(result.nonmated_top > threshold.estimate)
    above = above[np.argsort(result.nonmated_top[above])[::-1]]
    n = len(result.nonmated_top)
    check = [
        {
            "p": p,
            "empirical": float(np.quantile(result.nonmated_top, p)),
            "model": gumbel_threshold(location, scale, 1 - p),
        }
        for p in (0.5, 0.9, 0.95, 0.99, 0.995, 0.998, 0.999)
        if p * n < n - 1
    ]
    return {
        "location": location,
        "scale": scale,
        "threshold": asdict(threshold),
        "fnir": asdict(fnir),
        "fpir_empirical": len(above) / n,
        "fpir_empirical_ci": binomial_interval(len(above), n),
        "above": [
            {
                "probe": nonmated[i].name,
                "best_hit": gallery[int(best[i])].parent.name,
                "score": float(result.nonmated_top[i]),
                "relation": relation(nonmated[i].parent.name, gallery[int(best[i])].parent.name),
            }
            for i in above
        ],
        "check": check,
        "thresholds": {f"{f:g}": gumbel_threshold(location, scale, f) for f in (1e-2, 1e-3, 1e-4)},
        "by_list_size": {
            str(size): gumbel_threshold(location, scale, 1e-3, size / len(gallery))
            for size in LIST_SIZES
        },
    }


def recommend(points: dict[str, dict[str, Any]], noise: dict[str, Any]) -> dict[str, Any] | None:
    """The default threshold: FPIR = 1e-3 from the Gumbel tail model of all the non-mated
    searches, with its bootstrap interval, beside the empirical points."""
    model = noise["model"]
    empirical = points.get("0.001")
    return {
        "fpir": 1e-3,
        "threshold": model["threshold"]["estimate"],
        "ci": [model["threshold"]["low"], model["threshold"]["high"]],
        "fnir": model["fnir"],
        "empirical_raw": empirical["raw"]["threshold"]["estimate"] if empirical else None,
        "empirical_clean": empirical["clean"]["threshold"]["estimate"] if empirical else None,
        "empirical_1e-2": points["0.01"]["raw"]["threshold"]["estimate"]
        if "0.01" in points
        else None,
        "excluded": len(noise["duplicates"]),
    }
