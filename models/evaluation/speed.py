"""Per-face speed, ours against face_recognition, interleaved image by image in one run.

    python models/evaluation/speed.py --peer-python PY [--n 200] [--rounds 3] [--threads 1,default]
        [--schedules image,block] [--block 25] [--profiles fast,accurate] [--flip-variants]
        [--out JSON]

Per face = detect + align + embed (image decode excluded on both sides), on the same ``--n`` LFW
pair images as ``eval_lfw.py --timing``. Our profiles load through ``agent.models.load_profile``
(the code the agent and ``lfr-watchlist enrol`` use). The peer (HOG detection + dlib ResNet
encoding, as ``face_recognition`` does it) runs in its own venv as a worker process
(``peer_fr.py serve``) that has decoded every image beforehand and times each face itself.

Interleaving makes the comparison fair on a shared, noisy machine: for every image and round,
each method measures that image in turn (the order rotates per image and round), so a burst of
load from elsewhere hits all of them alike; while one method runs the others wait blocked on a
pipe, so they never compete with each other. Two schedules: ``image`` switches method after
every image, so each face starts with caches full of the other method's weights (a cold start
costs a fixed millisecond or two, which weighs far more on a 7 ms pipeline than on a 120 ms
one); ``block`` lets each method run ``--block`` consecutive images in turn (order rotating per
block and round), as enrolment and the camera loop run, so each works with warm caches while
load bursts still fall on all methods within seconds of each other. Both are reported. The whole thing runs once per thread setting:
ours with ``num_threads=T``, the peer with ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/
``MKL_NUM_THREADS`` = T (``T=default``: the agent's default of 2 and the peer's environment as
is; a dlib built without BLAS, as ``make peer-venv`` builds it here, is single-threaded anyway). Reported per method: median of all samples, median over images of each image's fastest
round, the median process CPU time per face (``time.process_time``: less sensitive to other
load than the wall clock, but at more than one thread it also counts worker threads' spinning),
and the speed-up (peer / ours) as the ratio of wall-clock medians, of best-of-rounds medians, of
CPU medians, and as the median of the per-image paired wall-clock ratios. "met" in the table
needs both the ratio of medians and the median paired ratio to reach the target.

``--flip-variants`` adds, per profile, the same models with flip averaging toggled (method
``<profile> (no flip)`` or ``<profile> (flip)``), interleaved in the same run: the cost of
flip averaging measured like everything else here (timing only: weights are the profile's).

``--allocator kept`` (the default) fixes the C allocator's thresholds in both processes, ours
with ``mallopt`` and the peer's with glibc's start-up variables (``tools.evaluation.allocator``):
the state a camera process is in once it has freed one frame, in which a face's arrays reuse
heap pages instead of faulting in fresh ones. ``default`` leaves both as glibc starts them, as
every measurement before 2026-12-01 did (it costs ours 2-5 % per face on x86).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from agent.models import Vision, load_profile  # noqa: E402
from agent.vision.detector import pick_central  # noqa: E402
from agent.vision.embedder import ProfileEmbedder  # noqa: E402
from agent.vision.image import read_image  # noqa: E402
from tools.evaluation.allocator import GLIBC_ENV, keep_freed_memory  # noqa: E402
from tools.evaluation.lfw import add_lfw_arguments, read_pairs  # noqa: E402
from tools.report import table as markdown_table  # noqa: E402

PEER = "face_recognition"
# Issue 15's bars (issue 3's were 10x and 5x); a flip variant is held to its profile's bar.
TARGETS = {"fast": 20.0, "accurate": 10.0}
AGENT_DEFAULT_THREADS = 2  # agent.models.load_profile's default


class Peer:
    """peer_fr.py serve: one request per line, answers with (detect_s, encode_s, cpu_s)."""

    def __init__(
        self,
        py: str,
        lfw: Path,
        images: list[str],
        threads: int | None,
        tmp: Path,
        *,
        kept_allocator: bool,
    ):
        lst = tmp / "speed_images.txt"
        lst.write_text("\n".join(images))
        env = dict(os.environ)
        if kept_allocator:  # glibc reads these at start-up: the same thresholds as ours
            env.update(GLIBC_ENV)
        if threads is not None:
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env[k] = str(threads)
        script = ROOT / "models" / "evaluation" / "peer_fr.py"
        self.proc = subprocess.Popen(
            [py, str(script), "serve", str(lfw), str(lst)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"peer worker did not start: {line!r}")
        self.info: dict[str, Any] = json.loads(line[6:])

    def time(self, i: int) -> tuple[float, float, float]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"{i}\n")
        self.proc.stdin.flush()
        td, te, cpu = self.proc.stdout.readline().split()
        return float(td), float(te), float(cpu)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def flip_variant(v: Vision) -> tuple[str, Vision]:
    """The same detector and models with every block's flip averaging toggled."""
    emb = v.embedder
    if not isinstance(emb, ProfileEmbedder):
        raise TypeError("flip variants need a ProfileEmbedder")
    blocks = tuple(dataclasses.replace(b, flip=not b.flip) for b in emb.profile.blocks)
    spec = dataclasses.replace(emb.profile, blocks=blocks)
    label = "flip" if blocks[0].flip else "no flip"
    return label, dataclasses.replace(v, embedder=ProfileEmbedder(spec, emb.blocks))


def target(method: str) -> float | None:
    return TARGETS.get(method.split(" (", maxsplit=1)[0])


def cpu_description() -> str:
    """The CPU's model name and the SIMD flags the int8 kernels care about."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), ""
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return f"{model or platform.machine()} ({', '.join(f for f in wanted if f in flags)})"


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(
    a: argparse.Namespace, images: list[str], imgs: list[Any], threads: int | None, schedule: str
) -> dict[str, Any]:
    t_ours = threads if threads is not None else AGENT_DEFAULT_THREADS
    profiles = a.profiles.split(",")
    vis = {p: load_profile(p, a.models_dir, threads=t_ours) for p in profiles}
    if a.flip_variants:
        for p in profiles:
            label, v = flip_variant(vis[p])
            vis[f"{p} ({label})"] = v
    ours = list(vis)
    peer = Peer(a.peer_python, a.lfw, images, threads, a.tmp, kept_allocator=a.allocator == "kept")
    methods = [*ours, PEER]

    def measure(m: str, i: int) -> tuple[float, float, float]:
        if m == PEER:
            return peer.time(i)
        img = imgs[i]
        v = vis[m]
        c0 = time.process_time()
        t0 = time.perf_counter()
        d = pick_central(v.detector.detect(img), img.shape[1], img.shape[0])
        t1 = time.perf_counter()
        if d is not None:
            v.embedder.embed(img, d)
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, time.process_time() - c0

    try:
        for i in range(min(a.warmup, len(imgs))):  # warm caches and thread pools; not recorded
            for m in methods:
                measure(m, i)
        # t[m][round, image] = (detect, rest, process CPU seconds of both)
        t = {m: np.zeros((a.rounds, len(imgs), 3)) for m in methods}
        load0 = loadavg()
        w0 = time.perf_counter()
        size = 1 if schedule == "image" else a.block
        for r in range(a.rounds):
            for b, first in enumerate(range(0, len(imgs), size)):
                k = (b + r) % len(methods)
                for m in methods[k:] + methods[:k]:
                    for i in range(first, min(first + size, len(imgs))):
                        t[m][r, i] = measure(m, i)
        wall = time.perf_counter() - w0
        load1 = loadavg()
    finally:
        peer.close()
    out: dict[str, Any] = {
        "schedule": schedule if schedule == "image" else f"block of {a.block}",
        "threads_ours": t_ours,
        "threads_peer": threads if threads is not None else "library default (env unset)",
        "allocator": a.allocator,
        "images": len(imgs),
        "rounds": a.rounds,
        "loadavg_before": load0,
        "loadavg_after": load1,
        "wall_s": round(wall, 1),
        "peer_info": peer.info,
        "methods": {},
    }
    tot = {m: t[m][..., :2].sum(axis=2) * 1e3 for m in methods}  # (rounds, images) ms
    for m in methods:
        out["methods"][m] = {
            "median_ms": round(float(np.median(tot[m])), 2),
            "median_best_of_rounds_ms": round(float(np.median(tot[m].min(axis=0))), 2),
            "p90_ms": round(float(np.percentile(tot[m], 90)), 2),
            "detect_ms": round(float(np.median(t[m][..., 0])) * 1e3, 2),
            "align_embed_ms": round(float(np.median(t[m][..., 1])) * 1e3, 2),
            "cpu_median_ms": round(float(np.median(t[m][..., 2])) * 1e3, 2),
        }
    for m in ours:
        pm, om = out["methods"][PEER], out["methods"][m]
        out["methods"][m]["speedup"] = {
            "ratio_of_medians": round(pm["median_ms"] / om["median_ms"], 2),
            "ratio_of_best_of_rounds": round(
                pm["median_best_of_rounds_ms"] / om["median_best_of_rounds_ms"], 2
            ),
            "median_paired_ratio": round(float(np.median(tot[PEER] / tot[m])), 2),
            "ratio_of_cpu_medians": round(pm["cpu_median_ms"] / om["cpu_median_ms"], 2),
            "target": target(m),
        }
    return out


def table(res: dict[str, Any]) -> str:
    header = [
        "schedule",
        "threads (ours / peer)",
        "method",
        "median ms",
        "best-of-rounds ms",
        "detect",
        "align+embed",
        "CPU ms",
        "speed-up: ratio of medians / best-of-rounds / paired / CPU",
        "target",
    ]
    rows = []
    for run_ in res["runs"]:
        th = f"{run_['threads_ours']} / {run_['threads_peer']}"
        if "allocator" in run_:
            th += f", allocator {run_['allocator']}"
        for m, r in run_["methods"].items():
            s = r.get("speedup")
            sp = (
                f"{s['ratio_of_medians']:.2f}x / {s['ratio_of_best_of_rounds']:.2f}x / "
                f"{s['median_paired_ratio']:.2f}x / {s['ratio_of_cpu_medians']:.2f}x"
                if s
                else "—"
            )
            tgt = ""
            if s and s["target"]:
                ok = min(s["ratio_of_medians"], s["median_paired_ratio"]) >= s["target"]
                tgt = f">={s['target']:.0f}x {'met' if ok else 'NOT met'}"
            rows.append(
                [
                    run_["schedule"],
                    th,
                    m,
                    f"{r['median_ms']:.1f}",
                    f"{r['median_best_of_rounds_ms']:.1f}",
                    f"{r['detect_ms']:.1f}",
                    f"{r['align_embed_ms']:.1f}",
                    f"{r['cpu_median_ms']:.1f}",
                    sp,
                    tgt,
                ]
            )
    return markdown_table(header, rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lfw_arguments(ap)
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--peer-python", required=True, help="python of a venv with face_recognition")
    ap.add_argument("--profiles", default="fast,accurate")
    ap.add_argument(
        "--flip-variants",
        action="store_true",
        help="also time each profile with flip averaging toggled, in the same run",
    )
    ap.add_argument("--n", type=int, default=200, help="LFW images (>= 200 for the issue)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", default="1,default", help="comma list of N or 'default'")
    ap.add_argument("--schedules", default="image,block", help="comma list: image, block")
    ap.add_argument("--block", type=int, default=25, help="images per turn in the block schedule")
    ap.add_argument("--tmp", type=Path, default=ROOT / "models" / ".cache" / "speed")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--allocator",
        choices=("kept", "default"),
        default="kept",
        help="C allocator thresholds of both sides: fixed (a camera process's state) or glibc's",
    )
    a = ap.parse_args()
    if a.allocator == "kept" and not keep_freed_memory():
        print(
            "speed: this C library does not take the thresholds; use --allocator default",
            file=sys.stderr,
        )
        return 2
    if not a.lfw.is_dir() or not a.pairs.is_file():
        print(f"speed: LFW not found at {a.lfw} / {a.pairs}", file=sys.stderr)
        return 2
    a.tmp.mkdir(parents=True, exist_ok=True)
    p = read_pairs(a.pairs)
    images = p.images[:: max(1, len(p.images) // a.n)][: a.n]  # as eval_lfw.timing_images
    imgs = [read_image(a.lfw / rel) for rel in images]
    res: dict[str, Any] = {
        "what": "per face: detect + align + embed, image decode excluded; methods interleaved "
        "per image (schedule image) or per block of images (schedule block)",
        "cpus": os.cpu_count(),
        # The ratios depend on the CPU's int8 support (VNNI): SFace int8 and dlib int8dr took
        # 3.1 and 1.1 ms on one x86 machine and 10.6 and 4.7 ms on another (AVX2 only).
        "cpu": cpu_description(),
        "runs": [],
    }
    for schedule in a.schedules.split(","):
        if schedule not in ("image", "block"):
            print(f"speed: unknown schedule {schedule!r} (image, block)", file=sys.stderr)
            return 2
        for th in a.threads.split(","):
            threads = None if th == "default" else int(th)
            r = run(a, images, imgs, threads, schedule)
            res["runs"].append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    text = table(res)
    res["table"] = text.splitlines()
    print(text)
    if a.out:
        a.out.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
