"""``make eval``: accuracy through the device's own pipeline (detect -> align -> embed).

LFW View 2 verification (10-fold accuracy, TAR at FAR 1e-3) for the shipped profiles and the
float MobileFaceNet; 1:N identification on LFW (gallery: the first image of every identity
with two or more images; mated probes: their other images; non-mated probes: every image of
identities with one image) with FNIR at FPIR 1e-2/1e-3/1e-4, a DET plot and the threshold at
each point; quantisation damage (float vs int8 cosine); the same per group with
``--by-group CSV`` (``image,group``). Writes ``reports/eval.md``, ``eval.json``, PNG plots.

    python -m tests.bench.evaluate [--lfw DIR] [--pairs FILE] [--limit N] [--workers N]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.bench.metrics import Searches, search, tar_at_far, ten_fold_accuracy

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"
PROFILES = ("accurate", "fast")
FLOAT_MODEL = "mobilefacenet_float32.tflite"
F32 = npt.NDArray[np.float32]
_STATE: dict[str, Any] = {}


def _init() -> None:
    from agent.models import load_profile
    from agent.vision.embedder import ModelEmbedder
    from agent.vision.manifest import load_manifest

    manifest = load_manifest()
    vision = load_profile("accurate", threads=1)
    _STATE["detector"] = vision.detector
    # Each model runs once per face; the profiles are composed from the blocks exactly as
    # ProfileEmbedder does (sqrt(weight) * unit block, concatenated).
    _STATE["profiles"] = {p: manifest.profile(p) for p in PROFILES}
    models = {b.model for p in PROFILES for b in manifest.profile(p).blocks} | {FLOAT_MODEL}
    _STATE["models"] = {m: ModelEmbedder.from_manifest(manifest, m, 1) for m in models}


def _embed(path: str) -> tuple[str, dict[str, F32] | None]:
    from agent.vision.image import read_image

    image = read_image(Path(path))
    faces = _STATE["detector"].detect(image)
    if not faces:
        return path, None
    h, w = image.shape[:2]
    # LFW images are centred on the face: take the detection nearest the centre.
    face = min(
        faces,
        key=lambda d: (
            ((d.box[0] + d.box[2]) / 2 - w / 2) ** 2 + ((d.box[1] + d.box[3]) / 2 - h / 2) ** 2
        ),
    )
    blocks = {
        name: model.embed_crop(model.crop(image, face), flip=True)
        for name, model in _STATE["models"].items()
    }
    out = {
        p: np.concatenate(
            [np.sqrt(b.weight) * blocks[b.model] for b in _STATE["profiles"][p].blocks]
        ).astype(np.float32)
        for p in PROFILES
    }
    out["mobilefacenet_float32"] = blocks[FLOAT_MODEL]
    return path, out


def read_pairs(path: Path, lfw: Path) -> tuple[list[tuple[Path, Path, bool]], list[int]]:
    lines = path.read_text().split("\n")
    folds, per = (int(x) for x in lines[0].split())
    pairs, fold_of = [], []
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    for index, row in enumerate(rows):
        fold = index // (2 * per)
        if len(row) == 3:
            a = lfw / row[0] / f"{row[0]}_{int(row[1]):04d}.jpg"
            b = lfw / row[0] / f"{row[0]}_{int(row[2]):04d}.jpg"
            pairs.append((a, b, True))
        else:
            a = lfw / row[0] / f"{row[0]}_{int(row[1]):04d}.jpg"
            b = lfw / row[2] / f"{row[2]}_{int(row[3]):04d}.jpg"
            pairs.append((a, b, False))
        fold_of.append(fold)
    assert len(pairs) == folds * 2 * per, "pairs file does not match its header"
    return pairs, fold_of


def identification_sets(
    lfw: Path, limit: int | None
) -> tuple[list[Path], list[int], list[Path], list[int]]:
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


def det_plot(
    curves: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (fpir, fnir) in curves.items():
        keep = (fpir > 0) & (fnir > 0)
        ax.loglog(fpir[keep], fnir[keep], label=name)
    ax.set_xlabel("FPIR (non-mated searches returning a candidate)")
    ax.set_ylabel("FNIR (mated searches missed)")
    ax.set_title("LFW 1:N identification, DET")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def unit_rows(vectors: list[F32 | None], dim: int) -> npt.NDArray[np.float64]:
    out = np.zeros((len(vectors), dim))
    for i, v in enumerate(vectors):
        if v is not None:
            out[i] = v / np.linalg.norm(v)
    return out


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=DATASETS / "lfw")
    parser.add_argument("--pairs", type=Path, default=DATASETS / "lfw_pairs_10fold.txt")
    parser.add_argument("--limit", type=int, help="at most N gallery identities (quick runs)")
    parser.add_argument("--by-group", type=Path, metavar="CSV")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args(argv)
    if not args.lfw.is_dir() or not args.pairs.is_file():
        raise SystemExit(
            f"eval: LFW not found ({args.lfw}, {args.pairs}); pass --lfw DIR --pairs FILE"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pairs, folds = read_pairs(args.pairs, args.lfw)
    if args.limit:
        keep = [i for i in range(len(pairs)) if i % 300 < max(2, args.limit // 5)]
        pairs, folds = [pairs[i] for i in keep], [folds[i] for i in keep]
    gallery, gallery_ids, probes, probe_ids = identification_sets(args.lfw, args.limit)
    images = sorted(
        {str(p) for p in [*gallery, *probes]} | {str(p) for a, b, _ in pairs for p in (a, b)}
    )
    embedded: dict[str, dict[str, F32] | None] = {}
    with ProcessPoolExecutor(args.workers, initializer=_init) as pool:
        for n, (path, found) in enumerate(pool.map(_embed, images, chunksize=16), 1):
            embedded[path] = found
            if n % 500 == 0:
                print(f"\rembedded {n}/{len(images)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    missing = sum(v is None for v in embedded.values())
    names = [*PROFILES, "mobilefacenet_float32"]
    verification = {}
    same = np.array([s for _, _, s in pairs])
    fold_array = np.array(folds)
    for name in names:
        dim = next(len(v[name]) for v in embedded.values() if v is not None)
        a = unit_rows([(embedded[str(x)] or {}).get(name) for x, _, _ in pairs], dim)
        b = unit_rows([(embedded[str(y)] or {}).get(name) for _, y, _ in pairs], dim)
        scores = np.sum(a * b, axis=1)
        scores[(~a.any(axis=1)) | (~b.any(axis=1))] = -1.0  # no face found: a failure
        mean, std = ten_fold_accuracy(scores, same, fold_array)
        tar, thr = tar_at_far(scores, same, 1e-3)
        verification[name] = {
            "accuracy": mean,
            "std": std,
            "tar_far_1e-3": tar,
            "threshold_far_1e-3": thr,
        }
    searches: dict[str, Searches] = {}
    strongest: list[tuple[str, str, float]] = []
    fixed: dict[str, dict[str, dict[str, float]]] = {}
    curves: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = {}
    operating: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        dim = next(len(v[name]) for v in embedded.values() if v is not None)
        g = unit_rows([(embedded[str(p)] or {}).get(name) for p in gallery], dim)
        q = unit_rows([(embedded[str(p)] or {}).get(name) for p in probes], dim)
        result = search(g, np.array(gallery_ids), q, np.array(probe_ids))
        searches[name] = result
        if name == "accurate":
            # The strongest non-mated hits decide FPIR 1e-3 on a few thousand searches:
            # name them, so a reader can see whether they are LFW label noise.
            nonmated = [p for p, i in zip(probes, probe_ids, strict=True) if i < 0]
            hits = np.argsort(result.nonmated_top)[::-1][:8]
            top = np.argmax(q[np.array(probe_ids) < 0] @ g.T, axis=1)
            strongest = [
                (nonmated[h].stem, gallery[int(top[h])].stem, float(result.nonmated_top[h]))
                for h in hits
            ]
        curves[name] = result.det()
        operating[name] = {}
        fixed[name] = {
            f"{t:.2f}": {"fpir": result.fpir(t), "fnir": result.fnir(t)}
            for t in (0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70)
        }
        for fpir in (1e-2, 1e-3, 1e-4):
            if fpir * len(result.nonmated_top) >= 1:
                fnir, thr = result.at_fpir(fpir)
                operating[name][f"{fpir:g}"] = {"fnir": fnir, "threshold": thr}
    det_plot(curves, args.out / "eval_det.png")
    pairs_fm = [v for v in embedded.values() if v is not None]
    cosines = np.array(
        [
            float(
                np.dot(v["fast"], v["mobilefacenet_float32"])
                / np.linalg.norm(v["fast"])
                / np.linalg.norm(v["mobilefacenet_float32"])
            )
            for v in pairs_fm
        ]
    )
    # Per group at the lowest FPIR this set supports (1e-3 on full LFW).
    point = next((f for f in ("0.001", "0.01") if f in operating["accurate"]), None)
    group_rows = []
    if args.by_group and point:
        thresholds = {n: operating[n][point]["threshold"] for n in names}
        group_rows = by_group(args.by_group, searches, probes, probe_ids, thresholds)
    recommended = operating["accurate"].get("0.001", {}).get("threshold")
    summary = {
        "images": len(images),
        "no_face": missing,
        "verification": verification,
        "identification": operating,
        "gallery": len(gallery),
        "mated_searches": int(sum(i >= 0 for i in probe_ids)),
        "nonmated_searches": int(sum(i < 0 for i in probe_ids)),
        "quantisation_cosine_mobilefacenet": {
            "mean": float(cosines.mean()),
            "p1": float(np.percentile(cosines, 1)),
        },
        "recommended_threshold_accurate": recommended,
        "strongest_nonmated_accurate": strongest,
        "fixed_thresholds": fixed,
        "seconds": time.monotonic() - started,
    }
    (args.out / "eval.json").write_text(json.dumps(summary, indent=2))
    write_report(args.out / "eval.md", summary, group_rows, args.limit)
    print(json.dumps(summary, indent=2))
    print(f"report: {args.out / 'eval.md'}")
    return 0


def write_report(
    path: Path, s: dict[str, Any], group_rows: list[list[str]], limit: int | None
) -> None:
    def pct(x: float) -> str:
        return f"{100 * x:.2f} %"

    lines = [
        "# lfr-edge evaluation on LFW",
        "",
        f"{s['images']} images through the device pipeline (BlazeFace, 5-point alignment,"
        f" embedders as shipped); no face found in {s['no_face']}. "
        + (
            f"Quick run: at most {limit} gallery identities and a pairs subset."
            if limit
            else "Full LFW."
        ),
        "",
        "## Verification (LFW View 2, 10 folds)",
        "",
        "| embedder | accuracy (mean ± std) | TAR @ FAR 1e-3 | threshold @ FAR 1e-3 |",
        "|---|---|---|---|",
    ]
    for name, v in s["verification"].items():
        lines.append(
            f"| {name} | {pct(v['accuracy'])} ± {100 * v['std']:.2f} | "
            f"{pct(v['tar_far_1e-3'])} | {v['threshold_far_1e-3']:.3f} |"
        )
    lines += [
        "",
        f"## 1:N identification ({s['gallery']} enrolled identities, "
        f"{s['mated_searches']} mated and {s['nonmated_searches']} non-mated "
        "searches)",
        "",
        "| embedder | FPIR | FNIR | threshold |",
        "|---|---|---|---|",
    ]
    for name, points in s["identification"].items():
        for fpir, v in points.items():
            lines.append(f"| {name} | {fpir} | {pct(v['fnir'])} | {v['threshold']:.3f} |")
    q = s["quantisation_cosine_mobilefacenet"]
    lines += [
        "",
        "![DET](eval_det.png)",
        "",
        "## Quantisation damage",
        "",
        f"MobileFaceNet int8 (weight-only) vs float32 on the same aligned faces: mean "
        f"cosine {q['mean']:.5f}, 1st percentile {q['p1']:.5f}.",
        "",
        "## Recommended default threshold",
        "",
        (
            f"`accurate`: **{s['recommended_threshold_accurate']:.3f}**, the threshold at "
            "FPIR = 1e-3 on this 1:N set (one false alert per thousand strangers searched "
            "against a list of this size). FPIR grows with the list: re-run with the "
            "deployment's list size, and set `matching.threshold` as policy decides."
            if s["recommended_threshold_accurate"] is not None
            else "Not enough non-mated searches for FPIR 1e-3."
        ),
    ]
    lines += [
        "",
        "## At fixed thresholds (1:N)",
        "",
        "| embedder | threshold | FPIR | FNIR |",
        "|---|---|---|---|",
    ]
    for name, points in s["fixed_thresholds"].items():
        lines += [
            f"| {name} | {t} | {v['fpir']:.4f} | {pct(v['fnir'])} |" for t, v in points.items()
        ]
    lines += [
        "",
        "## Strongest non-mated searches (accurate)",
        "",
        "| probe (not enrolled) | best gallery hit | score |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c:.3f} |" for a, b, c in s["strongest_nonmated_accurate"]]
    if group_rows:
        lines += [
            "",
            "## By group (at the global threshold of the lowest FPIR above)",
            "",
            "| embedder | group | mated | non-mated | FNIR | FPIR |",
            "|---|---|---|---|---|---|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in group_rows]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
