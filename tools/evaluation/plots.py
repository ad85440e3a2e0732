"""The plots of ``make eval``, drawn from the data in ``eval.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tools.evaluation.embedding import PROFILES
from tools.report import finish, pyplot, save


def det_plot(
    det: dict[str, dict[str, Any]], path: Path, title: str = "LFW 1:N identification, DET"
) -> None:
    """DET curves, one per embedder (``fpir``, ``fnir``), with its ``marks`` (x, y, label)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for number, (name, curve) in enumerate(det.items()):
        fpir, fnir = np.array(curve["fpir"]), np.array(curve["fnir"])
        keep = (fpir > 0) & (fnir > 0)
        (line,) = ax.loglog(fpir[keep], fnir[keep], label=name)
        offset = (5, -10) if number % 2 == 0 else (-5, 6)  # labels of two curves apart
        for x, y, label in curve.get("marks", []):
            if x > 0 and y > 0:
                marker = "x" if "MANIFEST" in label else "s" if "model" in label else "o"
                ax.plot([x], [y], marker, color=line.get_color(), ms=7)
                ax.annotate(
                    label,
                    (x, y),
                    fontsize=6,
                    xytext=offset,
                    textcoords="offset points",
                    ha="left" if offset[0] > 0 else "right",
                    color=line.get_color(),
                )
    finish(
        fig,
        ax,
        path,
        title=title,
        x="FPIR (non-mated searches returning a candidate)",
        y="FNIR (mated searches missed)",
    )


def score_plot(
    scores: dict[str, dict[str, list[float]]],
    operating: dict[str, dict[str, dict[str, Any]]],
    noise: dict[str, dict[str, Any]],
    path: Path,
) -> None:
    """The tail that decides FPIR 1e-3: best non-mated scores vs mated scores, per profile,
    with the thresholds of the report drawn in."""
    plt = pyplot()
    shown = [p for p in PROFILES if p in scores]
    fig, axes = plt.subplots(len(shown), 1, figsize=(7, 3.2 * len(shown)), squeeze=False)
    for ax, name in zip(axes[:, 0], shown, strict=True):
        mated, nonmated = np.array(scores[name]["mated"]), np.array(scores[name]["nonmated_top"])
        bins = np.linspace(
            min(nonmated.min(), mated.min()),
            max(nonmated.max(), mated.max()),
            80,
        )
        ax.hist(mated, bins, alpha=0.5, label="mated (score of the mate)")
        ax.hist(nonmated, bins, alpha=0.5, label="non-mated (best score)")
        ax.set_yscale("log")
        lines = [(noise[name]["near_cutoff"], "near-duplicate cut-off", ":")]
        for key, style in (("0.01", "-."), ("0.001", "--")):
            if key in operating[name]:
                point = operating[name][key]
                lines.append((point["raw"]["threshold"]["estimate"], f"FPIR {key} raw", style))
                lines.append((point["clean"]["threshold"]["estimate"], f"FPIR {key} clean", "-"))
        model = noise[name]["model"]["threshold"]["estimate"]
        lines.append((model, "recommended (Gumbel model, FPIR 1e-3)", "-"))
        if "manifest" in noise[name]:
            lines.append((noise[name]["manifest"]["threshold"], "MANIFEST", "-"))
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (x, label, style) in enumerate(lines):
            ax.axvline(x, linestyle=style, color=colours[(i + 2) % len(colours)], label=label)
        ax.set_title(f"{name}: 1:N scores on LFW", fontsize=9)
        ax.set_xlabel("score (the profile's cosine, as the device compares it)")
        ax.set_ylabel("searches (log)")
        ax.legend(fontsize=6)
    save(fig, path)
