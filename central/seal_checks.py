"""What ``lfr-watchlist seal`` and ``publish`` decide about a list before anything is signed:
its threshold (calibrated for the list, or an explicit policy value) and the warnings or
refusals about its photos, with the command-line options for them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lfrkit.console import UsageError
from protocol.entries import Entries
from protocol.watchlist import MatchThreshold


def vet(args: argparse.Namespace, entries: Entries) -> tuple[MatchThreshold, str]:
    """Warn about (or, with ``--min-quality``, refuse) weak and disagreeing photos, then choose
    the threshold: (threshold, one line saying why)."""
    check_quality(entries, args.min_quality)
    check_agreement(entries, args.models_dir)
    return _threshold(args, entries)


def _threshold(args: argparse.Namespace, entries: Entries) -> tuple[MatchThreshold, str]:
    from central.thresholds import choose

    return choose(
        entries.embedder_sha256,
        len(entries.entries),
        fpir=args.fpir,
        k=args.k,
        explicit=args.threshold,
        models_dir=args.models_dir,
        photos=[(len(e.embeddings), _coherence(e.embeddings)) for e in entries.entries],
        entry_means=args.entry_means,
    )


def _coherence(embeddings: Any) -> float:
    """How alike an entry's photos are, computed as the node computes its mean row."""
    from agent.core.matcher import coherence, unit_rows

    return coherence(unit_rows(embeddings))


def check_quality(entries: Entries, minimum: float | None) -> None:
    """Warn about entries whose weakest photo is below QUALITY_WARN; refuse (exit 2) any below
    ``minimum`` (``--min-quality``), or without a recorded quality when it is given."""
    from central.enrol import QUALITY_WARN, entry_quality

    rated = [(entry_quality(e), e.subject_ref) for e in entries.entries]
    weak = sorted((q, ref) for q, ref in rated if q is not None and q < QUALITY_WARN)
    unknown = [ref for q, ref in rated if q is None]
    if weak:
        q, ref = weak[0]
        print(
            f"warning: {len(weak)} entries have a photo of quality below {QUALITY_WARN} "
            f"(weakest: {ref} {q:.3f}); small or poor photos raise false alerts",
            file=sys.stderr,
        )
    if minimum is None:
        return
    if unknown:
        raise UsageError(
            f"{len(unknown)} entries have no photo quality (enrolled before it was recorded, "
            f"e.g. {unknown[0]}): enrol them again to use --min-quality"
        )
    low = sorted((q, ref) for q, ref in rated if q is not None and q < minimum)
    if low:
        q, ref = low[0]
        raise UsageError(
            f"{len(low)} entries have a photo below --min-quality {minimum} (weakest: {ref} "
            f"{q:.3f}): enrol them with better photos or leave them out"
        )


def check_agreement(entries: Entries, models_dir: Path | None) -> None:
    """Warn about entries whose photos score below the profile's 1:1 threshold against each
    other (nothing to compare with for a profile that is not shipped)."""
    from central.enrol import disagreeing
    from central.thresholds import one_to_one

    floor = one_to_one(entries.embedder_sha256, models_dir)
    low = [] if floor is None else disagreeing(entries, floor)
    if low:
        score, ref, _ = low[0]
        print(
            f"warning: {len(low)} entries have photos that score below the profile's 1:1 "
            f"threshold {floor:.4f} against each other (lowest: {ref} {score:.3f}); check that "
            "each shows the same person, unobstructed: a wrong photo alerts on someone else",
            file=sys.stderr,
        )


def add_threshold_args(p: argparse.ArgumentParser) -> None:
    from central.thresholds import DEFAULT_FPIR, DEFAULT_K

    p.add_argument(
        "--fpir",
        type=float,
        default=DEFAULT_FPIR,
        help="false-positive identification rate the threshold is calibrated for: the share "
        "of people not on the list who would raise an alert (1e-2, 1e-3 default, 1e-4)",
    )
    p.add_argument(
        "--k",
        type=int,
        default=DEFAULT_K,
        help=f"faces in the device's track template (default {DEFAULT_K})",
    )
    p.add_argument(
        "--threshold",
        type=float,
        metavar="X",
        help="an explicit policy threshold instead of the calibrated one (recorded as policy)",
    )
    p.add_argument(
        "--entry-means",
        action="store_true",
        help="also match each entry of several photos by the mean of its photos (the node adds "
        "that row; the calibrated threshold counts it, conservatively, so it rises for the whole "
        "list: pays when few entries have several photos, see docs/operator-guide.md; nodes "
        "older than this refuse such a bundle)",
    )
    p.add_argument("--models-dir", type=Path, metavar="DIR", help="where MANIFEST.json is")
    p.add_argument(
        "--min-quality",
        type=float,
        metavar="Q",
        help="refuse to seal when an entry has a photo of lower quality (0-1; enrol prints them)",
    )
