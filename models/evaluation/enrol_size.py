"""Enrolment by face size (issue 16 §3): where does recognition collapse as the enrolled photo's
face shrinks from 112 to 24 px?

    python models/evaluation/enrol_size.py [--lfw DIR] [--pairs FILE] [--profile accurate]
        [--sizes 24 32 40 48 60 80 112] [--workers 2] [--out models/enrol_size.json]

Calibration identities only (the split of ``calibrate_1n.py``: the pairs file's calibration
half with at least 3 photos, never the held-out half): each one's first photo is *enrolled*
scaled down (Pillow, antialiased) so that its face box (BlazeFace, at full size) has the given
shorter side, then detected, quality-checked for blur and embedded as ``lfr-watchlist enrol``
does, without its size gate; its 2nd and 3rd photos at full size are the *mated searches*; the
photos of the 1,468 identities the pairs file never names are the *non-mated searches*. Per
size: share enrolled (face found, not too blurred), rank-1 of the mated searches, FNIR and
FPIR at the full-size calibrated threshold for this list size (K = 1, FPIR 1e-3), and the
impostor scores' 99.9th percentile. A photo that cannot be enrolled counts as a miss for its
mated searches. Full-size search embeddings come from calibrate_1n.py's cache.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models" / "evaluation"))
from calibrate_1n import embed_all, split  # noqa: E402

from central.thresholds import interpolate  # noqa: E402
from tools.evaluation.lfw import add_lfw_arguments  # noqa: E402

SIZES = (24, 32, 40, 48, 60, 80, 112)
_STATE: dict[str, Any] = {}


def _init(profile: str) -> None:
    from agent.models import load_profile

    _STATE["vision"] = load_profile(profile, threads=1)


def _enrol_small(job: tuple[str, tuple[int, ...]]) -> dict[int, tuple[np.ndarray | None, str]]:
    """The photo at each face size: (embedding or None, what happened)."""
    from PIL import Image

    from agent.vision.detector import pick_central
    from central.enrol import MIN_FACE_DETAIL, face_detail

    path, sizes = job
    vision = _STATE["vision"]
    with Image.open(path) as im:
        photo = im.convert("RGB")
    full = np.asarray(photo)
    face = pick_central(list(vision.detector.detect(full)), full.shape[1], full.shape[0])
    out: dict[int, tuple[np.ndarray | None, str]] = {}
    if face is None:
        return {s: (None, "no face at full size") for s in sizes}
    x0, y0, x1, y1 = face.box
    side = min(x1 - x0, y1 - y0)
    for s in sizes:
        scale = min(1.0, s / side)
        size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
        img = np.asarray(photo.resize(size, Image.Resampling.LANCZOS)) if scale < 1 else full
        d = pick_central(list(vision.detector.detect(img)), img.shape[1], img.shape[0])
        if d is None:
            out[s] = (None, "no face")
        elif face_detail(img, d.keypoints) < MIN_FACE_DETAIL:
            out[s] = (None, "face too blurred")
        else:
            e = vision.embedder.embed(img, d)
            out[s] = (e / np.linalg.norm(e), "enrolled")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--profile", default="accurate")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fpir", type=float, default=1e-3)
    ap.add_argument("--cache", type=Path, default=ROOT / "models" / ".cache" / "calib_1n")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "enrol_size.json")
    a = ap.parse_args()
    manifest = json.loads((ROOT / "models" / "MANIFEST.json").read_text())
    profile = manifest["profiles"][a.profile]
    sp = split(a.lfw, a.pairs, 3)
    people = {n: ps for n, ps in sp.strangers_kn.items() if len(ps) >= 3}
    searches = sorted({p for ps in people.values() for p in ps[1:3]})
    # Non-mated: nobody on the list (15 identities outside the pairs file have 3 photos).
    strangers = [p for n, p in sp.strangers_k1 if n not in people]
    emb = embed_all(a.lfw, searches + strangers, {a.profile: profile["id"]}, a.cache, a.workers)
    e = emb[a.profile]
    names = sorted(people)
    jobs = [(str(a.lfw / people[n][0]), tuple(a.sizes)) for n in names]
    with ProcessPoolExecutor(a.workers, initializer=_init, initargs=(a.profile,)) as pool:
        small = list(pool.map(_enrol_small, jobs, chunksize=8))
    mated = [(i, p) for i, n in enumerate(names) for p in people[n][1:3] if p in e]
    m_rows = np.stack([e[p] for _, p in mated]).astype(np.float64)
    m_ids = np.array([i for i, _ in mated])
    s_rows = np.stack([e[p] for p in strangers if p in e]).astype(np.float64)
    table = profile["calibration_1n"]["thresholds"]["1"]
    t = interpolate(table, len(names), a.fpir)
    rows = []
    for s in a.sizes:
        got = [r[s] for r in small]
        ok = np.array([g[0] is not None for g in got])
        gallery = np.stack([g[0] if g[0] is not None else np.zeros(m_rows.shape[1]) for g in got])
        ms = m_rows @ gallery.T
        ms[:, ~ok] = -1.0  # a photo that could not be enrolled is never found
        top = ms.argmax(axis=1)
        hit_score = ms[np.arange(len(m_ids)), m_ids]
        rank1 = float(np.mean((top == m_ids) & ok[m_ids]))
        fnir = float(np.mean(~((hit_score >= t) & (top == m_ids) & ok[m_ids])))
        ns = s_rows @ gallery[ok].T
        fpir = float(np.mean(ns.max(axis=1) >= t))
        reasons: dict[str, int] = {}
        for g in got:
            reasons[g[1]] = reasons.get(g[1], 0) + 1
        rows.append(
            {
                "face_px": s,
                "enrolled": int(ok.sum()),
                "listed": len(names),
                "outcomes": reasons,
                "rank1": round(rank1, 4),
                "fnir": round(fnir, 4),
                "fpir": round(fpir, 5),
                "non_mated_searches": len(s_rows),
                "impostor_p999": round(float(np.quantile(ns, 0.999)), 4),
                "genuine_median": round(float(np.median(hit_score[ok[m_ids]])), 4),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    out = {
        "what": "enrolment by face size (issue 16 section 3), models/evaluation/enrol_size.py",
        "profile": a.profile,
        "profile_id": profile["id"],
        "threshold": t,
        "threshold_basis": f"calibrated K=1, {len(names)} entries, FPIR {a.fpir:g}",
        "mated_searches": len(m_ids),
        "rows": rows,
    }
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
