"""The detection section of ``bench.md`` and its plot, rendered from ``bench.json``
(``measured.detection``, written by :func:`tools.bench.detection.measure_detection`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tools.report import finish, pyplot, table

PLOT = "bench_detection.png"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def plot_recall_by_size(det: dict[str, Any], path: Path) -> None:
    """Recall against face height (bin centres, log axis), one colour per detector, solid
    1080p and dashed 720p."""
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    colours = pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    # The "no second look" rows measure a filter; their lines would lie on YuNet's own.
    names = [d["name"] for d in det["detectors"] if "no second look" not in d["name"]]
    for res, style in (("1920x1080", "-"), ("1280x720", "--")):
        rows = det["composites"].get(res, {})
        for i, name in enumerate(names):
            bins = rows.get(name, {}).get("bins", [])
            pts = [
                (
                    np.sqrt(float(b["bin"].split("-")[0]) * float(b["bin"].split("-")[1])),
                    b["recall"],
                )
                for b in bins
                if b["recall"] is not None
            ]
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    style,
                    marker="o",
                    markersize=3,
                    color=colours[i % len(colours)],
                    label=f"{name} ({res})",
                )
    ax.set_xscale("log")
    edges = [16, 24, 32, 48, 64, 96, 128, 256]
    ax.set_xticks(edges, [str(e) for e in edges])
    ax.set_xticks([], minor=True)
    ax.set_ylim(-0.02, 1.02)
    finish(
        fig,
        ax,
        path,
        title="Recall against face size, concourse composites",
        x="face box height, px (log; points at the centres of the bins between the ticks)",
        y="recall",
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )


def _composite_table(rows: dict[str, Any], bins: list[str], haar: str) -> str:
    haar_ms = rows.get(haar, {}).get("median_ms")
    header = [
        "detector",
        *[f"{b} px" for b in bins],
        "24-40 px",
        ">= 40 px",
        ">= 40 px, IoU>=0.5",
        "false / 100 frames",
        "frames/s",
        "Haar time / this",
    ]
    first = next(iter(rows.values()))
    out = [["(faces in the bin)", *[str(b["faces"]) for b in first["bins"]], *[""] * 6]]
    for name, r in rows.items():
        ms = r["median_ms"]
        out.append(
            [
                f"{name}" + (f" ({r['frames']} frames)" if name.endswith("HOG") else ""),
                *[_pct(b["recall"]) for b in r["bins"]],
                _pct(r["recall_24_40"]),
                _pct(r["recall_40_up"]),
                _pct(r["recall_iou50_40_up"]),
                f"{r['false_per_100_frames']:.1f}",
                f"{r['fps']:.1f}" if r["fps"] else "-",
                f"{haar_ms / ms:.1f}x" if haar_ms and ms else "-",
            ]
        )
    return table(header, out)


def _precision_table(rows: dict[str, Any], bins: list[str]) -> str:
    return table(
        ["detector", *[f"{b} px" for b in bins]],
        [[name, *[_pct(b["precision"]) for b in r["bins"]]] for name, r in rows.items()],
    )


def _clips(clips: dict[str, Any]) -> list[str]:
    lines = ["### The real clips (../shared/media, at their own 480x270)", ""]
    if not clips:
        return [*lines, "Skipped: ../shared/media is absent.", ""]
    rows = []
    for clip, c in clips.items():
        if c is None:
            rows.append([clip, "no ground truth committed", "", "", "", "", ""])
            continue
        for name, r in c["detectors"].items():
            rows.append(
                [
                    clip,
                    f"{c['frames']} frames, {c['faces']} faces ({c['faces_40_up']} >= 40 px)",
                    name,
                    _pct(r["recall"]),
                    _pct(r["recall_40_up"]),
                    _pct(r["precision"]),
                    str(r["false"]),
                ]
            )
    header = ["clip", "truth", "detector", "recall", "recall >= 40 px", "precision", "false"]
    return [
        *lines,
        table(header, rows),
        "",
        "Ground truth: `tools/bench/truth/<clip>.json`, made with `python -m "
        "tools.bench.clip_truth` (procedure in that module and in `tools/bench/truth/"
        "README.md`). The truth was proposed by our BlazeFace models and Haar themselves (at a "
        "permissive threshold, on frames scaled 2x) and reviewed by eye, so these recalls are "
        "upper bounds: a face that all of them missed in every frame would be absent from the "
        "truth (none was seen on the contact sheets). Intel IoT devkit sample videos, CC-BY 4.0.",
        "",
    ]


def render_detection(doc: dict[str, Any], out: Path) -> None:
    """``detection.md`` and the plot, from what ``python -m tools.bench.detection`` wrote."""
    if "skipped" not in doc["measured"]["detection"]:
        plot_recall_by_size(doc["measured"]["detection"], out / PLOT)
    (out / "detection.md").write_text("\n".join(detection_section(doc)))


def targets(rows: dict[str, Any], haar: str = "OpenCV Haar") -> list[str]:
    """One line per detector of ours: which of issue 15's 1080p detection targets it meets."""
    ref = rows.get(haar)
    out = []
    for name, r in rows.items():
        if name == haar or name.endswith("HOG"):
            continue
        checks = {
            "recall >= 95 % at >= 40 px": (r["recall_40_up"] or 0) >= 0.95,
            ">= 80 % at 24-40 px": (r["recall_24_40"] or 0) >= 0.80,
            "<= 1 false / 100 frames": r["false_per_100_frames"] <= 1.0,
        }
        if ref is not None:
            checks["Haar's recall in every bin"] = all(
                (b["recall"] or 0) >= (h["recall"] or 0)
                for b, h in zip(r["bins"], ref["bins"], strict=True)
            )
        met = [k for k, ok in checks.items() if ok]
        missed = [k for k, ok in checks.items() if not ok]
        out.append(
            f"- **{name}**: "
            + (f"meets {', '.join(met)}" if met else "meets none")
            + (f"; misses {', '.join(missed)}" if missed else " (all)")
            + "."
        )
    return out


def detection_section(doc: dict[str, Any]) -> list[str]:
    det = doc["measured"].get("detection")
    lines = ["", "## Detection: recall by face size, false detections, speed", ""]
    if det is None:
        return [*lines, "Not measured in this run.", ""]
    if "skipped" in det:
        return [*lines, f"Skipped: {det['skipped']}", ""]
    bins = det["bins"]
    lines += [
        f"Run {det['run_at']}, load average at the end "
        f"{', '.join(f'{x:.2f}' for x in det['load_average'])} (other work shares the machine: "
        "compare detectors within this run, not with other runs).",
        "",
        "Concourse composites (`tools/bench/composites.py`, seed "
        f"{det['seed']}): 720p and 1080p frames of real backgrounds (CC0 / public-domain "
        "scene photos from the pinned scikit-image wheel; frames of the CC-BY clips that have "
        "ground truth, scaled up, their real faces as ignore regions) with LFW faces pasted "
        "at 16-256 px face height, sizes spread evenly over the bins, every face relit (gain "
        "0.55-1.35), 30 % blurred, 25 % partly occluded (20-40 % of the face box). The truth "
        "box is BlazeFace short-range's box on the source photo, scaled. LFW photos whose "
        "pasted head tile shows a second person's face (about 1 in 10: BlazeFace full-range "
        "or YuNet finds one there) are not used, since that face would have no truth box. A "
        "detection hits a "
        "face when its centre is inside the truth box and its height is 0.5-2x the truth "
        "height (detectors draw different extents: Haar's square is larger, HOG's smaller); "
        "the IoU >= 0.5 column shows how much a strict IoU rule would change. Every detector "
        "sees the same frames in one run at 2 threads (dlib's HOG is single-threaded); "
        "frames/s is 1 / median detect time of a whole frame (RGB in, boxes out). YuNet's "
        "rows include its second look (`agent.vision.yunet.SecondLook`: detections under 0.9 "
        "are run again on a crop where the face is 64 px and kept at >= 0.7 there); the "
        "'no second look' rows are the same model as OpenCV decodes it, to show what the "
        "look costs and pays.",
        "",
        "Detectors: "
        + "; ".join(
            f"**{d['name']}**" + (f" ({d['note']})" if d["note"] else "") for d in det["detectors"]
        )
        + ".",
    ]
    if det["missing"]:
        lines += ["", "Not measured: " + "; ".join(det["missing"]) + "."]
    for w, h, frames, per in det["sizes"]:
        res = f"{w}x{h}"
        rows = det["composites"][res]
        lines += [
            "",
            f"### {res}: {frames} frames, {per} faces each",
            "",
            "Recall per face-size bin:",
            "",
            _composite_table(rows, bins, "OpenCV Haar"),
            "",
            "Precision per size bin (false detections binned by their own height):",
            "",
            _precision_table(rows, bins),
        ]
    lines += [
        "",
        f"![recall by face size]({PLOT})",
        "",
        "Targets (issue 15, 1080p composites): recall >= 95 % at >= 40 px and >= 80 % at "
        "24-40 px with <= 1 false detection per 100 frames, at least Haar's recall in every "
        "bin, at a fraction of its time. In this run:",
        "",
        *targets(det["composites"].get("1920x1080", {})),
        "",
        *_clips(det["clips"]),
    ]
    return lines
