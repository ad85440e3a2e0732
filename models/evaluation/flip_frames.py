"""Does flip averaging pay when a track gives several frames? LFW, flip against more views.

    python models/evaluation/flip_frames.py [--fusion FUSION.json] [--out JSON]

Flip averaging embeds a face and its mirror image and averages the two: every embedding costs
two model runs. The agent embeds a track several times (new track, a clearly better face, every
N frames: ``agent.core.schedule``), so the same two runs could instead embed a second frame.
This compares, per profile, at equal embedding cost (model runs per block):

1. LFW View 2 (6,000 pairs, 10-fold accuracy, TAR at FAR 1e-3), one image per side, with and
   without flip (the no-flip profile weighs its blocks by the *no-flip* calibration spreads).
2. Track probes against a one-photo gallery. Identities of the pair images with at least three
   photos: the first photo (name order) is the watchlist entry, the others are probes taken
   two by two (a "track" of two views). For every condition a probe is compared with every
   identity's entry (genuine: its own; impostor: every other), and TAR is read at the
   condition's own threshold for FAR 1e-3 and 1e-4:

   - ``flip, 1 view``: each probe photo flip-averaged, against flip-averaged entries (2 runs);
   - ``no flip, 1 view``: each probe photo alone (1 run), against no-flip entries;
   - ``no flip, 2 views, mean``: the two photos' embeddings averaged (2 runs);
   - ``no flip, 2 views, max``: the better of the two photos' scores (2 runs); this is what the
     node does today: every embedding of a track is matched on its own and any one can alert.

   Two LFW photos of one person differ far more than two frames of one walk past a camera, so
   this is the optimistic end. The pessimistic end: the second view is the *same* photo moved by
   (7, 5) px and re-detected (as in ``detector_agreement.py``), i.e. a near-identical frame.
   Real tracks lie between the two.

   Each condition's TAR difference to ``flip, 1 view`` at FAR 1e-3 gets a 95 % interval from a
   paired bootstrap over the probe pairs (thresholds held at their full-sample values; with
   hundreds of thousands of impostor scores they move little).

Embeddings are those of ``eval_lfw.py`` (same detector pass, same cache). Only numpy scoring is
added here; the moved photos go through the agent's detector and embedders.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))
from eval_lfw import detections, embeddings, flip_avg, scores  # noqa: E402

from agent.vision.blazeface import Detection  # noqa: E402
from agent.vision.detector import FaceDetector, pick_central  # noqa: E402
from agent.vision.embedder import ModelEmbedder, l2_normalise  # noqa: E402
from agent.vision.image import read_image  # noqa: E402
from agent.vision.manifest import Manifest, load_manifest  # noqa: E402
from tools.evaluation.lfw import add_lfw_arguments, read_pairs, summary  # noqa: E402
from tools.evaluation.metrics import tar_at_far  # noqa: E402

log = logging.getLogger("flip_frames")
FARS = (1e-3, 1e-4)
SHIFT = (7, 5)  # x, y pixels: the "next frame" of the pessimistic case
FLIP_1 = "flip, 1 view (2 runs)"
BOOTSTRAP = 2000  # paired resamples of the probe pairs


def weights_for(
    man: Manifest, profile: str, flip: bool, fusion: dict[str, Any] | None
) -> list[float]:
    """Block weights of ``profile`` with flip on or off: 1/std of each block's calibration
    impostor cosines (fusion.py), normalised; a one-block profile weighs 1. Without
    ``fusion``, the weights `make eval` recorded in lfw_candidates.json."""
    blocks = man.profile(profile).blocks
    if len(blocks) == 1:
        return [1.0]
    key = "flip" if flip else "no_flip"
    if fusion is not None:
        inv = np.array([1.0 / fusion[b.model][key]["std"] for b in blocks])
        return [round(float(x), 4) for x in inv / inv.sum()]
    # Without the build's fusion.json: the same weights as `make eval` recorded them (its
    # fusion candidates are keyed by the sorted file names).
    cand = json.loads((ROOT / "models" / "lfw_candidates.json").read_text())["fusion_candidates"]
    names = sorted(b.model for b in blocks)
    w = dict(zip(names, cand[f"{'+'.join(names)} {key}"]["weights"], strict=True))
    return [float(w[b.model]) for b in blocks]


def fused(parts: list[np.ndarray], w: list[float]) -> np.ndarray:
    return np.concatenate([np.sqrt(wi) * e for wi, e in zip(w, parts, strict=True)], axis=1)


def moved_embeddings(
    man: Manifest, profile: str, lfw: Path, images: list[str], cache: Path
) -> dict[str, np.ndarray]:
    """No-flip unit embeddings per block of each photo moved by SHIFT and re-detected (zeros
    where the detector found nothing)."""
    prof = man.profile(profile)
    key = f"{profile}_{'_'.join(man.model(b.model).sha256[:8] for b in prof.blocks)}"
    f = cache / f"moved_{key}_{len(images)}.npz"
    if f.exists():
        z = np.load(f)
        return {b.model: z[b.model] for b in prof.blocks}
    det = FaceDetector.from_manifest(man, prof.detector)
    embs = [ModelEmbedder.from_manifest(man, b.model) for b in prof.blocks]
    out = {
        b.model: np.zeros((len(images), e.spec.dim), np.float32)
        for b, e in zip(prof.blocks, embs, strict=True)
    }
    dx, dy = SHIFT
    for i, rel in enumerate(images):
        img = read_image(lfw / rel)
        moved = np.zeros_like(img)
        moved[dy:, dx:] = img[:-dy, :-dx]
        d = pick_central(det.detect(moved), img.shape[1], img.shape[0])
        if d is None:
            continue
        d = Detection((0, 0, 0, 0), 1.0, d.keypoints)
        for b, e in zip(prof.blocks, embs, strict=True):
            out[b.model][i] = e.embed_crop(e.crop(moved, d))
    np.savez(f, **out)
    return out


def tars(gen: np.ndarray, imp: np.ndarray) -> dict[str, Any]:
    s = np.concatenate([gen, imp]).astype(np.float64)
    same = np.concatenate([np.ones(len(gen), bool), np.zeros(len(imp), bool)])
    out: dict[str, Any] = {"genuine": len(gen), "impostor": len(imp)}
    for far in FARS:
        tar, thr = tar_at_far(s, same, far)
        out[f"tar_at_far_{far:g}"] = round(100 * tar, 2)
        out[f"threshold_far_{far:g}"] = round(thr, 4)
    return out


def track_probes(images: list[str], ok: np.ndarray) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Entry image per identity and probe pairs (identity index, image a, image b)."""
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, rel in enumerate(images):
        if ok[i]:
            by_name[rel.split("/")[0]].append(i)
    entries: list[int] = []
    probes: list[tuple[int, int, int]] = []
    for name in sorted(by_name):
        idx = sorted(by_name[name], key=lambda i: images[i])
        if len(idx) < 3:
            continue
        k = len(entries)
        entries.append(idx[0])
        rest = idx[1:]
        probes += [(k, rest[j], rest[j + 1]) for j in range(0, len(rest) - 1, 2)]
    return entries, probes


def conditions(
    e: np.ndarray,
    ef: np.ndarray,
    second: np.ndarray,
    entries: list[int],
    probes: list[tuple[int, int, int]],
    second_is_moved: bool,
) -> dict[str, Any]:
    """TARs of the four conditions (module docstring). ``e``: no-flip fused embeddings, ``ef``:
    flip fused ones; ``second`` is the second view's no-flip embedding per probe pair (the other
    photo, or the first photo moved)."""
    ident = np.array([p[0] for p in probes])
    a = np.array([p[1] for p in probes])
    mask = ident[:, None] == np.arange(len(entries))[None, :]  # genuine cells
    g_nf, g_f = e[entries], ef[entries]

    def split(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return s[mask], s[~mask]

    # With two photos, both serve as single views; a moved photo is not a probe of its own.
    firsts = [a] if second_is_moved else [a, np.array([p[2] for p in probes])]
    one_f = [split(ef[x] @ g_f.T) for x in firsts]
    one_nf = [split(e[x] @ g_nf.T) for x in firsts]
    s1, s2 = e[a] @ g_nf.T, second @ g_nf.T
    mean = np.array([l2_normalise(x) for x in (e[a] + second)])
    scored = {
        FLIP_1: [np.concatenate(z) for z in zip(*one_f, strict=True)],
        "no flip, 1 view (1 run)": [np.concatenate(z) for z in zip(*one_nf, strict=True)],
        "no flip, 2 views, mean (2 runs)": list(split(mean @ g_nf.T)),
        "no flip, 2 views, max (2 runs)": list(split(np.maximum(s1, s2))),
    }
    out = {k: tars(gen, imp) for k, (gen, imp) in scored.items()}
    # Per probe pair, the share of its genuine comparisons accepted at FAR 1e-3 (a pair with two
    # single views counts each half), for a paired bootstrap of each condition against flip.
    n = len(probes)
    accepted = {
        k: (gen > out[k]["threshold_far_0.001"]).reshape(-1, n).mean(axis=0)
        for k, (gen, _) in scored.items()
    }
    rng = np.random.default_rng(15)
    draws = rng.integers(0, n, (BOOTSTRAP, n))
    for k, acc in accepted.items():
        if k != FLIP_1:
            diff = (acc[draws] - accepted[FLIP_1][draws]).mean(axis=1) * 100
            lo, hi = np.percentile(diff, [2.5, 97.5])
            out[k]["minus_flip_1_view_at_far_0.001_ci95"] = [round(lo, 2), round(hi, 2)]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--cache", type=Path, default=ROOT / "models" / ".cache" / "eval")
    ap.add_argument("--fusion", type=Path, help="fusion.py stats (no-flip weights of accurate)")
    ap.add_argument("--profiles", default="fast,accurate")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not a.lfw.is_dir() or not a.pairs.is_file():
        print(f"flip_frames: LFW not found at {a.lfw} / {a.pairs}", file=sys.stderr)
        return 2
    a.cache.mkdir(parents=True, exist_ok=True)
    fusion = json.loads(a.fusion.read_text()) if a.fusion else None
    man = load_manifest(a.models_dir)
    p = read_pairs(a.pairs)
    res: dict[str, Any] = {"pairs": len(p.same), "images": len(p.images), "profiles": {}}
    for prof_name in a.profiles.split(","):
        prof = man.profile(prof_name)
        kps = detections(man, prof.detector, a.lfw, p, a.cache)
        ok = ~np.isnan(kps[:, 0, 0])
        raw = {
            b.model: embeddings(man, b.model, a.lfw, p, kps=kps, cache=a.cache) for b in prof.blocks
        }
        w_f, w_nf = (
            weights_for(man, prof_name, True, fusion),
            weights_for(man, prof_name, False, fusion),
        )
        e = fused([raw[b.model][0] for b in prof.blocks], w_nf)
        ef = fused([flip_avg(*raw[b.model]) for b in prof.blocks], w_f)
        r: dict[str, Any] = {
            "weights_flip": w_f,
            "weights_no_flip": w_nf,
            "lfw_flip": summary(scores(ef, p), p),
            "lfw_no_flip": summary(scores(e, p), p),
        }
        entries, probes = track_probes(p.images, ok)
        b_idx = np.array([q[2] for q in probes])
        r["tracks"] = {
            "identities": len(entries),
            "probe_pairs": len(probes),
            "second_view_other_photo": conditions(e, ef, e[b_idx], entries, probes, False),
        }
        firsts = [p.images[q[1]] for q in probes]
        mv = moved_embeddings(man, prof_name, a.lfw, firsts, a.cache)
        found = np.all([np.any(mv[b.model] != 0, axis=1) for b in prof.blocks], axis=0)
        r["tracks"]["moved_photo_faces_found"] = int(found.sum())
        sec = fused([mv[b.model] for b in prof.blocks], w_nf)
        sec[~found] = e[[q[1] for q in probes]][~found]  # no second face: the first view again
        r["tracks"]["second_view_same_photo_moved_7_5_px"] = conditions(
            e, ef, sec, entries, probes, True
        )
        res["profiles"][prof_name] = r
        log.info("%s: %s", prof_name, json.dumps(r))
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
