"""Accuracy through the device's own pipeline (detect -> align -> embed), as ``eval.json``.

LFW View 2 verification (10-fold accuracy, TAR at FAR 1e-3) for the shipped profiles and the
float MobileFaceNet; 1:N identification on LFW (gallery: the first image of every identity
with two or more images; mated probes: their other images; non-mated probes: every image of
identities with one image) with FNIR at FPIR 1e-2/1e-3/1e-4, the DET curves and the threshold
at each point; quantisation damage (float vs int8 cosine); the same per group with a CSV of
``image,group``. :mod:`tools.evaluation.report` renders the results.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tools.evaluation.embedding import F32, PROFILES, embed_images, unit_rows
from tools.evaluation.label_noise import label_noise, name_duplicates, recommend, tail_model
from tools.evaluation.lfw import Pairs, identification_sets, read_pairs
from tools.evaluation.metrics import (
    Searches,
    binomial_interval,
    bootstrap_at_fpir,
    drop,
    search,
    tar_at_far,
    ten_fold_accuracy,
)
from tools.evaluation.template_run import from_embedded
from tools.report import cpu_seconds

NAMES = (*PROFILES, "mobilefacenet_float32")
F64 = npt.NDArray[np.float64]
Embedded = dict[str, dict[str, F32] | None]


@dataclass
class Identification:
    """1:N results per embedder name."""

    searches: dict[str, Searches] = field(default_factory=dict)
    fixed: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    curves: dict[str, tuple[F64, F64]] = field(default_factory=dict)
    operating: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    noise: dict[str, dict[str, Any]] = field(default_factory=dict)


def evaluate(
    lfw: Path,
    pairs_file: Path,
    *,
    limit: int | None,
    workers: int,
    bootstrap: int,
    groups: Path | None,
) -> dict[str, Any]:
    """The whole evaluation: what ``eval.json`` holds (the report's data and its plots')."""
    started = time.monotonic()
    pairs = read_pairs(pairs_file)
    if limit:
        pairs = pairs.subset(np.arange(len(pairs.same)) % 300 < max(2, limit // 5))
    gallery, gallery_ids, probes, probe_ids = identification_sets(lfw, limit)
    pair_paths = [str(lfw / image) for image in pairs.images]
    used = {pair_paths[i] for i in np.concatenate([pairs.a, pairs.b])}
    images = sorted({str(p) for p in [*gallery, *probes]} | used)
    embedded = embed_images(images, workers)
    verification = {name: verify(embedded, pairs, pair_paths, name) for name in NAMES}
    found = identify(embedded, gallery, gallery_ids, probes, probe_ids, bootstrap=bootstrap)
    operating, noise = found.operating, found.noise
    # Per group at the lowest FPIR this set supports (1e-3 on full LFW).
    point = next((f for f in ("0.001", "0.01") if f in operating["accurate"]), None)
    group_rows = []
    if groups and point:
        thresholds = {n: operating[n][point]["threshold"] for n in NAMES}
        group_rows = by_group(groups, found.searches, probes, probe_ids, thresholds)
    recommended = {
        name: recommend(operating[name], noise[name]) for name in PROFILES if name in operating
    }
    marks = det_marks(found)
    template = from_embedded(lfw, embedded, bootstrap) if not limit else None
    return {
        "template": template,
        "images": len(images),
        "no_face": sum(v is None for v in embedded.values()),
        "verification": verification,
        "identification": operating,
        "gallery": len(gallery),
        "mated_searches": int(sum(i >= 0 for i in probe_ids)),
        "nonmated_searches": int(sum(i < 0 for i in probe_ids)),
        "quantisation_cosine_mobilefacenet": quantisation(embedded),
        "recommended_threshold_accurate": (recommended.get("accurate") or {}).get("threshold"),
        "recommended": recommended,
        "label_noise": noise,
        "bootstrap": bootstrap,
        "fixed_thresholds": found.fixed,
        "seconds": time.monotonic() - started,
        "cpu_seconds": cpu_seconds(),
        "load_average": os.getloadavg(),
        "limit": limit,
        "by_group": group_rows,
        "plots": {
            "det": {
                name: {"fpir": fpir.tolist(), "fnir": fnir.tolist(), "marks": marks.get(name, [])}
                for name, (fpir, fnir) in found.curves.items()
            },
            "scores": {
                name: {
                    "mated": found.searches[name].mated_score.tolist(),
                    "nonmated_top": found.searches[name].nonmated_top.tolist(),
                }
                for name in PROFILES
            },
        },
    }


def _dim(embedded: Embedded, name: str) -> int:
    return next(len(v[name]) for v in embedded.values() if v is not None)


def verify(embedded: Embedded, pairs: Pairs, paths: list[str], name: str) -> dict[str, float]:
    """LFW View 2 for one embedder; a pair with an image where no face was found fails."""
    dim = _dim(embedded, name)
    a = unit_rows([(embedded[paths[i]] or {}).get(name) for i in pairs.a], dim)
    b = unit_rows([(embedded[paths[i]] or {}).get(name) for i in pairs.b], dim)
    scores = np.sum(a * b, axis=1)
    scores[(~a.any(axis=1)) | (~b.any(axis=1))] = -1.0  # no face found: a failure
    mean, std = ten_fold_accuracy(scores, pairs.same, pairs.fold)
    tar, thr = tar_at_far(scores, pairs.same, 1e-3)
    return {"accuracy": mean, "std": std, "tar_far_1e-3": tar, "threshold_far_1e-3": thr}


def identify(
    embedded: Embedded,
    gallery: list[Path],
    gallery_ids: list[int],
    probes: list[Path],
    probe_ids: list[int],
    *,
    bootstrap: int,
) -> Identification:
    """Every probe searched against the gallery, per embedder: operating points with bootstrap
    intervals, fixed thresholds, DET curve, label noise and the tail model."""
    out = Identification()
    manifest = manifest_thresholds()
    nonmated_paths = [p for p, i in zip(probes, probe_ids, strict=True) if i < 0]
    duplicates, duplicate_of = name_duplicates(gallery, nonmated_paths)
    for name in NAMES:
        dim = _dim(embedded, name)
        g = unit_rows([(embedded[str(p)] or {}).get(name) for p in gallery], dim)
        q = unit_rows([(embedded[str(p)] or {}).get(name) for p in probes], dim)
        result = search(g, np.array(gallery_ids), q, np.array(probe_ids))
        out.searches[name] = result
        best = np.argmax(q[np.array(probe_ids) < 0] @ g.T, axis=1)
        noise = label_noise(
            result, best, gallery, nonmated_paths, duplicates=duplicates, duplicate_of=duplicate_of
        )
        clean = drop(result, duplicates)
        out.curves[name] = result.det()
        out.fixed[name] = {
            f"{t:.2f}": {"fpir": result.fpir(t), "fnir": result.fnir(t)}
            for t in (0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80)
        }
        near = np.array(noise.pop("near_mask")) | duplicates
        out.operating[name] = operating_points(result, clean, near, bootstrap)
        noise["model"] = tail_model(result, bootstrap, gallery, nonmated_paths, best)
        if name in manifest:
            noise["manifest"] = manifest_point(result, clean, manifest[name])
        out.noise[name] = noise
    return out


def operating_points(
    result: Searches, clean: Searches, near: npt.NDArray[np.bool_], bootstrap: int
) -> dict[str, dict[str, Any]]:
    """Threshold and FNIR at FPIR 1e-2/1e-3/1e-4 (those the searches can resolve)."""
    points: dict[str, dict[str, Any]] = {}
    for fpir in (1e-2, 1e-3, 1e-4):
        if fpir * len(result.nonmated_top) < 1:
            continue
        at: dict[str, Any] = {}
        for label, data in (("raw", result), ("clean", clean)):
            threshold, fnir = bootstrap_at_fpir(data, fpir, bootstrap)
            at[label] = {"threshold": asdict(threshold), "fnir": asdict(fnir)}
        # Sensitivity only: also without every near-duplicate (scores decide, not labels).
        fnir_near, threshold_near = drop(result, near).at_fpir(fpir)
        at["without_near"] = {"threshold": threshold_near, "fnir": fnir_near}
        # Kept for readers of earlier reports: the raw point.
        at["fnir"], at["threshold"] = result.at_fpir(fpir)
        points[f"{fpir:g}"] = at
    return points


def manifest_thresholds() -> dict[str, float]:
    """Each shipped profile's ``recommended_threshold`` in models/MANIFEST.json."""
    from agent.vision.manifest import load_manifest

    raw = load_manifest().raw["profiles"]
    return {
        p: float(raw[p]["recommended_threshold"])
        for p in PROFILES
        if raw.get(p, {}).get("recommended_threshold") is not None
    }


def manifest_point(result: Searches, clean: Searches, t: float) -> dict[str, Any]:
    """FPIR (raw and clean, with Wilson intervals) and FNIR at the MANIFEST's threshold."""
    k = int(np.sum(result.nonmated_top > t))
    k_clean = int(np.sum(clean.nonmated_top > t))
    return {
        "threshold": t,
        "fpir": result.fpir(t),
        "fpir_ci": binomial_interval(k, len(result.nonmated_top)),
        "false_alerts": k,
        "fpir_clean": clean.fpir(t),
        "fpir_clean_ci": binomial_interval(k_clean, len(clean.nonmated_top)),
        "fnir": result.fnir(t),
    }


def det_marks(found: Identification) -> dict[str, list[tuple[float, float, str]]]:
    """The points marked on the shipped profiles' DET curves (the float model's curve lies on
    fast's): the empirical operating points, the tail model's and the MANIFEST's."""
    marks: dict[str, list[tuple[float, float, str]]] = {}
    for name in PROFILES:
        result, model = found.searches[name], found.noise[name]["model"]
        marks[name] = [
            (result.fpir(v["threshold"]), v["fnir"], f"FPIR {k} (data)")
            for k, v in found.operating[name].items()
        ]
        t = model["threshold"]["estimate"]
        marks[name].append((result.fpir(t), result.fnir(t), f"model 1e-3: {t:.3f}"))
        if "manifest" in found.noise[name]:
            m = found.noise[name]["manifest"]
            marks[name].append((m["fpir"], m["fnir"], f"MANIFEST {m['threshold']:.3f}"))
    return marks


def quantisation(embedded: Embedded) -> dict[str, float]:
    """Cosine of the shipped int8 MobileFaceNet (the fast profile) to the float model."""
    cosines = np.array(
        [
            float(
                np.dot(v["fast"], v["mobilefacenet_float32"])
                / np.linalg.norm(v["fast"])
                / np.linalg.norm(v["mobilefacenet_float32"])
            )
            for v in embedded.values()
            if v is not None
        ]
    )
    return {"mean": float(cosines.mean()), "p1": float(np.percentile(cosines, 1))}


def by_group(
    groups_csv: Path,
    searches: dict[str, Searches],
    probe_paths: list[Path],
    probe_ids: list[int],
    thresholds: dict[str, float],
) -> list[list[str]]:
    """FNIR and FPIR per group at one global threshold (NIST-style equitability)."""
    group_of: dict[str, str] = {}
    with groups_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            group_of[Path(row["image"]).name] = row["group"]
    rows = []
    ids = np.array(probe_ids)
    for name, result in searches.items():
        mated_paths = [p for p, i in zip(probe_paths, ids, strict=True) if i >= 0]
        nonmated_paths = [p for p, i in zip(probe_paths, ids, strict=True) if i < 0]
        for group in sorted(set(group_of.values())):
            m = np.array([group_of.get(p.name) == group for p in mated_paths])
            n = np.array([group_of.get(p.name) == group for p in nonmated_paths])
            if not m.any() and not n.any():
                continue
            sub = Searches(result.mated_score[m], result.mated_rank1[m], result.nonmated_top[n])
            t = thresholds[name]
            fnir = f"{sub.fnir(t):.4f}" if m.any() else "-"
            fpir = f"{sub.fpir(t):.4f}" if n.any() else "-"
            rows.append([name, group, str(int(m.sum())), str(int(n.sum())), fnir, fpir])
    return rows
