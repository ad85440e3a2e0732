"""1:N thresholds by a track template's coherence (issue 16), added to calibration_1n.json.

    python models/evaluation/calibrate_coherence.py [--lfw DIR] [--pairs FILE] [--workers 2]
        [--profile accurate] [--k 3] [--calibration models/calibration_1n.json]
        [--manifest models/MANIFEST.json]

Run after calibrate_1n.py (``make -C models calibrate`` runs both). Why: a track template is
the mean of K unit embeddings; its score against an entry is the mean of the faces' scores
divided by the template's coherence c = |mean of the unit embeddings|. K video frames of one
face have c near 1 and score like one face, K different photos have c near 0.85; one K
threshold fitted on different photos over-penalises the first. So the stranger templates are
made the way a camera makes them, binned by c, and a tail fitted per bin.

Faces as a camera sees them: each probe photo is rendered with its face at ``SIZES`` px high
(LANCZOS, as the walk-through pastes faces), on a grey canvas, JPEG quality 92, then detected
and embedded by ``agent.models.load_profile`` (the device's code). Templates of K = 3:

- *video*: one photo at three sizes, (40, 56, 80) and (56, 80, 112) px;
- *two photos*: (A at 80, A at 112, B at 112) for consecutive photos A, B of one identity;
- *three photos*: three consecutive photos at 112 px.

Identities (the split of calibrate_1n.py): the listed photos are the first photo of each LFW
identity the pairs file never names, enrolled as photos (not rendered); the calibration
strangers are every photo of those identities (scored against the others' listed photos) and
up to ``PER_ID`` photos of the pairs file's calibration half (sha256(name)[0] even). Held out:
the other half, its first photos as lists, its other photos rendered into templates the same
way; measured FPIR per bin and over all templates (each at its bin's threshold) is written
beside the prediction. Embeddings are cached in ``models/.cache/calib_coherence/<id>.npz``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tools.evaluation.calibration_1n import (  # noqa: E402
    FPIRS,
    Tail,
    bin_index,
    by_coherence,
    coherence,
    coherence_edges,
    fpir_key,
    half,
    measured_fpir,
    predicted_fpir,
    template_of,
    threshold_for,
)
from tools.evaluation.lfw import add_lfw_arguments, pair_identities  # noqa: E402

sys.path.insert(0, str(ROOT / "models" / "build"))
from manifest import calibration_entry  # noqa: E402

PER_ID = 6
SIZES = (40, 56, 80, 112)  # face height, px; 0 below is the photo itself (the listed side)
CANVAS = 320
VIDEO = ((40, 56, 80), (56, 80, 112))
HELD_OUT_SIZES = (10, 100, 1_000)
HELD_OUT_ROUNDS = {10: 400, 100: 100, 1_000: 20}
_STATE: dict[str, Any] = {}


def people(lfw: Path, pairs: Path) -> dict[str, dict[str, list[str]]]:
    """{"free": ..., "cal": ..., "held": ...}: identity -> photos (relative paths)."""
    named = pair_identities(pairs)
    every = {
        d.name: sorted(p.relative_to(lfw).as_posix() for p in d.glob("*.jpg"))
        for d in sorted(lfw.iterdir())
        if d.is_dir()
    }
    return {
        "free": {n: ps for n, ps in every.items() if n not in named and ps},
        "cal": {n: ps[:PER_ID] for n, ps in every.items() if n in named and half(n) == 0},
        "held": {n: ps[: PER_ID + 1] for n, ps in every.items() if n in named and half(n) == 1},
    }


def _init(profile: str) -> None:
    from agent.models import load_profile

    _STATE["vision"] = load_profile(profile, threads=1)


def render(img: np.ndarray, face_h: float, size: int) -> np.ndarray:
    """The photo scaled so its face is ``size`` px high, on a grey canvas, through JPEG 92."""
    from PIL import Image

    s = size / face_h
    w, h = max(2, round(img.shape[1] * s)), max(2, round(img.shape[0] * s))
    small = Image.fromarray(img).resize((w, h), Image.Resampling.LANCZOS)
    side = max(CANVAS, w + 32, h + 32)
    canvas = Image.new("RGB", (side, side), (118, 118, 118))
    canvas.paste(small, ((side - w) // 2, (side - h) // 2))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=92)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


Job = tuple[bool, bool]  # (the photo itself: a listed photo, its renders: a probe)


def _embed(job: tuple[str, bool, bool]) -> dict[int, np.ndarray]:
    """{0: the photo's embedding} if ``listed``, {size: each render's} if ``rendered`` (faces
    found only)."""
    from agent.vision.detector import pick_central
    from agent.vision.image import read_image

    path, listed, rendered = job
    vision = _STATE["vision"]
    img = read_image(Path(path))
    face = pick_central(list(vision.detector.detect(img)), img.shape[1], img.shape[0])
    if face is None:
        return {}
    out = {0: vision.embedder.embed(img, face)} if listed else {}
    if rendered:
        face_h = face.box[3] - face.box[1]
        for size in SIZES:
            r = render(img, face_h, size)
            got = pick_central(list(vision.detector.detect(r)), r.shape[1], r.shape[0])
            if got is not None:
                out[size] = vision.embedder.embed(r, got)
    return {k: v / np.linalg.norm(v) for k, v in out.items()}


def embed_all(
    lfw: Path, jobs: dict[str, Job], profile: str, pid: str, cache: Path, workers: int
) -> dict[tuple[str, int], np.ndarray]:
    f = cache / f"{pid}.npz"
    if f.exists():
        z = np.load(f)
        got = {(p, int(s)): e for p, s, e in zip(z["photos"], z["sizes"], z["emb"], strict=True)}
        done = set(z["done"].tolist())
        if set(jobs) <= done:
            return got
    print(f"{profile}: embedding {len(jobs)} photos and their renders", file=sys.stderr)
    out: dict[tuple[str, int], np.ndarray] = {}
    order = sorted(jobs)
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(profile,)) as pool:
        work = [(str(lfw / p), *jobs[p]) for p in order]
        for n, (photo, res) in enumerate(
            zip(order, pool.map(_embed, work, chunksize=16), strict=True), 1
        ):
            for size, e in res.items():
                out[(photo, size)] = e
            if n % 500 == 0:
                print(f"\r{n}/{len(order)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    keys = sorted(out)
    np.savez(
        f,
        photos=np.array([k[0] for k in keys]),
        sizes=np.array([k[1] for k in keys]),
        emb=np.stack([out[k] for k in keys]).astype(np.float32),
        done=np.array(order),
    )
    return out


def make_templates(
    emb: dict[tuple[str, int], np.ndarray], who: dict[str, list[str]]
) -> tuple[np.ndarray, list[str], list[str]]:
    """(T, 3, D) unit embeddings, their identities and kinds (video, two, three)."""
    rows: list[np.ndarray] = []
    ids: list[str] = []
    kinds: list[str] = []

    def add(keys: list[tuple[str, int]], name: str, kind: str) -> None:
        if all(k in emb for k in keys):
            rows.append(np.stack([emb[k] for k in keys]))
            ids.append(name)
            kinds.append(kind)

    for name, ps in who.items():
        for p in ps:
            for sizes in VIDEO:
                add([(p, s) for s in sizes], name, "video")
        for a, b in itertools.pairwise(ps):
            add([(a, 80), (a, 112), (b, 112)], name, "two")
        for a, b, c in zip(ps, ps[1:], ps[2:], strict=False):
            add([(a, 112), (b, 112), (c, 112)], name, "three")
    return np.stack(rows).astype(np.float64), ids, kinds


def gallery(
    emb: dict[tuple[str, int], np.ndarray], who: dict[str, list[str]]
) -> tuple[np.ndarray, list[str]]:
    keep = [(n, ps[0]) for n, ps in who.items() if (ps[0], 0) in emb]
    return np.stack([emb[(p, 0)] for _, p in keep]).astype(np.float64), [n for n, _ in keep]


def calibrate(emb: dict[tuple[str, int], np.ndarray], sp: dict[str, dict[str, list[str]]]) -> Any:
    g, gids = gallery(emb, sp["free"])
    unit, pids, kinds = make_templates(emb, {**sp["free"], **sp["cal"]})
    c = coherence(unit)
    scores = template_of(unit) @ g.T
    scores[np.array(pids)[:, None] == np.array(gids)[None, :]] = -np.inf
    edges = coherence_edges(c)
    which = bin_index(c, edges)
    tails = []
    for i in range(len(edges)):
        s = scores[which == i]
        tails.append(Tail.from_scores(s[np.isfinite(s)]))
    bins = by_coherence(tails, edges)
    # The held-out half: its first photos as lists, its other photos as templates.
    held = sp["held"]
    hg, hgids = gallery(emb, held)
    hunit, hpids, hkinds = make_templates(emb, {n: ps[1:] for n, ps in held.items()})
    hc = coherence(hunit)
    hscores = template_of(hunit) @ hg.T
    ids = {n: i for i, n in enumerate(sorted(set(hgids) | set(hpids)))}
    pid_arr = np.array([ids[n] for n in hpids])
    gid_arr = np.array([ids[n] for n in hgids])
    hwhich = bin_index(hc, edges)
    checks = []
    for n in (n for n in HELD_OUT_SIZES if n < len(hgids)):
        for f in FPIRS[:2]:
            t_all = threshold_for(bins, hc, n, f)
            groups: list[tuple[str, np.ndarray]] = [("all", np.ones(len(hc), bool))]
            groups += [(f"bin {edges[i]:.3f}", hwhich == i) for i in range(len(edges))]
            groups += [(k, np.array(hkinds) == k) for k in ("video", "two", "three")]
            for label, mask in groups:
                if not mask.any():
                    continue
                alerts, searches = measured_fpir(
                    hscores[mask],
                    pid_arr[mask],
                    gid_arr,
                    n=n,
                    t=t_all[mask],
                    rounds=HELD_OUT_ROUNDS[n],
                    seed=n,
                )
                row: dict[str, Any] = {
                    "n": n,
                    "fpir_target": fpir_key(f),
                    "templates": label,
                    "measured": round(alerts / max(1, searches), 6),
                    "false_alerts": alerts,
                    "searches": searches,
                }
                if label.startswith("bin"):
                    i = int(np.argmax([lbl == label for lbl in (f"bin {e:.3f}" for e in edges)]))
                    t = bins[i].thresholds[str(n)][fpir_key(f)]
                    row["threshold"] = t
                    row["predicted"] = round(predicted_fpir(tails[i], n, t), 6)
                checks.append(row)
    counts = {
        k: {
            "calibration": int(np.sum(np.array(kinds) == k)),
            "held_out": int(np.sum(np.array(hkinds) == k)),
            "coherence_median": round(float(np.median(c[np.array(kinds) == k])), 4),
        }
        for k in ("video", "two", "three")
    }
    return {
        "what": "thresholds by template coherence (K = 3), models/evaluation/calibrate_coherence.py",
        "templates": counts,
        "listed": len(g),
        "bins": [
            {
                **b.to_json(),
                "strangers": int(np.sum(which == i)),
                "pairs": tails[i].pairs,
                "tail_u": round(tails[i].u, 5),
                "tail_beta": round(tails[i].beta, 6),
                "tail_scores": tails[i].scores.tolist(),  # the test re-derives the bins
            }
            for i, b in enumerate(bins)
        ],
        "held_out": checks,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--manifest", type=Path, default=ROOT / "models" / "MANIFEST.json")
    ap.add_argument("--calibration", type=Path, default=ROOT / "models" / "calibration_1n.json")
    ap.add_argument("--cache", type=Path, default=ROOT / "models" / ".cache" / "calib_coherence")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--profile", action="append", help="profiles (default: every one)")
    ap.add_argument("--k", type=int, default=3, help="the template size the agent decides on")
    a = ap.parse_args()
    if a.k != 3:
        print("calibrate_coherence: the templates built here have K = 3", file=sys.stderr)
        return 2
    if not a.lfw.is_dir():
        print(f"calibrate_coherence: LFW not found at {a.lfw} (--lfw DIR)", file=sys.stderr)
        return 2
    manifest = json.loads(a.manifest.read_text())
    calib = json.loads(a.calibration.read_text())
    sp = people(a.lfw, a.pairs)
    listed = {ps[0] for who in (sp["free"], sp["held"]) for ps in who.values()}
    probes = {p for who in (sp["free"], sp["cal"]) for ps in who.values() for p in ps}
    probes |= {p for ps in sp["held"].values() for p in ps[1:]}
    jobs = {p: (p in listed, p in probes) for p in sorted(listed | probes)}
    for name in a.profile or list(manifest["profiles"]):
        pid = manifest["profiles"][name]["id"]
        if calib["profiles"].get(name, {}).get("id") != pid:
            print(f"calibrate_coherence: {name}: run calibrate_1n.py first", file=sys.stderr)
            return 2
        emb = embed_all(a.lfw, jobs, name, pid, a.cache, a.workers)
        result = calibrate(emb, sp)
        calib["profiles"][name]["k"][str(a.k)]["by_coherence"] = result
        for b in result["bins"]:
            print(
                f"{name} c >= {b['from']:.3f}: {b['strangers']} templates, N=1000 FPIR 1e-3 -> "
                f"{b['thresholds']['1000']['1e-03']}",
                file=sys.stderr,
            )
        for h in result["held_out"]:
            print(f"  held out {json.dumps(h)}", file=sys.stderr)
    a.calibration.write_text(json.dumps(calib, indent=1) + "\n")
    for name in calib["profiles"]:
        if name in manifest["profiles"]:
            entry = calibration_entry(calib, name, a.calibration.name)
            manifest["profiles"][name]["calibration_1n"] = entry
    a.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    print(
        f"wrote {a.calibration} and the profiles' calibration_1n in {a.manifest}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
