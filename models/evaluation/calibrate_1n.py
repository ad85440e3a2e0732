"""1:N thresholds per profile (issue 16): list sizes 10-100k x FPIR 1e-2..1e-4 x template size K.

    python models/evaluation/calibrate_1n.py [--lfw DIR] [--pairs FILE] [--workers 2]
        [--k 1 --k 3] [--out models/calibration_1n.json] [--manifest models/MANIFEST.json]

Reads every profile from MANIFEST.json and embeds through ``agent.models.load_profile`` (the
device's and enrolment's code: detector, alignment, flip as the profile says). The split, by
identity (``split``):

- *listed photos* (the gallery): the first photo of each LFW identity that the 10-fold pairs
  file never names (1,468 people): the calibration faces of the model build;
- *K = 1 strangers*: every photo of those identities, scored against the other identities'
  listed photos: disjoint from every evaluation pair;
- *K = 3 strangers*: templates (mean of K unit embeddings, renormalised) of consecutive photos of
  identities with at least K photos. Only 15 identities outside the pairs file have 3, so these
  come from the *calibration half* of the pairs file's identities (sha256 of the name, first byte
  even; at most ``PER_ID`` photos each), plus those 15;
- *held out*: the other half of the pairs file's identities (first byte odd), never used above:
  random lists of N of their first photos, searched by their other photos (K = 1) and templates
  (K = 3) of identities not on the list. Measured FPIR at the calibrated thresholds is written
  beside the prediction.

The verification figures (10-fold, TAR) never use these thresholds. Embeddings are cached in
``models/.cache/calib_1n/<profile id>.npz`` (git-ignored), so a re-run after a profile change
re-embeds only that profile. Writes ``--out`` (thresholds, the stored tails from which
``tests/unit/test_calibration_1n.py`` re-derives them, the held-out table) and each profile's
``calibration_1n`` in MANIFEST.json (only that key is touched).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tools.evaluation.calibration_1n import (  # noqa: E402
    FPIRS,
    LIST_SIZES,
    TAIL_P,
    Tail,
    fpir_key,
    half,
    measured_fpir,
    predicted_fpir,
    templates,
    thresholds,
)
from tools.evaluation.lfw import add_lfw_arguments, pair_identities  # noqa: E402

sys.path.insert(0, str(ROOT / "models" / "build"))
from manifest import calibration_entry  # noqa: E402 - the same entry `make install` keeps

PER_ID = 6  # photos per identity at most (two K = 3 templates); George W Bush has 530
HELD_OUT_SIZES = (10, 100, 1_000)
HELD_OUT_ROUNDS = {10: 400, 100: 100, 1_000: 20}
_STATE: dict[str, Any] = {}


@dataclass(frozen=True)
class Split:
    gallery: list[tuple[str, str]]  # (identity, photo): the listed photos
    strangers_k1: list[tuple[str, str]]
    strangers_kn: dict[str, list[str]]  # identity -> photos, >= K each
    held_gallery: list[tuple[str, str]]
    held_k1: list[tuple[str, str]]
    held_kn: dict[str, list[str]]


def split(lfw: Path, pairs: Path, k: int) -> Split:
    named = pair_identities(pairs)
    people = {
        d.name: sorted(p.relative_to(lfw).as_posix() for p in d.glob("*.jpg"))
        for d in sorted(lfw.iterdir())
        if d.is_dir()
    }
    free = {n: ps for n, ps in people.items() if n not in named and ps}
    cal = {n: ps[:PER_ID] for n, ps in people.items() if n in named and half(n) == 0}
    held = {n: ps[: PER_ID + 1] for n, ps in people.items() if n in named and half(n) == 1}
    kn = {n: ps[:PER_ID] for n, ps in {**free, **cal}.items() if len(ps) >= k}
    return Split(
        gallery=[(n, ps[0]) for n, ps in free.items()],
        strangers_k1=[(n, p) for n, ps in free.items() for p in ps],
        strangers_kn=kn,
        held_gallery=[(n, ps[0]) for n, ps in held.items()],
        held_k1=[(n, p) for n, ps in held.items() for p in ps[1:]],
        held_kn={n: ps[1:] for n, ps in held.items() if len(ps) - 1 >= k},
    )


def _init(profiles: list[str]) -> None:
    from agent.models import load_profile

    _STATE["vision"] = {p: load_profile(p, threads=1) for p in profiles}


def _embed(path: str) -> dict[str, np.ndarray | None]:
    from agent.vision.detector import pick_central
    from agent.vision.image import read_image

    img = read_image(Path(path))
    out: dict[str, np.ndarray | None] = {}
    for p, v in _STATE["vision"].items():
        face = pick_central(list(v.detector.detect(img)), img.shape[1], img.shape[0])
        out[p] = None if face is None else v.embedder.embed(img, face)
    return out


def embed_all(
    lfw: Path, photos: list[str], profiles: dict[str, str], cache: Path, workers: int
) -> dict[str, dict[str, np.ndarray]]:
    """{profile: {photo: unit embedding}} (photos without a face left out), cached per profile id."""
    out: dict[str, dict[str, np.ndarray]] = {}
    todo: list[str] = []
    for name, pid in profiles.items():
        f = cache / f"{pid}.npz"
        if f.exists():
            z = np.load(f)
            got = dict(zip(z["photos"].tolist(), z["embeddings"], strict=True))
            if set(photos) <= set(got) | set(z["missing"].tolist()):
                out[name] = {p: got[p] for p in photos if p in got}
                continue
        todo.append(name)
    if todo:
        print(f"embedding {len(photos)} photos with {', '.join(todo)}", file=sys.stderr)
        found: dict[str, dict[str, np.ndarray]] = {p: {} for p in todo}
        with ProcessPoolExecutor(workers, initializer=_init, initargs=(todo,)) as pool:
            paths = [str(lfw / p) for p in photos]
            for n, (photo, res) in enumerate(
                zip(photos, pool.map(_embed, paths, chunksize=16), strict=True), 1
            ):
                for p, e in res.items():
                    if e is not None:
                        found[p][photo] = e / np.linalg.norm(e)
                if n % 500 == 0:
                    print(f"\r{n}/{len(photos)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        cache.mkdir(parents=True, exist_ok=True)
        for p in todo:
            names = sorted(found[p])
            np.savez(
                cache / f"{profiles[p]}.npz",
                photos=np.array(names),
                embeddings=np.stack([found[p][x] for x in names]).astype(np.float32),
                missing=np.array(sorted(set(photos) - set(names))),
            )
            out[p] = found[p]
    return out


def rows(emb: dict[str, np.ndarray], items: list[tuple[str, str]]) -> tuple[np.ndarray, list[str]]:
    keep = [(n, p) for n, p in items if p in emb]
    return np.stack([emb[p] for _, p in keep]).astype(np.float64), [n for n, _ in keep]


def template_rows(
    emb: dict[str, np.ndarray], people: dict[str, list[str]], k: int
) -> tuple[np.ndarray, list[str]]:
    out, ids = [], []
    for n, ps in people.items():
        have = [emb[p] for p in ps if p in emb]
        if len(have) >= k:
            t = templates(np.stack(have).astype(np.float64), k)
            out.append(t)
            ids += [n] * len(t)
    return np.concatenate(out), ids


def impostor(
    probes: np.ndarray, pids: list[str], gallery: np.ndarray, gids: list[str]
) -> np.ndarray:
    scores = probes @ gallery.T
    same = np.array(pids)[:, None] == np.array(gids)[None, :]
    out: np.ndarray = scores[~same]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--manifest", type=Path, default=ROOT / "models" / "MANIFEST.json")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "calibration_1n.json")
    ap.add_argument("--cache", type=Path, default=ROOT / "models" / ".cache" / "calib_1n")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--k", type=int, action="append", help="template sizes (default 1 and 3)")
    a = ap.parse_args()
    ks = sorted(set(a.k or [1, 3]))
    if not a.lfw.is_dir():
        print(f"calibrate_1n: LFW not found at {a.lfw} (--lfw DIR)", file=sys.stderr)
        return 2
    manifest = json.loads(a.manifest.read_text())
    profiles = {name: p["id"] for name, p in manifest["profiles"].items()}
    kmax = max(ks)
    sp = split(a.lfw, a.pairs, kmax)
    photos = sorted(
        {p for _, p in sp.strangers_k1 + sp.held_gallery + sp.held_k1}
        | {p for ps in [*sp.strangers_kn.values(), *sp.held_kn.values()] for p in ps}
    )
    emb = embed_all(a.lfw, photos, profiles, a.cache, a.workers)
    result: dict[str, Any] = {
        "what": "1:N thresholds per profile (issue 16), by models/evaluation/calibrate_1n.py",
        "model": (
            "FPIR(N, t) = 1 - (1 - p(t))^N with p(t) the per-pair impostor exceedance: "
            f"empirical down to p = {TAIL_P:g}, an exponential tail (mean excess) fitted above "
            "that quantile beyond it; thresholds rounded up to 1e-4"
        ),
        "split": {
            "listed_photos": f"first photo of each of {len(sp.gallery)} LFW identities the "
            "pairs file never names",
            "k1_strangers": f"all {len(sp.strangers_k1)} photos of those identities (against "
            "the others' listed photos): disjoint from every evaluation pair",
            "template_strangers": f"{len(sp.strangers_kn)} identities with >= {kmax} photos: "
            "those outside the pairs file plus the pairs file's calibration half (sha256(name)"
            f"[0] even), at most {PER_ID} photos each",
            "held_out": f"{len(sp.held_gallery)} identities of the pairs file's other half "
            "(sha256(name)[0] odd): lists of their first photos, searched by their other photos "
            "and templates",
        },
        "list_sizes": list(LIST_SIZES),
        "fpirs": [fpir_key(f) for f in FPIRS],
        "profiles": {},
    }
    for name, pid in profiles.items():
        e = emb[name]
        one_in_list = manifest["profiles"][name].get("recommended_threshold")
        g, gids = rows(e, sp.gallery)
        hg, hgids = rows(e, sp.held_gallery)
        per_k: dict[str, Any] = {}
        for k in ks:
            if k == 1:
                probes, pids = rows(e, sp.strangers_k1)
                hp, hpids = rows(e, sp.held_k1)
            else:
                probes, pids = template_rows(e, sp.strangers_kn, k)
                hp, hpids = template_rows(e, sp.held_kn, k)
            tail = Tail.from_scores(impostor(probes, pids, g, gids))
            table = thresholds(tail)
            held_scores = hp @ hg.T
            hid = {n: i for i, n in enumerate(sorted(set(hgids) | set(hpids)))}
            pid_arr = np.array([hid[n] for n in hpids])
            gid_arr = np.array([hid[n] for n in hgids])
            held = []
            for n in HELD_OUT_SIZES:
                if n >= len(hgids):
                    continue
                for f in FPIRS[:2]:
                    t = table[str(n)][fpir_key(f)]
                    alerts, searches = measured_fpir(
                        held_scores, pid_arr, gid_arr, n=n, t=t, rounds=HELD_OUT_ROUNDS[n], seed=n
                    )
                    held.append(
                        {
                            "n": n,
                            "fpir_target": fpir_key(f),
                            "threshold": t,
                            "predicted": round(predicted_fpir(tail, n, t), 6),
                            "measured": round(alerts / searches, 6),
                            "false_alerts": alerts,
                            "searches": searches,
                            "lists": HELD_OUT_ROUNDS[n],
                        }
                    )
            per_k[str(k)] = {
                "strangers": len(probes),
                "listed": len(g),
                "pairs": tail.pairs,
                "tail_u": round(tail.u, 5),
                "tail_p_u": tail.p_u,
                "tail_beta": round(tail.beta, 6),
                "thresholds": table,
                "held_out": held,
                "tail_scores": tail.scores.tolist(),
            }
            print(
                f"{name} K={k}: {len(probes)} strangers x {len(g)} listed, u={tail.u:.4f} "
                f"beta={tail.beta:.4f}; N=1000 FPIR 1e-3 -> {table['1000']['1e-03']}",
                file=sys.stderr,
            )
            for h in held:
                print(f"  held out {json.dumps(h)}", file=sys.stderr)
        result["profiles"][name] = {"id": pid, "one_to_one_threshold": one_in_list, "k": per_k}
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    for name in result["profiles"]:
        manifest["profiles"][name]["calibration_1n"] = calibration_entry(result, name, a.out.name)
    a.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    print(f"wrote {a.out} and the profiles' calibration_1n in {a.manifest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
