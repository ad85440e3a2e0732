"""The operating threshold a watchlist is sealed with: from the embedding profile's 1:N
calibration (``models/MANIFEST.json`` -> ``profiles.<name>.calibration_1n``, made by
``make -C models calibrate``) for the list's size, the target FPIR and the template size K, or
an explicit policy value. Never below the profile's 1:1 threshold, which devices enforce.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lfrkit.console import UsageError
from protocol.watchlist import CALIBRATED, POLICY, Bins, MatchThreshold

DEFAULT_FPIR = 1e-3
DEFAULT_K = 3  # the agent's track template: the mean of its best 3 faces


def fpir_key(fpir: float) -> str:
    """The calibration table's key of an FPIR: ``1e-03``."""
    return f"{fpir:.0e}"


def interpolate(table: dict[str, dict[str, float]], n: int, fpir: float) -> float:
    """The threshold for a list of ``n`` entries, linear in log N between the table's sizes
    (under the calibration's exponential tail it is linear in log N); up to the smallest size,
    the smallest size's value. Raises ValueError past the largest size or for an FPIR the table
    does not have."""
    key = fpir_key(fpir)
    sizes = sorted(int(s) for s in table)
    have = table[str(sizes[0])]
    if key not in have:
        raise ValueError(f"no calibration at FPIR {fpir:g} (have {', '.join(sorted(have))})")
    if n > sizes[-1]:
        raise ValueError(f"{n} entries is more than the calibration's largest list ({sizes[-1]})")
    if n <= sizes[0]:
        return table[str(sizes[0])][key]
    hi = next(s for s in sizes if s >= n)
    lo = sizes[sizes.index(hi) - 1]
    f = (math.log(n) - math.log(lo)) / (math.log(hi) - math.log(lo))
    value = table[str(lo)][key] + f * (table[str(hi)][key] - table[str(lo)][key])
    return math.ceil(round(value, 9) * 1e4) / 1e4


def profile_for(embedder_sha256: str, models_dir: Path | None) -> tuple[str, dict[str, Any]]:
    """(name, MANIFEST entry) of the profile whose id is ``embedder_sha256``."""
    from agent.vision.manifest import load_manifest

    raw = load_manifest(models_dir).raw
    for name, profile in raw["profiles"].items():
        if profile["id"] == embedder_sha256:
            return name, profile
    raise UsageError(
        f"the entries were made with embedder {embedder_sha256[:12]}…, no profile of the "
        "models' MANIFEST.json: give the threshold explicitly (--threshold)"
    )


def choose(
    embedder_sha256: str,
    entries: int,
    *,
    fpir: float = DEFAULT_FPIR,
    k: int = DEFAULT_K,
    explicit: float | None = None,
    models_dir: Path | None = None,
    photos: Sequence[tuple[int, float]] | None = None,
    entry_means: bool = False,
) -> tuple[MatchThreshold, str]:
    """The threshold to seal a list of ``entries`` entries with, and one line saying why.

    ``photos``: per entry, its number of photos and their coherence (the norm of the mean of
    their unit embeddings). Given, the calibrated threshold counts every photo as a row (an
    entry is matched by its best photo, so each is a chance of a false alert) and, with
    ``entry_means``, each several-photo entry's mean row as the photo rows it is worth
    (:func:`mean_row_weight`), and the threshold says the node may add those rows. Without it,
    one row per entry."""
    if explicit is not None:
        if entry_means:
            raise UsageError(
                "--entry-means needs a calibrated threshold (it counts the mean rows): "
                "drop --threshold or --entry-means"
            )
        if not 0.0 < explicit <= 1.0:
            raise UsageError(f"--threshold {explicit} is not in (0, 1]")
        floor = one_to_one(embedder_sha256, models_dir)
        if floor is not None and explicit < floor:
            raise UsageError(
                f"--threshold {explicit} is below the profile's 1:1 threshold {floor}: "
                "devices refuse such a watchlist"
            )
        return MatchThreshold(explicit, POLICY), f"threshold {explicit:.4f}: explicit policy value"
    name, profile = profile_for(embedder_sha256, models_dir)
    calib = profile.get("calibration_1n")
    if calib is None or calib.get("profile_id") != profile["id"]:
        raise UsageError(
            f"profile {name!r} has no 1:N calibration for its current models (make -C models "
            "calibrate), or give the threshold explicitly (--threshold)"
        )
    table = calib["thresholds"].get(str(k))
    if table is None:
        raise UsageError(
            f"profile {name!r} is calibrated for K in {', '.join(sorted(calib['thresholds']))}, "
            f"not {k}"
        )
    rows, means = _counted(photos, entries, entry_means)
    try:
        value, counted, means = _settle(table, calib["thresholds"].get("1"), rows, means, fpir)
    except ValueError as exc:
        raise UsageError(f"profile {name!r}: {exc}; give the threshold explicitly") from None
    size = f"{entries} entries"
    if photos is not None and (counted > entries or means):
        size += f" ({math.ceil(counted)} rows counted: {rows} photos"
        size += f", {len(means)} mean rows)" if means else ")"
    why = f"calibrated for {size} at FPIR {fpir:g}, K={k}"
    floor = profile.get("recommended_threshold")
    if floor is not None and value < float(floor):
        value = float(floor)
        why += f", raised to the profile's 1:1 threshold {value:.4f}"
    if value >= 1.0:
        raise UsageError(f"profile {name!r}: no attainable threshold for {why}")
    bins = by_coherence(calib, k, math.ceil(counted), fpir, floor)
    if bins is not None:
        value = max(value, bins[0][1])
        bins = ((0.0, value), *bins[1:])
        if value >= 1.0:
            raise UsageError(f"profile {name!r}: no attainable threshold for {why}")
        why += ", by coherence " + " ".join(f"{c:.3f}:{t:.4f}" for c, t in bins)
    threshold = MatchThreshold(value, CALIBRATED, fpir, k, entries, bins, bool(means))
    return threshold, f"threshold {value:.4f}: {why}"


def _settle(
    table: dict[str, dict[str, float]],
    one: dict[str, dict[str, float]] | None,
    rows: int,
    means: list[float],
    fpir: float,
) -> tuple[float, float, list[float]]:
    """The threshold for ``rows`` photo rows and mean rows of these coherences, the rows
    counted, and the mean rows kept (none without a K = 1 table to weigh them). A mean row's
    weight grows with the threshold it is judged at, and the threshold with the rows counted:
    a few rounds settle it (it never goes down)."""
    value = interpolate(table, rows, fpir)
    if not means or one is None:
        return value, float(rows), []
    counted = float(rows)
    tail = row_tail(one)
    for _ in range(8):
        counted = rows + sum(mean_row_weight(tail, value, c) for c in means)
        again = interpolate(table, math.ceil(counted), fpir)
        if again <= value:
            break
        value = again
    return value, counted, means


def _counted(
    photos: Sequence[tuple[int, float]] | None, entries: int, entry_means: bool
) -> tuple[int, list[float]]:
    """Photo rows, and the coherences of the entries that get a mean row."""
    if photos is None:
        return entries, []
    rows = sum(n for n, _ in photos)
    return rows, [c for n, c in photos if entry_means and n >= 2]


def row_tail(table: dict[str, dict[str, float]]) -> tuple[list[float], list[float]]:
    """A photo row's impostor tail read off the K = 1 table: a list of N entries at FPIR f
    sits where one row is exceeded with probability f / N. Points (threshold, log rate),
    by threshold, the rate never rising."""
    points = sorted(
        (t, math.log(float(fpir_text) / int(n)))
        for n, row in table.items()
        for fpir_text, t in row.items()
    )
    xs: list[float] = []
    ys: list[float] = []
    for t, y in points:
        if xs and t <= xs[-1]:
            continue  # keep one point per threshold
        ys.append(min(y, ys[-1]) if ys else y)
        xs.append(t)
    return xs, ys


def _log_rate(xs: list[float], ys: list[float], t: float) -> float:
    """Linear in the threshold between the table's points; beyond them, the end segment's
    slope (below the table the true tail is flatter, so this over-counts: conservative)."""
    if len(xs) < 2:
        raise ValueError("the K = 1 calibration has too few points for a tail")
    i = 1  # the segment [i - 1, i] that t falls in, or the end one it extends
    while i < len(xs) - 1 and xs[i] < t:
        i += 1
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (t - x0) * (y1 - y0) / (x1 - x0)


def mean_row_weight(
    tail: tuple[list[float], list[float]], threshold: float, coherence: float
) -> float:
    """How many photo rows a mean row counts as at ``threshold``, given a photo row's
    :func:`row_tail` ``p1``. Its score is the mean of the photos' scores divided by their
    coherence, so it reaches the threshold about as often as one photo reaches threshold x
    coherence: p1(t c) / p1(t), the bound for photos whose scores always agree; never below 1.
    Measured on LFW (models/evaluation/mean_row_tail.py), the true weight is that bound to the
    power 0.64-0.92: kept, because a fitted power would lower a sealed threshold by about 0.004."""
    xs, ys = tail
    c = min(max(coherence, 0.0), 1.0)
    ratio = math.exp(_log_rate(xs, ys, threshold * c) - _log_rate(xs, ys, threshold))
    return max(1.0, ratio)


def by_coherence(
    calib: dict[str, Any], k: int, entries: int, fpir: float, one_to_one: float | None
) -> Bins | None:
    """The K-face template's threshold by its coherence for this list (None: the profile's
    calibration has none for K): never below the K = 1 threshold for the list (a template of K
    identical faces is one face) nor the 1:1 one, and never rising with coherence (a bin is
    raised to any more coherent bin's)."""
    table = calib.get("by_coherence", {}).get(str(k))
    if not table or k == 1:
        return None
    floor = float(one_to_one) if one_to_one is not None else 0.0
    one = calib["thresholds"].get("1")
    if one is not None:
        floor = max(floor, interpolate(one, entries, fpir))
    values = [max(floor, interpolate(b["thresholds"], entries, fpir)) for b in table]
    for i in reversed(range(len(values) - 1)):
        values[i] = max(values[i], values[i + 1])
    return tuple((float(b["from"]), v) for b, v in zip(table, values, strict=True))


def one_to_one(embedder_sha256: str, models_dir: Path | None) -> float | None:
    """The profile's 1:1 (verification) threshold, None for a profile that is not shipped."""
    try:
        _, profile = profile_for(embedder_sha256, models_dir)
    except UsageError:
        return None  # not a shipped profile (a test backend): the device knows its own floor
    floor = profile.get("recommended_threshold")
    return None if floor is None else float(floor)
