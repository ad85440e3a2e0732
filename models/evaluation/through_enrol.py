"""LFW View 2 accuracy measured through ``lfr-watchlist enrol`` (the ops tool), not the library.

    python models/evaluation/through_enrol.py [--lfw DIR] [--pairs FILE] [--cli lfr-watchlist]
        [--profiles accurate,fast] [--detectors blazeface[,yunet]] [--workers N] [--work DIR]
        [--peer-python PY] [--out JSON]

1. Lays out every image the pairs file names as ``TMP/<image stem>/<image>.jpg`` (a symlink to
   the LFW file; one folder per image, so each subject_ref maps to exactly one image). Nothing is
   copied; the temporary folder is removed afterwards.
2. Runs ``lfr-watchlist enrol --images TMP --out WORK/entries_<profile>.json --profile <profile>
   --central [--workers N] --detector <detector>`` per profile and detector, timing the wall
   clock and keeping its refusal lines.
   ``--central`` because LFW's photos are cut around their subject ("one face near the
   centre", as the peer is given too); ``--pick largest`` measures the other choice.
3. Reads the entries file (``protocol.entries.parse_entries_file``) and scores each pair by the
   cosine of the two images' embeddings. With two detectors, also across them: the first image
   of each pair from one detector's entries (enrolled), the second from the other's (what a
   node detecting with it would embed), both ways; and the cosine of each image's two
   embeddings (the same photo through both detectors).

Refused images (no face, too small, blurred, not frontal) are not dropped: every pair with a
refused image counts as an error in the 10-fold accuracy (each fold's threshold is chosen on
the other nine folds); for TAR at FAR 1e-3 a genuine pair with a refused image counts as a
rejection, and impostor pairs with a refused image are left out of the FAR set (which makes the
FAR threshold stricter, never looser). Pair counts with a refusal are reported.

Diagnostic only: ``--quality max_yaw=inf`` (any field of ``central.enrol.ENROL_QUALITY``) runs
the same CLI entry point with that enrolment quality policy replaced, to show what a refusal rule
costs; such results are labelled ``quality_override`` and are not the shipped tool's.

With ``--peer-python`` (a venv with face_recognition, ``make peer-venv``) the peer embeds the
same images in the same run (``peer_fr.py embed``) and is scored on the same pairs and folds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from protocol.entries import parse_entries_file  # noqa: E402
from protocol.limits import Limits  # noqa: E402
from tools.evaluation.lfw import Pairs, add_lfw_arguments, read_pairs, summary  # noqa: E402
from tools.evaluation.metrics import best_threshold, threshold_at_rate  # noqa: E402

log = logging.getLogger("through_enrol")
REFUSED = re.compile(r"^refused (?P<path>.+?): (?P<reason>.+)$")


def ref_of(rel: str) -> str:
    """subject_ref of one image: its file stem (``Name_0001``), unique in LFW."""
    return Path(rel).stem


def lay_out(lfw: Path, p: Pairs, root: Path) -> None:
    for rel in p.images:
        src = (lfw / rel).resolve()  # the symlinks must not depend on the working folder
        if not src.is_file():
            raise FileNotFoundError(src)
        folder = root / ref_of(rel)
        folder.mkdir()
        (folder / src.name).symlink_to(src)


PATCHED_CLI = (
    "import dataclasses, sys; import central.enrol as e; "
    "e.ENROL_QUALITY = dataclasses.replace(e.ENROL_QUALITY, **{k: float(v) for k, v in "
    "(x.split('=') for x in sys.argv[1].split(','))}); "
    "from central.watchlist_cli import main; sys.exit(main(sys.argv[2:]))"
)


def run_enrol(
    cli: str,
    images: Path,
    out: Path,
    profile: str,
    workers: int,
    quality: str | None = None,
    pick: str = "central",
    detector: str | None = None,
) -> tuple[list[str], float, dict[str, str], list[str]]:
    cli_cmd = [cli] if not quality else [sys.executable, "-c", PATCHED_CLI, quality]
    cmd = [*cli_cmd, "enrol", "--images", str(images), "--out", str(out), "--profile", profile]
    cmd += [f"--{pick}"]
    if detector:
        cmd += ["--detector", detector]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    log.info("$ %s", shlex.join(cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"through_enrol: {cmd[0]} enrol exited with {proc.returncode}")
    refused: dict[str, str] = {}
    for line in proc.stderr.splitlines():
        m = REFUSED.match(line.strip().split("\r")[-1])
        if m:
            refused[Path(m["path"]).parent.name] = m["reason"]
    summary_lines = [x for x in proc.stdout.splitlines() if x.strip()]
    for x in summary_lines:
        log.info("enrol: %s", x)
    return cmd, wall, refused, summary_lines


def load_embeddings(path: Path, p: Pairs) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """(N, dim) unit embeddings in pairs-file image order and a mask of enrolled images."""
    limits = Limits(entries_file_bytes=2**31, entries=max(50_000, len(p.images)))
    entries = parse_entries_file(path.read_bytes(), limits)
    by_ref = {e.subject_ref: e.embeddings for e in entries.entries}
    e = np.zeros((len(p.images), entries.dim), dtype=np.float32)
    ok = np.zeros(len(p.images), dtype=bool)
    for i, rel in enumerate(p.images):
        rows = by_ref.get(ref_of(rel))
        if rows is not None:
            if len(rows) != 1:
                raise ValueError(f"{path}: {ref_of(rel)} has {len(rows)} embeddings, expected 1")
            e[i], ok[i] = rows[0], True
    return e, ok


def strict_summary(
    scores: npt.NDArray[np.float64], valid: npt.NDArray[np.bool_], p: Pairs
) -> dict[str, Any]:
    """10-fold accuracy counting every invalid pair (a refused image) as an error, and TAR at
    FAR 1e-3 with invalid genuine pairs rejected and invalid impostor pairs left out."""
    accs = []
    for k in np.unique(p.fold):
        tr = (p.fold != k) & valid
        te = p.fold == k
        t = best_threshold(scores[tr], p.same[tr])
        correct = ((scores > t) == p.same) & valid
        accs.append(float(correct[te].sum() / te.sum()))
    a = np.array(accs)
    imp = scores[~p.same & valid]
    thr = threshold_at_rate(imp, 1e-3)
    tar = float(((scores > thr) & valid)[p.same].sum() / p.same.sum())
    return {
        "acc_mean": round(float(a.mean()) * 100, 3),
        "acc_std": round(float(a.std()) * 100, 3),
        "acc_folds": [round(x * 100, 2) for x in accs],
        "tar_at_far_1e-3": round(tar * 100, 2),
        "threshold_far_1e-3": round(thr, 4),
        "impostor_pairs_for_far": len(imp),
    }


def peer_scores(
    py: str, lfw: Path, p: Pairs, work: Path
) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
    lst = work / "images.txt"
    lst.write_text("\n".join(p.images))
    out = work / "peer_face_recognition.npz"
    cmd = [
        py,
        str(ROOT / "models" / "evaluation" / "peer_fr.py"),
        "embed",
        str(lfw),
        str(lst),
        str(out),
    ]
    log.info("$ %s", shlex.join(cmd))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    z = np.load(out)
    e = z["e"].astype(np.float64)
    d = np.linalg.norm(e[p.a] - e[p.b], axis=1)
    info = {
        "tool": str(z["version"]),
        "command": shlex.join(cmd),
        "wall_s": round(wall, 1),
        "hog_found": int(z["found"].sum()),
        "images": len(p.images),
        "score": "negative Euclidean distance; whole image as the face box where HOG finds none",
    }
    return -d, info


def evaluate_profile(
    a: argparse.Namespace, p: Pairs, images: Path, prof: str, detector: str | None = None
) -> tuple[dict[str, Any], npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    out = a.work / (f"entries_{prof}.json" if not detector else f"entries_{prof}_{detector}.json")
    cmd, wall, refused, lines = run_enrol(
        a.cli, images, out, prof, a.workers, a.quality, a.pick, detector
    )
    e, ok = load_embeddings(out, p)
    missing = {ref_of(r) for r, k in zip(p.images, ok, strict=True) if not k}
    if missing != set(refused):
        raise SystemExit(
            f"through_enrol: {len(missing)} images without an entry but "
            f"{len(refused)} refusal lines"
        )
    valid = ok[p.a] & ok[p.b]
    s = np.einsum("ij,ij->i", e[p.a], e[p.b]).astype(np.float64)
    r = {
        "command": shlex.join(cmd).replace(str(images.parent), "$TMP"),
        "wall_s": round(wall, 1),
        "enrol_summary": lines,
        "embedded": int(ok.sum()),
        "refused": len(refused),
        "refusals": dict(sorted(refused.items())),
        "pairs_with_refused_image": {
            "genuine": int((~valid & p.same).sum()),
            "impostor": int((~valid & ~p.same).sum()),
        },
        **strict_summary(s, valid, p),
    }
    if not valid.all():  # for context only: the refused pairs dropped
        sub = p.subset(valid)
        r["without_refused_pairs"] = {"pairs": int(valid.sum()), **summary(s[valid], sub)}
    if valid.all():
        assert summary(s, p)["acc_mean"] == r["acc_mean"]
    return r, e, ok


def cross_detectors(
    p: Pairs,
    names: tuple[str, str],
    e: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
    ok: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]],
) -> dict[str, Any]:
    """Pairs enrolled through one detector and seen through the other (both ways), and the
    cosine of each photo's two embeddings."""
    out: dict[str, Any] = {}
    for i, j in ((0, 1), (1, 0)):
        valid = ok[i][p.a] & ok[j][p.b]
        s = np.einsum("ij,ij->i", e[i][p.a], e[j][p.b]).astype(np.float64)
        out[f"enrolled_{names[i]}_seen_{names[j]}"] = {
            "pairs_with_refused_image": int((~valid).sum()),
            **strict_summary(s, valid, p),
        }
    both = ok[0] & ok[1]
    cos = np.einsum("ij,ij->i", e[0][both], e[1][both]).astype(np.float64)
    out["same_photo_cosine"] = {
        "images": int(both.sum()),
        "mean": round(float(cos.mean()), 4),
        "p5": round(float(np.percentile(cos, 5)), 4),
        "min": round(float(cos.min()), 4),
        "share_ge_0.99": round(float((cos >= 0.99).mean()) * 100, 1),
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--cli", default=str(ROOT / ".venv" / "bin" / "lfr-watchlist"))
    ap.add_argument("--profiles", default="accurate,fast")
    ap.add_argument(
        "--detectors",
        help="enrol with each (comma-separated: blazeface,yunet) and score across them; "
        "default: the tool's own default, no --detector passed",
    )
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--work", type=Path, default=ROOT / "models" / ".cache" / "enrol")
    ap.add_argument("--peer-python", help="python of a venv with face_recognition (optional)")
    ap.add_argument("--out", type=Path, help="write results JSON here")
    ap.add_argument("--quality", help="diagnostic: override ENROL_QUALITY fields, e.g. max_yaw=inf")
    ap.add_argument(
        "--pick", choices=["central", "largest"], default="central", help="face choice passed"
    )
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not a.lfw.is_dir() or not a.pairs.is_file():
        print(f"through_enrol: LFW not found at {a.lfw} / {a.pairs}", file=sys.stderr)
        return 2
    a.work.mkdir(parents=True, exist_ok=True)
    p = read_pairs(a.pairs)
    res: dict[str, Any] = {
        "protocol": "LFW View 2, 10 folds x 600 pairs; threshold per fold chosen on the other 9",
        "pairs": len(p.same),
        "images": len(p.images),
        "refusal_scoring": (
            "pair with a refused image = error in accuracy; genuine = rejected for TAR; "
            "impostor left out of the FAR set"
        ),
        "profiles": {},
    }
    if a.quality:
        res["quality_override"] = a.quality
    tmp = Path(tempfile.mkdtemp(prefix="lfw_enrol_"))
    try:
        images = tmp / "images"
        images.mkdir()
        lay_out(a.lfw, p, images)
        log.info("laid out %d images (symlinks) under %s", len(p.images), images)
        detectors = a.detectors.split(",") if a.detectors else [None]
        for prof in a.profiles.split(","):
            done = {}
            for det in detectors:
                name = prof if det is None else f"{prof}/{det}"
                r, e, ok = evaluate_profile(a, p, images, prof, det)
                res["profiles"][name] = r
                done[det] = (e, ok)
                log.info("%s: %s", name, {k: v for k, v in r.items() if k != "refusals"})
            if len(detectors) == 2:
                d0, d1 = detectors
                assert d0 is not None and d1 is not None
                x = cross_detectors(
                    p, (d0, d1), (done[d0][0], done[d1][0]), (done[d0][1], done[d1][1])
                )
                res.setdefault("cross_detector", {})[prof] = x
                log.info("%s across detectors: %s", prof, x)
    finally:
        shutil.rmtree(tmp)
    if a.peer_python:
        s, info = peer_scores(a.peer_python, a.lfw, p, a.work)
        res["peer"] = {**info, **strict_summary(s, np.ones(len(s), dtype=bool), p)}
        log.info("peer: %s", res["peer"])
    print(table(res))
    if a.out:
        a.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


def table(res: dict[str, Any]) -> str:
    how = "lfr-watchlist enrol"
    if "quality_override" in res:
        how += f", DIAGNOSTIC quality {res['quality_override']}"
    rows = [
        "| | LFW 10-fold (refused = error) | TAR@FAR=1e-3 | refused images (genuine/impostor "
        "pairs hit) | 10-fold without those pairs | wall |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res["profiles"].items():
        hit = r["pairs_with_refused_image"]
        w = r.get("without_refused_pairs")
        wo = f"{w['acc_mean']:.2f} ± {w['acc_std']:.2f} % ({w['pairs']} pairs)" if w else "—"
        rows.append(
            f"| {name} ({how}) | {r['acc_mean']:.2f} ± {r['acc_std']:.2f} % | "
            f"{r['tar_at_far_1e-3']:.2f} % | {r['refused']} ({hit['genuine']}/{hit['impostor']}) | "
            f"{wo} | {r['wall_s']:.0f} s |"
        )
    for prof, x in res.get("cross_detector", {}).items():
        c = x["same_photo_cosine"]
        for key, r in x.items():
            if key.startswith("enrolled_"):
                rows.append(
                    f"| {prof}, {key.replace('_', ' ')} | {r['acc_mean']:.2f} ± "
                    f"{r['acc_std']:.2f} % | {r['tar_at_far_1e-3']:.2f} % | "
                    f"pairs hit {r['pairs_with_refused_image']} | — | — |"
                )
        rows.append(
            f"| {prof}, same photo through both: cosine mean {c['mean']}, 5th pct {c['p5']}, "
            f"min {c['min']}, {c['share_ge_0.99']} % ≥ 0.99 ({c['images']} images) | | | | | |"
        )
    if "peer" in res:
        r = res["peer"]
        rows.append(
            f"| {r['tool']} | {r['acc_mean']:.2f} ± {r['acc_std']:.2f} % | "
            f"{r['tar_at_far_1e-3']:.2f} % | none (HOG missed {r['images'] - r['hog_found']}: "
            f"whole image used) | — | {r['wall_s']:.0f} s |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
