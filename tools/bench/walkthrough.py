"""Walk-through clips with ground truth, replayed through ``lfr-agent run --until-end``: who was
alerted, who was missed, which alerts were false, and the time to alert (issue 16 §4).

LFW people of the 1:N calibration's held-out half (never a face the thresholds were fitted on)
walk across a 1080p background (a frame of a CC-BY clip in ../shared/media, blurred
so the clip's own people are not faces), towards the camera: the face grows from 28 to 120 px
over ``WALK_FRAMES`` frames (10 frames/s), in several lanes at once. Listed people are enrolled
(``lfr-watchlist enrol``, accurate) from two LFW photos and walk with a third, never enrolled
(``--walk-photos N``: N further photos, shown in turn along the walk); strangers are other LFW
people; the watchlist is padded with further LFW people (one photo
each) who never walk, to ``--entries``. By default the clip is replayed once on the real
default path: the list sealed by ``lfr-watchlist seal`` with its default ``--fpir 1e-3`` (the
threshold calibrated for the list's size and K = 3) and the agent's default config (track
rule, ``min_margin`` 0.05, detector auto -> YuNet at 40 px). ``--fpir``, ``--thresholds``
(a local ``[matching] threshold`` floor), ``--rules`` and ``--margins`` sweep on the same clip,
on a real device (quickstart authority, TLS Mosquitto, signed events).

Attribution: each listed person walks once and has their own reference, so an event for a
walking person's reference is that person's alert (a second one is false), and an event for a
reference that never walks is a false alert (a stranger, or a listed person, taken for someone
else). The time to alert is the agent's own (status ``time_to_alert_s``: first frame at the
minimum size to the event queued; median of its last 100 alerts).

    python -m tools.bench.walkthrough --listed 50 --strangers 400 --entries 1000 \\
        --fpir 1e-2,1e-3,1e-4 --out reports/walkthrough.md

Needs ../shared (LFW and media) and Mosquitto; frames are written to a temporary folder
(JPEG, about 0.3 MB each) and removed.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from agent.pipeline import DEFAULT_MIN_MARGIN
from protocol.topics import DEFAULT_SHARE_GROUP, shared
from tools.bench.scenes import LFW, MEDIA
from tools.bench.walkthrough_scene import (
    GAP_FRAMES,
    Person,
    Walker,
    background,
    choose_people,
    paste,
    schedule,
)

# --variants: "current" is the agent's default config; "former" the tracker and quality measure
# before issue 16's recall work (last box only, own-pixel sharpness), for before/after on one clip.
# "fixed": the signed threshold's value (the K = 3 one) for every template, as before the
# threshold by coherence.
VARIANTS = {
    "current": "",
    "former": "[tracking]\nvelocity = false\n[quality]\ndetail_px = 0\n",
    "fixed": "coherence = false\n",
}
LFR_AGENT = str(Path(sys.executable).parent / "lfr-agent")


def write_clip(folder: Path, walkers: list[Walker], lanes: int) -> int:
    base = background()
    frames = max(w.last for w in walkers) + GAP_FRAMES
    for index in range(frames):
        frame = base.copy()
        for walker in walkers:
            if walker.first <= index <= walker.last:
                paste(frame, walker, index, lanes)
        Image.fromarray(frame).save(folder / f"{index:05d}.jpg", quality=92)
    return frames


def enrol(people: list[Person], folder: Path, profile: str) -> Path:
    from central.watchlist_cli import main as watchlist_main

    root = folder / "enrol"
    for person in people:
        if person.ref is None:
            continue
        (root / person.ref).mkdir(parents=True)
        for photo in person.enrol:
            shutil.copy(photo, root / person.ref / photo.name)
    out = folder / "entries.json"
    args = ["enrol", "--images", str(root), "--out", str(out), "--profile", profile, "--central"]
    code = watchlist_main(args)
    if code != 0:
        raise RuntimeError(f"lfr-watchlist enrol exited {code}")
    return out


def seal(
    index: dict[str, Any],
    entries: Path,
    version: int,
    folder: Path,
    fpir: float | None,
    *,
    entry_means: bool = False,
) -> tuple[bytes, str]:
    """The bundle as ``lfr-watchlist seal`` makes it (its default FPIR unless ``fpir``), and
    the line it prints about the threshold it chose."""
    import contextlib
    import io

    from central.watchlist_cli import main as watchlist_main

    device = index["devices"][0]
    bundle = folder / f"wl{version}.jws"
    args = ["seal", str(entries), "--device", device["id"], "--registry", index["registry"]]
    args += ["--authority", index["authority_dir"], "--version", str(version), "--expires", "2h"]
    args += ["--deployment", "walkthrough", "--out", str(bundle)]
    if fpir is not None:
        args += ["--fpir", str(fpir)]
    if entry_means:
        args.append("--entry-means")
    for key in index["ops_keys"]:
        args += ["--sign-with", key]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = watchlist_main(args)
    if code != 0:
        raise RuntimeError(f"lfr-watchlist seal exited {code}")
    why = next(line for line in printed.getvalue().splitlines() if line.startswith("threshold"))
    return bundle.read_bytes(), why


def replay(
    index: dict[str, Any],
    frames: Path,
    rule: str,
    *,
    threshold: float | None,
    margin: float | None,
    bundle: bytes,
    variant: str = "current",
) -> tuple[list[str], dict[str, Any], float]:
    """One replay under ``rule``: the events' subject references, the last status, seconds."""
    from protocol.event import verify_event
    from provisioning.registry import Registry
    from tools.broker import client, publish_retained, status_json

    device = index["devices"][0]
    config = Path(device["config"])
    text = config.read_text().split("\n# walkthrough\n")[0]
    # Only what a sweep sets: the rest is the agent's default config.
    extra = f'\n# walkthrough\n[matching]\ndecision = "{rule}"\n'
    if threshold is not None:
        extra += f"threshold = {threshold}\n"
    if margin is not None:
        extra += f"min_margin = {margin}\n"
    extra += VARIANTS[variant]  # "fixed" is a [matching] key: it follows that section
    config.write_text(text + extra)
    # Each replay starts from an empty outbox and the same list (a new version each time).
    topic = f"lfr/v1/{device['site']}/{device['id']}"
    publish_retained(index, f"{topic}/watchlist", bundle)
    alerts = client(index, "alerts")
    alerts.subscribe([(shared(DEFAULT_SHARE_GROUP, f"{topic}/events"), 1)])
    status = client(index, "ops")
    status.subscribe([(f"{topic}/status", 1)])
    began = time.monotonic()
    command = [LFR_AGENT, "run", "--config", str(config), "--source", str(frames)]
    command += ["--until-end", "--watchlist-wait", "60"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=6 * 3600,
        check=False,
    )
    took = time.monotonic() - began
    if result.returncode != 0:
        raise RuntimeError(f"lfr-agent exited {result.returncode}: {result.stderr[-2000:]}")
    tokens, docs = _drain(alerts), _drain(status)
    alerts.close()
    status.close()
    keys = Registry.load(Path(index["registry"])).trusted_signing_keys()
    refs = [verify_event(token, keys).subject_ref for token in tokens]
    reports = [status_json(d) for d in docs]  # the bench's own device
    last: dict[str, Any] = next((d for d in reversed(reports) if "frames" in d), {})
    return refs, last, took


def _drain(link: Any, quiet: float = 2.0) -> list[bytes]:
    got: list[bytes] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        message = link.receive(0.2)
        if message is not None:
            got.append(message.payload)
            last = time.monotonic()
    return got


@dataclass
class Outcome:
    alerted: int = 0
    missed: int = 0
    false_alerts: int = 0
    strangers: int = 0
    listed: int = 0


def score(walkers: list[Walker], refs: list[str]) -> Outcome:
    walking = {w.person.ref for w in walkers if w.person.ref is not None}
    out = Outcome(strangers=sum(w.person.ref is None for w in walkers), listed=len(walking))
    seen: set[str] = set()
    for ref in refs:
        if ref in walking and ref not in seen:
            seen.add(ref)
        else:
            out.false_alerts += 1
    out.alerted, out.missed = len(seen), len(walking - seen)
    return out


def upper_bound(events: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen ``events`` times in ``trials``: the
    rate p at which seeing at most ``events`` has probability 1 - confidence (bisection)."""
    if trials <= 0 or events >= trials:
        return 1.0

    def at_most(p: float) -> float:
        return sum(
            math.exp(
                math.lgamma(trials + 1)
                - math.lgamma(i + 1)
                - math.lgamma(trials - i + 1)
                + i * math.log(p)
                + (trials - i) * math.log1p(-p)
            )
            for i in range(events + 1)
        )

    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at_most(mid) > 1 - confidence else (lo, mid)
    return hi


def interval(events: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval of a rate seen ``events`` times in ``trials``: how
    far 47 of 50 listed people alerted is from 95 % (for instance) on this evidence."""
    tail = 1 - (1 - confidence) / 2
    return 1 - upper_bound(trials - events, trials, tail), upper_bound(events, trials, tail)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listed", type=int, default=12)
    parser.add_argument("--strangers", type=int, default=24)
    parser.add_argument("--entries", type=int, default=100, help="watchlist size (padded)")
    parser.add_argument("--lanes", type=int, default=3)
    parser.add_argument(
        "--fpir",
        default="",
        help="comma-separated FPIRs the list is sealed for, each replayed "
        "(default: lfr-watchlist seal's, 1e-3)",
    )
    parser.add_argument(
        "--thresholds",
        default="",
        help="comma-separated local [matching] threshold floors, each replayed (default: none, "
        "the signed threshold)",
    )
    parser.add_argument("--rules", default="track")
    parser.add_argument(
        "--margins",
        default="",
        help="track rule: comma-separated min_margin values (default: 0.05)",
    )
    parser.add_argument(
        "--variants",
        default="current",
        help=f"comma-separated agent variants replayed on the same clip ({', '.join(VARIANTS)})",
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="also replay each run of the current variant in process and report per walker: "
        "tracks, faces embedded, best template score against their own entry vs the threshold",
    )
    parser.add_argument(
        "--walk-photos",
        type=int,
        default=1,
        help="photos each walker shows in turn along the walk (listed: never enrolled, people "
        "with 2 + N photos; strangers: up to N, as many as they have)",
    )
    parser.add_argument(
        "--listed-photos",
        type=int,
        default=None,
        help="list only people with at least this many LFW photos (default and least: 2 + "
        "--walk-photos): the same listed people walk in clips of different --walk-photos",
    )
    parser.add_argument(
        "--entry-means",
        action="store_true",
        help="seal with --entry-means (listed people's two photos also matched by their mean)",
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("reports/walkthrough.md"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        print(
            f"walkthrough: --variants: unknown {unknown} (known: {', '.join(VARIANTS)})",
            file=sys.stderr,
        )
        return 2
    if not LFW.is_dir() or not MEDIA.is_dir():
        print(f"walkthrough: needs {LFW} and {MEDIA}", file=sys.stderr)
        return 2
    from tools.broker import tls_fleet

    if args.walk_photos < 1:
        print("walkthrough: --walk-photos must be at least 1", file=sys.stderr)
        return 2
    try:
        people = choose_people(
            args.listed,
            args.strangers,
            args.entries,
            args.seed,
            args.walk_photos,
            listed_photos=args.listed_photos,
        )
    except ValueError as exc:
        print(f"walkthrough: {exc}", file=sys.stderr)
        return 2
    walkers = schedule(people, args.lanes, args.seed)
    rows: list[Any] = []
    diagnosis: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lfr-walk-") as tmp, tls_fleet() as (index, _):
        folder = Path(tmp)
        (folder / "frames").mkdir()
        frames = write_clip(folder / "frames", walkers, args.lanes)
        entries = enrol(people, folder, "accurate")
        given: list[float | None] = [float(t) for t in args.thresholds.split(",") if t]
        thresholds = given or [None]
        margins: list[float | None] = [float(m) for m in args.margins.split(",") if m]
        fpirs: list[float | None] = [float(f) for f in args.fpir.split(",") if f] or [None]
        runs = [
            (f, t, r, m, v)
            for v in variants
            for f in fpirs
            for t in thresholds
            for r in args.rules.split(",")
            for m in ((margins or [None]) if r == "track" else [None])
        ]
        for version, (fpir, threshold, rule, margin, variant) in enumerate(runs, start=1):
            bundle, why = seal(index, entries, version, folder, fpir, entry_means=args.entry_means)
            refs, status, took = replay(
                index,
                folder / "frames",
                rule,
                threshold=threshold,
                margin=margin,
                bundle=bundle,
                variant=variant,
            )
            outcome = score(walkers, refs)
            rows.append((variant, why, rule, threshold, margin, outcome, status, took))
            print(variant, why, rule, threshold, margin, outcome, status.get("time_to_alert_s"))
            print(f"faces embedded {status.get('faces_embedded')}", flush=True)
            print(f"replay {took:.0f} s", flush=True)
            if args.diagnose and variant == "current":
                diagnosis += [
                    "",
                    *_diagnose(
                        walkers, folder, index, entries, why, threshold, variant, args.lanes
                    ),
                ]
    header = (
        f"`python -m tools.bench.walkthrough {' '.join(argv or sys.argv[1:])}`: "
        f"{len(walkers)} walkers"
    )
    lines = table(rows, walkers, people, header, lanes=args.lanes, frames=frames)
    lines += diagnosis
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def table(
    rows: list[Any],
    walkers: list[Walker],
    people: list[Person],
    header: str,
    *,
    lanes: int,
    frames: int,
) -> list[str]:
    """The report: what was replayed, then one row per run."""
    listed = sum(w.person.ref is not None for w in walkers)
    lines = [
        "# Walk-through: people walking past a node (issue 16 §4)",
        "",
        f"{header} ({listed} listed, {len(walkers) - listed} strangers) in {lanes} lanes, "
        f"{frames} frames of 1920x1080 at 10 frames/s; watchlist of "
        f"{sum(p.ref is not None for p in people)} entries (accurate, `lfr-watchlist enrol`); "
        "the agent's default config (detector auto: YuNet at 40 px). False alerts per 1,000 "
        "passers-by count every walker; the 95 % upper bound is for strangers, the interval after "
        "listed alerted is the 95 % interval of the alert rate (both Clopper-Pearson).",
        "",
        "| variant | signed threshold (seal) | local floor | rule | margin | listed alerted "
        "| missed "
        "| false alerts | per 1,000 passers-by | 95 % upper bound per 1,000 strangers "
        "| time to alert, median (s) | faces embedded | replay (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, why, rule, threshold, margin, o, status, took in rows:
        per_k = 1000 * o.false_alerts / max(1, o.strangers + o.listed)
        tta = status.get("time_to_alert_s", {}).get("median")
        shown = DEFAULT_MIN_MARGIN if margin is None else margin
        bound = 1000 * upper_bound(o.false_alerts, o.strangers)
        lo, hi = interval(o.alerted, o.listed)
        lines.append(
            f"| {variant} | {why} | {threshold or '-'} | {rule} "
            f"| {'-' if rule == 'frame' else shown} "
            f"| {o.alerted}/{o.listed} ({100 * lo:.1f}-{100 * hi:.1f} %) | {o.missed} | "
            f"{o.false_alerts} | {per_k:.1f} | {bound:.1f} | "
            f"{'-' if tta is None else f'{tta:.2f}'} | {status.get('faces_embedded')} | "
            f"{took:.0f} |"
        )
    return lines


def sealed_bins(why: str, floor: float | None) -> tuple[tuple[float, float], ...] | None:
    """The threshold by coherence that ``lfr-watchlist seal`` printed ("... by coherence
    0.000:0.8301 0.935:0.8211 ..."), raised to a local floor as the agent does; None if
    sealed without."""
    _, marker, rest = why.partition("by coherence ")
    if not marker:
        return None
    pairs = [item.split(":") for item in rest.split()]
    return tuple((float(c), max(float(t), floor or 0.0)) for c, t in pairs)


def _diagnose(
    walkers: list[Walker],
    folder: Path,
    index: dict[str, Any],
    entries: Path,
    *run: Any,
) -> list[str]:
    """The run just replayed (``run``: the sealing line, the local floor, the variant and the
    lanes), again in process with the same config: per-walker traces."""
    from tools.bench.walkthrough_diagnose import diagnose, report

    why, floor, variant, lanes = run

    signed = float(why.split()[1].rstrip(":"))  # "threshold 0.8301: ..."
    threshold = max(signed, floor or 0.0)
    bins = sealed_bins(why, floor)
    began = time.monotonic()
    traces = diagnose(
        walkers,
        folder / "frames",
        lanes,
        config=Path(index["devices"][0]["config"]),
        entries_file=entries,
        threshold=threshold,
        bins=bins,
        entry_means=" mean rows)" in why,  # seal's line: the bundle counted them
    )
    lines = report(traces, threshold, f"{variant}, {why}")
    print("\n".join(lines))
    print(f"diagnosis {time.monotonic() - began:.0f} s", flush=True)
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
