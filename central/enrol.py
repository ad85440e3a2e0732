"""``lfr-watchlist enrol``: photos of each subject -> an entries file, with the device's models.

DIR holds one folder per subject (the folder name is its opaque ``subject_ref``) with
``*.jpg``/``*.png``; an optional ``DIR/subjects.csv`` (``subject_ref,category,threshold``)
sets category and a per-entry threshold. Each image gives one embedding or one refusal with
its reason: no face, more than one face (unless ``--largest`` or ``--central`` says which),
face too small, too blurred.

``detector`` picks the face finder (``blazeface`` or ``yunet``, as the agent's
``[vision] detector``); the embedding profile is the same either way, and a photo is searched at
its full resolution (enrolment photos are close-ups; the node's ``min_face_px`` scaling is for
CCTV frames). Which detector enrolled a list is not recorded in it: a face enrolled through one
and seen through the other matches as well as through the same one (LFW through this tool,
models/README.md), so the profile id alone decides whether a node can use a watchlist.
"""

from __future__ import annotations

import csv
import logging
import math
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from agent.core.quality import QualityPolicy, detail, gate, grey_of, measure
from agent.models import Vision, load_profile
from agent.vision.align import ARCFACE_112_4PT, align
from lfrkit.console import UsageError
from protocol.entries import SUBJECT_REF, Entries, Entry

log = logging.getLogger(__name__)
SUFFIXES = {".jpg", ".jpeg", ".png"}
# Size: "face too small" below 40 px (the face box's shorter side). Measured on calibration
# identities' photos scaled down (models/evaluation/enrol_size.py -> models/enrol_size.json,
# accurate, 441 listed, calibrated threshold): FNIR 13.5 % enrolled at 112 px, 13.7 % at 60,
# 15.4 % at 48, 17.1 % at 40, 22.7 % at 32 and 44.8 % at 24 (recognition collapses below 40);
# rank-1 0.99 down to 40 px, and strangers' scores do not rise as the photo shrinks. Pose is
# not a refusal: custody and public photos are often three-quarter views, and
# refusing yaw > 0.35 turned away 448 of LFW's 7,701 pair images (6 %) whose embeddings match
# well (LFW through this tool: 87.8 % with it, see models/README.md). The camera side still
# applies its own yaw and sharpness limits (config `quality`). Blur is judged here on the
# aligned face instead (face_detail), because the street's Laplacian variance on the face box
# also falls for dark, low-contrast faces: at 15 it refused 7 LFW photos that all matched.
ENROL_QUALITY = QualityPolicy(min_face_px=40.0, min_sharpness=0.0, max_yaw=float("inf"))
# "face too blurred" below this face_detail: the median detail of 300 calibration faces (LFW
# identities the pairs file never names) blurred until their accurate-profile embedding keeps
# only cosine 0.90 to the sharp one (Gaussian sigma about 2.5 px on a 250 px photo). Measured by
# models/evaluation/enrol_blur.py -> models/enrol_blur_calibration.json.
MIN_FACE_DETAIL = 0.0042
DETAIL_TEMPLATE = ARCFACE_112_4PT  # a fixed 112 x 112 view: the threshold ignores face size
DETAIL_SIZE = 112
DETAIL_MARGIN = 8  # leave out the crop's edges, where the warp may show the image border


# Photo quality (size x detail x frontalness, in [0, 1]; photo_quality): size counts up to
# 60 px (larger photos enrolled no better: FNIR 13.7 % at 60 px, 13.5 % at 112); detail
# saturates (half at the blur refusal point); frontalness is 1 - yaw. `seal` warns below
# QUALITY_WARN: about a sharp (4x the blur refusal detail), frontal face at the 40 px floor
# (0.53); a judgement on these factors, not a measured operating point.
SIZE_FULL_PX = 60.0
QUALITY_WARN = 0.5


def photo_quality(size_px: float, face_detail_value: float, yaw: float) -> float:
    """How good an enrolment photo's face is for recognition, in [0, 1]."""
    size = min(1.0, max(0.0, size_px) / SIZE_FULL_PX)
    d = max(0.0, face_detail_value)
    sharp = d / (d + MIN_FACE_DETAIL)
    frontal = 0.0 if math.isnan(yaw) else max(0.0, 1.0 - yaw)  # NaN: not frontal
    return round(size * sharp * frontal, 4)


def face_detail(image: npt.NDArray[np.uint8], keypoints: npt.NDArray[np.float32]) -> float:
    """:func:`agent.core.quality.detail` of the face aligned to a fixed 112 x 112 view."""
    crop = align(image, keypoints, DETAIL_TEMPLATE, DETAIL_SIZE, DETAIL_SIZE)
    m = DETAIL_MARGIN
    grey = grey_of(crop[m:-m, m:-m])
    return detail(grey)


Pick = Literal["largest", "central"]


def visible_area(box: tuple[float, float, float, float], width: int, height: int) -> float:
    """Area of a face box inside the image: a bystander cut by the edge must not outrank the
    subject in the middle just because the detector extrapolated its box past the border."""
    x0, y0, x1, y1 = box
    return max(0.0, min(x1, width) - max(x0, 0.0)) * max(0.0, min(y1, height) - max(y0, 0.0))


def central_distance(box: tuple[float, float, float, float], width: int, height: int) -> float:
    """Squared distance from the box centre to the image centre: photos cut around their
    subject (press and custody crops; LFW) put a larger bystander at the edge, not the middle."""
    x0, y0, x1, y1 = box
    return ((x0 + x1) / 2 - width / 2) ** 2 + ((y0 + y1) / 2 - height / 2) ** 2


def choose(
    boxes: list[tuple[float, float, float, float]], width: int, height: int, pick: Pick
) -> int:
    """Index of the face ``pick`` selects among several."""
    if pick == "largest":
        return max(range(len(boxes)), key=lambda i: visible_area(boxes[i], width, height))
    if pick == "central":
        return min(range(len(boxes)), key=lambda i: central_distance(boxes[i], width, height))
    raise ValueError(f"unknown face choice {pick!r}")


@dataclass(frozen=True)
class Outcome:
    subject_ref: str
    image: Path
    embedding: npt.NDArray[np.float32] | None
    refusal: str | None  # reason when no embedding
    quality: float | None = None  # photo_quality of the face (None: refused before measuring)


@dataclass(frozen=True)
class Subject:
    ref: str
    category: str
    threshold: float | None
    images: tuple[Path, ...]


def read_subjects(root: Path) -> list[Subject]:
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder of subject folders")
    meta: dict[str, tuple[str, float | None]] = {}
    table = root / "subjects.csv"
    if table.exists():
        with table.open(newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                ref = (row.get("subject_ref") or "").strip()
                try:
                    threshold = (
                        float(row["threshold"]) if (row.get("threshold") or "").strip() else None
                    )
                except ValueError:
                    raise UsageError(f"{table}:{line}: threshold is not a number") from None
                if threshold is not None and not -1.0 <= threshold <= 1.0:
                    raise UsageError(f"{table}:{line}: threshold must be in -1..1")
                meta[ref] = ((row.get("category") or "wanted").strip() or "wanted", threshold)
    subjects = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not SUBJECT_REF.match(folder.name):
            raise UsageError(
                f"{folder}: folder name must be an opaque subject reference "
                "(letters, digits, . _ : -), not a name with spaces"
            )
        images = tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES))
        category, threshold = meta.get(folder.name, ("wanted", None))
        subjects.append(Subject(folder.name, category, threshold, images))
    unknown = set(meta) - {s.ref for s in subjects}
    if unknown:
        raise UsageError(f"{table}: no folder for subject {sorted(unknown)[0]!r}")
    if not subjects:
        raise UsageError(f"{root} has no subject folders")
    return subjects


def embed_image(vision: Vision, ref: str, path: Path, pick: Pick | None) -> Outcome:
    from agent.vision.errors import ImageDecodeError
    from agent.vision.image import read_image

    try:
        image = read_image(path)
    except ImageDecodeError as exc:
        return Outcome(ref, path, None, f"unreadable image ({exc})")
    faces = list(vision.detector.detect(image))
    if not faces:
        return Outcome(ref, path, None, "no face")
    if len(faces) > 1 and pick is None:
        return Outcome(ref, path, None, f"{len(faces)} faces (use --largest or --central)")
    height, width = image.shape[:2]
    face = faces[choose([d.box for d in faces], width, height, pick or "largest")]
    measured = measure(image, face.box, face.keypoints)
    reason = gate(measured, ENROL_QUALITY)
    if reason is not None:
        text = {
            "too_small": "face too small",
            "blurred": "face too blurred",
            "pose": "face not frontal",
        }[reason]
        return Outcome(ref, path, None, text)
    fine = face_detail(image, face.keypoints)
    quality = photo_quality(measured.size_px, fine, measured.yaw)
    if fine < MIN_FACE_DETAIL:
        return Outcome(ref, path, None, "face too blurred", quality)
    return Outcome(ref, path, vision.embedder.embed(image, face), None, quality)


_WORKER: Vision | None = None
DETECTORS = ("blazeface", "yunet")
DEFAULT_DETECTOR = "blazeface"


def _init_worker(profile: str, models_dir: Path | None, detector: str) -> None:
    global _WORKER  # noqa: PLW0603 - one model instance per worker process
    _WORKER = load_profile(profile, models_dir, threads=1, detector=detector)


def _work(job: tuple[str, Path, Pick | None]) -> Outcome:
    assert _WORKER is not None
    return embed_image(_WORKER, *job)


def enrol(
    root: Path,
    *,
    profile: str = "accurate",
    models_dir: Path | None = None,
    pick: Pick | None = None,
    workers: int = 1,
    progress: bool = True,
    detector: str = DEFAULT_DETECTOR,
) -> tuple[Entries, list[Outcome]]:
    if detector not in DETECTORS:
        raise UsageError(f"unknown detector {detector!r} (known: {', '.join(DETECTORS)})")
    subjects = read_subjects(root)
    jobs = [(s.ref, image, pick) for s in subjects for image in s.images]
    outcomes: Iterator[Outcome]
    vision = load_profile(profile, models_dir, detector=detector)
    if workers > 1:
        pool = ProcessPoolExecutor(
            workers, initializer=_init_worker, initargs=(profile, models_dir, detector)
        )
        outcomes = pool.map(_work, jobs, chunksize=4)
    else:
        pool = None
        outcomes = (embed_image(vision, *job) for job in jobs)
    done: list[Outcome] = []
    live = progress and sys.stderr.isatty()  # a log file would get one line per image
    try:
        for outcome in outcomes:
            done.append(outcome)
            if live:
                print(
                    f"\renrolling {len(done)}/{len(jobs)} images",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if pool is not None:
            pool.shutdown()
    if live and jobs:
        print(file=sys.stderr)
    by_ref: dict[str, list[npt.NDArray[np.float32]]] = {}
    quality: dict[str, list[float]] = {}
    for outcome in done:
        if outcome.embedding is not None:
            by_ref.setdefault(outcome.subject_ref, []).append(outcome.embedding)
            assert outcome.quality is not None  # every embedded face was measured
            quality.setdefault(outcome.subject_ref, []).append(outcome.quality)
    entries = tuple(
        Entry(s.ref, s.category, s.threshold, np.stack(by_ref[s.ref]), tuple(quality[s.ref]))
        for s in subjects
        if s.ref in by_ref
    )
    return Entries(vision.embedder.id, vision.embedder.dim, entries), done


def summary(outcomes: list[Outcome], entries: Entries) -> list[str]:
    refusals = Counter(o.refusal.split(" (")[0] for o in outcomes if o.refusal)
    lines = [
        f"{len(outcomes)} images: {sum(o.refusal is None for o in outcomes)} embedded, "
        f"{sum(refusals.values())} refused; {len(entries.entries)} subjects enrolled"
    ]
    lines += [f"  refused: {reason}: {count}" for reason, count in refusals.most_common()]
    return lines


def entry_quality(entry: Entry) -> float | None:
    """An entry's weakest photo: each photo is matched on its own, so each can raise a false
    alert (None: the entries file has no quality, enrolled before it was recorded)."""
    return None if entry.quality is None else min(entry.quality)


def disagreeing(entries: Entries, floor: float) -> list[tuple[float, str, int]]:
    """Entries of several photos whose least alike two photos score below ``floor`` against
    each other, lowest first: (that score, subject, photos). With ``floor`` the profile's 1:1
    threshold, the profile's own verification rule does not say those photos show one person:
    one may be of someone else (every alert on it would be false), or half hidden (a helmet, a
    hand), which costs recall and false alerts alike."""
    from agent.core.matcher import unit_rows

    low: list[tuple[float, str, int]] = []
    for entry in entries.entries:
        if len(entry.embeddings) < 2:
            continue
        unit = unit_rows(entry.embeddings)
        pairs = (unit @ unit.T)[np.triu_indices(len(unit), 1)]
        if (score := float(pairs.min())) < floor:
            low.append((score, entry.subject_ref, len(unit)))
    return sorted(low)


def disagreeing_table(entries: Entries, floor: float, count: int = 10) -> list[str]:
    """Enrol's table of :func:`disagreeing` entries (none: no lines)."""
    low = disagreeing(entries, floor)
    if not low:
        return []
    lines = [
        f"entries whose photos disagree ({len(low)}: two of their photos score below the "
        f"profile's 1:1 threshold {floor:.4f} against each other; check that every photo shows "
        "the same person with the face unobstructed):",
        f"  {'SUBJECT':<24} {'PHOTOS':>6} {'LOWEST':>8}",
    ]
    lines += [f"  {ref:<24} {n:>6} {score:>8.3f}" for score, ref, n in low[:count]]
    return lines


def weakest(entries: Entries, count: int = 10) -> list[str]:
    """A table of the ``count`` entries with the weakest photo (for ``enrol``'s output)."""
    rated = sorted(
        (q, e.subject_ref, len(e.embeddings))
        for e in entries.entries
        if (q := entry_quality(e)) is not None
    )
    if not rated:
        return []
    below = sum(q < QUALITY_WARN for q, _, _ in rated)
    lines = [
        f"weakest entries (photo quality 0-1, size x detail x frontalness; "
        f"{below} below {QUALITY_WARN}, which seal warns about):",
        f"  {'SUBJECT':<24} {'PHOTOS':>6} {'QUALITY':>8}",
    ]
    lines += [f"  {ref:<24} {n:>6} {q:>8.3f}" for q, ref, n in rated[:count]]
    return lines
