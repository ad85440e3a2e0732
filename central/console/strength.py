"""How strong a match is, in plain words, from the embedding profile's 1:N calibration.

The calibration (``models/MANIFEST.json`` -> ``calibration_1n.thresholds[K][N][FPIR]``) is
``FPIR(N, t) = 1 - (1 - p(t))^N``, so each entry is one point of ``p(t)``, the chance that a
different person's face scores ``t`` or more in one comparison (``p ~= FPIR / N`` at these
small rates). Interpolating ``log10 p`` in ``t`` gives how rare the alert's score is for a
stranger, and how much rarer than at the threshold the list was sealed with:

- strong: 100 times or more rarer than at the threshold,
- moderate: 10 to 100 times rarer,
- weak: less than 10 times (just over the line: as likely a stranger as the list allows).

Without a calibration for the alert's embedder (a test model, an older profile) the words come
from the margin above the threshold and say so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
TEMPLATE_K = "3"  # the node's track template (central.thresholds.DEFAULT_K)
STRONG_DECADES, MODERATE_DECADES = 2.0, 1.0
STRONG_MARGIN, MODERATE_MARGIN = 0.10, 0.05  # only without a calibration


@dataclass(frozen=True)
class Strength:
    word: str  # strong / moderate / weak
    text: str  # one sentence an officer can read


Curve = list[tuple[float, float]]  # (threshold, log10 p), sorted by threshold


def curve(table: dict[str, dict[str, float]]) -> Curve:
    """The points (t, log10 p) of one K's calibration table."""
    points = {
        (float(t), math.log10(float(fpir)) - math.log10(int(n)))
        for n, row in table.items()
        for fpir, t in row.items()
    }
    return sorted(points)


def log10_p(points: Curve, score: float) -> float:
    """log10 of a stranger's chance of scoring ``score``, linear between the points and
    continued with the end segments' slopes."""
    if len(points) < 2:
        raise ValueError("a calibration needs at least two points")
    i = next((k for k in range(1, len(points)) if points[k][0] >= score), len(points) - 1)
    (t0, p0), (t1, p1) = points[i - 1], points[i]
    if t1 == t0:
        return min(p0, p1)
    return p0 + (score - t0) * (p1 - p0) / (t1 - t0)


def _times(decades: float) -> str:
    return f"{10**decades:,.0f}" if decades < 6 else f"10^{decades:.0f}"


def _count(decades: float) -> str:
    """10^decades in words an officer reads at a glance: ``3 million``."""
    value = 10**decades
    for size, name in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if value >= size:
            return f"{value / size:.0f} {name}" if value < size * 1000 else f"10^{decades:.0f}"
    return f"{value:,.0f}"


def judge(score: float, threshold: float, points: Curve | None) -> Strength:
    """The strength of ``score`` against ``threshold`` (both cosine scores)."""
    if points is None:
        margin = score - threshold
        word = (
            "strong"
            if margin >= STRONG_MARGIN
            else "moderate"
            if margin >= MODERATE_MARGIN
            else "weak"
        )
        return Strength(
            word,
            f"{margin:+.3f} above the threshold (no calibration for this model: "
            "judged by the margin alone).",
        )
    at_score, at_threshold = log10_p(points, score), log10_p(points, threshold)
    decades = max(0.0, at_threshold - at_score)
    word = (
        "strong"
        if decades >= STRONG_DECADES
        else "moderate"
        if decades >= MODERATE_DECADES
        else "weak"
    )
    rarer = (
        "no rarer than at the threshold"
        if decades < 0.05
        else f"{_times(decades)} times rarer than at the threshold"
    )
    return Strength(
        word,
        f"A different person scores this high about once in {_count(-at_score)} "
        f"comparisons, {rarer}.",
    )


def load_curves(models_dir: Path | None = None) -> dict[str, Curve]:
    """Embedder id -> calibration curve, for every profile of the models' MANIFEST.json."""
    from agent.vision.errors import ManifestError
    from agent.vision.manifest import load_manifest

    try:
        raw: dict[str, Any] = load_manifest(models_dir).raw
    except ManifestError as exc:
        log.warning("no calibration for the strength of matches: %s", exc)
        return {}
    curves: dict[str, Curve] = {}
    for name, profile in raw.get("profiles", {}).items():
        calibration = profile.get("calibration_1n") or {}
        table = calibration.get("thresholds", {}).get(TEMPLATE_K)
        if table and calibration.get("profile_id") == profile.get("id"):
            try:
                curves[str(profile["id"])] = curve(table)
            except (TypeError, ValueError) as exc:
                log.warning("profile %s: calibration unusable (%s)", name, exc)
    return curves
