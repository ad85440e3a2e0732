"""LFW View 2 evaluation through the real pipeline (decode -> BlazeFace -> align -> embed).

    python models/eval_lfw.py --lfw DIR --pairs FILE [--models-dir DIR] [--peer-python PY]

Reports, for every embedder file in the manifest (no flip and flip-averaged) and every profile:
10-fold accuracy (threshold chosen on the other 9 folds), TAR at FAR 1e-3 over all 6,000 pairs,
and float-vs-quantised mean cosine; then the per-face time (detect + align + embed, median over
``--timing`` images) for each profile and, with ``--peer-python``, for ``face_recognition``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agent.vision.detector import FaceDetector, pick_central  # noqa: E402
from agent.vision.embedder import ModelEmbedder, ProfileEmbedder, l2_normalise  # noqa: E402
from agent.vision.image import read_image  # noqa: E402
from agent.vision.manifest import Manifest, load_manifest  # noqa: E402
from tools.evaluation.lfw import Pairs, add_lfw_arguments, read_pairs, summary  # noqa: E402

log = logging.getLogger("eval_lfw")
# Cached detections/embeddings are reused only with the same vision code and model bytes.
CODE = hashlib.sha256(
    b"".join(f.read_bytes() for f in sorted((ROOT / "agent" / "vision").glob("*.py")))
).hexdigest()


def detections(man: Manifest, det_name: str, lfw: Path, p: Pairs, cache: Path) -> np.ndarray:
    """Keypoints (N, 6, 2) of the central face of each image; NaN where none was found."""
    key = hashlib.sha256(
        (CODE + man.model(det_name).sha256 + "\n".join(p.images)).encode()
    ).hexdigest()
    f = cache / f"det_{key[:16]}.npy"
    if f.exists():
        return np.load(f)
    det = FaceDetector.from_manifest(man, det_name)
    kps = np.full((len(p.images), 6, 2), np.nan, dtype=np.float32)
    for i, rel in enumerate(p.images):
        img = read_image(lfw / rel)
        d = pick_central(det.detect(img), img.shape[1], img.shape[0])
        if d is not None:
            kps[i] = d.keypoints
    np.save(f, kps)
    return kps


def embeddings(
    man: Manifest, name: str, lfw: Path, p: Pairs, *, kps: np.ndarray, cache: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings of each image and of its mirror (zeros where no face was found)."""
    key = hashlib.sha256((CODE + man.model(name).sha256 + str(kps.tobytes())).encode()).hexdigest()
    f = cache / f"emb_{name}_{key[:12]}.npz"
    if f.exists():
        z = np.load(f)
        return z["e"], z["ef"]
    from agent.vision.blazeface import Detection

    emb = ModelEmbedder.from_manifest(man, name)
    e = np.zeros((len(p.images), emb.spec.dim), dtype=np.float32)
    ef = np.zeros_like(e)
    for i, rel in enumerate(p.images):
        if np.isnan(kps[i]).any():
            continue
        crop = emb.crop(read_image(lfw / rel), Detection((0, 0, 0, 0), 1.0, kps[i]))
        e[i] = emb.embed_crop(crop)
        ef[i] = emb.embed_crop(crop[:, ::-1].copy())
    np.savez(f, e=e, ef=ef)
    return e, ef


def scores(e: np.ndarray, p: Pairs) -> np.ndarray:
    return np.einsum("ij,ij->i", e[p.a], e[p.b]).astype(np.float64)


def flip_avg(e: np.ndarray, ef: np.ndarray) -> np.ndarray:
    return np.array([l2_normalise(x) for x in (e + ef)])


def timing(man: Manifest, lfw: Path, p: Pairs, profiles: list[str], n: int) -> dict[str, Any]:
    """Median per-face ms (detect + align + embed; image decode excluded) per profile."""
    imgs = [read_image(lfw / rel) for rel in timing_images(p, n)]
    out: dict[str, Any] = {}
    for prof in profiles:
        det = FaceDetector.from_manifest(man, man.profile(prof).detector)
        emb = ProfileEmbedder.from_manifest(man, prof)
        td, te = [], []
        for img in imgs:
            t0 = time.perf_counter()
            d = pick_central(det.detect(img), img.shape[1], img.shape[0])
            t1 = time.perf_counter()
            if d is not None:
                emb.embed(img, d)
            t2 = time.perf_counter()
            td.append(t1 - t0)
            te.append(t2 - t1)
        tot = np.array(td) + np.array(te)
        out[prof] = {
            "images": len(imgs),
            "median_ms": round(float(np.median(tot)) * 1e3, 2),
            "detect_ms": round(float(np.median(td)) * 1e3, 2),
            "align_embed_ms": round(float(np.median(te)) * 1e3, 2),
        }
        log.info("timing %s: %s", prof, out[prof])
    return out


def evaluate_models(
    man: Manifest,
    names: list[str],
    a: argparse.Namespace,
    p: Pairs,
    *,
    kps: np.ndarray,
    res: dict[str, Any],
) -> dict[str, dict[bool, np.ndarray]]:
    """Each embedder alone (no flip, flip) and its cosine to the same family's float model."""
    embs: dict[str, dict[bool, np.ndarray]] = {}
    for n in names:
        e, ef = embeddings(man, n, a.lfw, p, kps=kps, cache=a.cache)
        embs[n] = {False: e, True: flip_avg(e, ef)}
        r = {"no_flip": summary(scores(e, p), p), "flip": summary(scores(embs[n][True], p), p)}
        fam = man.model(n).family
        ref = next(
            (m for m in names if man.model(m).family == fam and man.model(m).variant == "float32"),
            None,
        )
        if ref and ref != n and ref in embs:
            ok = ~np.isnan(kps[:, 0, 0])
            r["cosine_vs_float_mean"] = round(
                float(np.einsum("ij,ij->i", e[ok], embs[ref][False][ok]).mean()), 5
            )
            r["cosine_vs_float_min"] = round(
                float(np.einsum("ij,ij->i", e[ok], embs[ref][False][ok]).min()), 5
            )
        res["models"][n] = r
        log.info("%s: %s", n, r)
    return embs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--cache", type=Path, default=ROOT / "models" / ".cache" / "eval")
    ap.add_argument("--models", help="comma-separated embedder files (default: all in manifest)")
    ap.add_argument("--timing", type=int, default=200, help="images for timing (0: skip)")
    ap.add_argument("--peer-python", help="python of a venv with face_recognition installed")
    ap.add_argument("--out", type=Path, help="write results JSON here")
    ap.add_argument(
        "--peer-from",
        type=Path,
        help="without --peer-python: carry the 'peer' section over from this earlier results "
        "file (the peer's scores do not depend on our models; its timing is that run's)",
    )
    ap.add_argument(
        "--fusion",
        type=Path,
        help="fusion.py stats: also score every pair of "
        "embedder files of different families, fused with flip averaging",
    )
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not a.lfw.is_dir() or not a.pairs.is_file():
        print(f"eval_lfw: LFW not found at {a.lfw} / {a.pairs}", file=sys.stderr)
        return 2
    a.cache.mkdir(parents=True, exist_ok=True)
    man = load_manifest(a.models_dir)
    p = read_pairs(a.pairs)
    res: dict[str, Any] = {
        "pairs": len(p.same),
        "images": len(p.images),
        "models": {},
        "profiles": {},
    }
    dets = {d for d in (pr.detector for pr in man.profiles.values())} or {
        n for n, m in man.models.items() if m.role == "detector"
    }
    kps_by_det = {d: detections(man, d, a.lfw, p, a.cache) for d in sorted(dets)}
    det0 = sorted(dets)[0]
    kps = kps_by_det[det0]
    res["detector"] = {"file": det0, "faces_found": int((~np.isnan(kps[:, 0, 0])).sum())}
    log.info(
        "detector %s found a face in %d of %d images",
        det0,
        res["detector"]["faces_found"],
        len(p.images),
    )
    names = (
        a.models.split(",")
        if a.models
        else [n for n, m in man.models.items() if m.role == "embedder"]
    )
    embs = evaluate_models(man, names, a, p, kps=kps, res=res)
    for pname, prof in man.profiles.items():
        if not all(b.model in embs for b in prof.blocks):
            continue
        fused = np.concatenate([b.scale * embs[b.model][b.flip] for b in prof.blocks], axis=1)
        res["profiles"][pname] = {"id": prof.id, **summary(scores(fused, p), p)}
        log.info("profile %s: %s", pname, res["profiles"][pname])
    if a.fusion and a.fusion.exists():
        res["fusion_candidates"] = fusion_candidates(man, embs, json.loads(a.fusion.read_text()), p)
    if a.timing:
        res["timing"] = timing(man, a.lfw, p, list(man.profiles), a.timing)
    if a.peer_python:
        res["peer"] = peer(a, p)
    elif a.peer_from:
        earlier = json.loads(a.peer_from.read_text())
        if "peer" in earlier:
            if earlier.get("pairs") != res["pairs"] or earlier.get("images") != res["images"]:
                raise SystemExit(f"eval_lfw: {a.peer_from} scored other pairs or images")
            res["peer"] = {
                **earlier["peer"],
                "carried_over": f"from an earlier run ({a.peer_from.name}), same pairs and folds",
            }
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


def fusion_candidates(
    man: Manifest, embs: dict[str, dict[bool, np.ndarray]], stats: dict[str, Any], p: Pairs
) -> dict[str, Any]:
    """Every combination of two or three embedder files of different families, z-norm fused
    (weights from the calibration impostor spread), with and without flip averaging."""
    out: dict[str, Any] = {}
    names = sorted(embs)
    combos = [
        c
        for r in (2, 3)
        for c in itertools.combinations(names, r)
        if len({man.model(n).family for n in c}) == r
    ]
    for combo in combos:
        for flip in (False, True):
            key = "flip" if flip else "no_flip"
            inv = np.array([1 / stats[n][key]["std"] for n in combo])
            w = inv / inv.sum()
            fused = np.concatenate(
                [np.sqrt(wi) * embs[n][flip] for wi, n in zip(w, combo, strict=True)], axis=1
            )
            r = {"weights": [round(float(x), 4) for x in w], **summary(scores(fused, p), p)}
            out[f"{'+'.join(combo)} {key}"] = r
    best = max(out.items(), key=lambda kv: kv[1]["acc_mean"])
    log.info("fusion: %d combinations, best %s %s", len(out), best[0], best[1])
    return out


def timing_images(p: Pairs, n: int) -> list[str]:
    return p.images[:: max(1, len(p.images) // n)][:n]


def peer(a: argparse.Namespace, p: Pairs) -> dict[str, Any]:
    """face_recognition (dlib HOG + ResNet) on the same images and folds, in its own venv."""
    script = str(ROOT / "models" / "evaluation" / "peer_fr.py")
    out = a.cache / "peer_face_recognition.npz"
    if not out.exists():
        lst = a.cache / "images.txt"
        lst.write_text("\n".join(p.images))
        cmd = [a.peer_python, script, "embed", str(a.lfw), str(lst), str(out)]
        subprocess.run(cmd, check=True)
    z = np.load(out)
    e = z["e"].astype(np.float64)
    d = np.linalg.norm(e[p.a] - e[p.b], axis=1)
    r: dict[str, Any] = {
        "tool": str(z["version"]),
        **summary(-d, p),
        "hog_found": int(z["found"].sum()),
        "images": len(p.images),
    }
    if a.timing:
        lst = a.cache / "timing_images.txt"
        lst.write_text("\n".join(timing_images(p, a.timing)))
        tout = a.cache / "peer_timing.npz"
        cmd = [a.peer_python, script, "time", str(a.lfw), str(lst), str(tout)]
        subprocess.run(cmd, check=True)
        t = np.load(tout)["times"]
        r["timing"] = {
            "images": len(t),
            "median_ms": round(float(np.median(t.sum(1))) * 1e3, 2),
            "detect_ms": round(float(np.median(t[:, 0])) * 1e3, 2),
            "encode_ms": round(float(np.median(t[:, 1])) * 1e3, 2),
        }
    log.info("peer: %s", r)
    return r


if __name__ == "__main__":
    raise SystemExit(main())
