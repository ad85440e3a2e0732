"""Ground truth for the real clips: detectors propose, a person decides.

    python -m tools.bench.clip_truth propose CLIP [--out reports/clip_truth]
    python -m tools.bench.clip_truth accept CLIP --tracks 1,4 [--drop 4:17,4:18] [--note TEXT]

``propose`` runs every detector we have at a permissive operating point on each frame of
``../shared/media/CLIP.gif`` scaled 2x (BlazeFace short and full-range, tiled, score >= 0.3;
Haar with 3 neighbours down to 12 px), merges what they find into candidate faces (IoU > 0.3
or the bench's hit rule), links the candidates of consecutive frames into tracks (IoU > 0.2
with the track's last box, up to 3 frames apart), and writes ``CLIP.proposals.json`` with two
contact sheets: ``CLIP.tracks.png`` (one row per track, its crops enlarged, frame numbers
under them) and ``CLIP.frames.png`` (every 4th frame with the track numbers drawn, to spot a
face no detector proposed).

A person looks at the sheets and runs ``accept`` with the tracks that are faces a viewer can
recognise as faces (``--drop track:frame`` removes single frames of an accepted track, e.g.
where it slid off the face). That writes ``tools/bench/truth/CLIP.json``, which is committed:
the boxes (frame pixels of the GIF, the mean of the proposing detectors' boxes), the accepted
tracks, and this procedure. A face that no detector proposed in any frame is missing from the
truth; the sheets of frames are there to notice one, and the JSON's note says if one was.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from tools.bench.composites import TRUTH, Box, clip_frames
from tools.bench.detection import iou, matches
from tools.bench.scenes import MEDIA, U8
from tools.report import REPORTS

UPSCALE = 2


def proposers() -> list[Any]:
    import cv2

    from agent.vision.detector import FaceDetector
    from agent.vision.manifest import load_manifest

    manifest = load_manifest()
    out: list[Any] = [
        FaceDetector.from_manifest(manifest, m) for m in ("blazeface_short_float32.tflite",)
    ]
    out.append(FaceDetector.from_manifest(manifest, "blazeface_full_float32.tflite"))
    for d in out:
        d.min_score = 0.3
    path = Path(cv2.__file__).parent / "data" / "haarcascade_frontalface_default.xml"
    out.append(cv2.CascadeClassifier(str(path)))
    return out


def propose_frame(frame: U8, found: list[Any]) -> list[dict[str, Any]]:
    """Candidate faces of one frame: boxes of all proposers, merged (IoU > 0.3, or one's
    centre inside the other at a similar size: the bench's own hit rule)."""
    import cv2

    big = np.asarray(Image.fromarray(frame).resize((frame.shape[1] * 2, frame.shape[0] * 2)))
    boxes: list[tuple[Box, str]] = []
    for p in found:
        if isinstance(p, cv2.CascadeClassifier):
            grey = cv2.cvtColor(big, cv2.COLOR_RGB2GRAY)
            for x, y, w, h in p.detectMultiScale(grey, 1.1, 3, minSize=(24, 24)):
                boxes.append(((x / 2, y / 2, (x + w) / 2, (y + h) / 2), "haar"))
        else:
            name = "short" if p.size == 128 else "full"
            for d in p.detect(big, tiles=3):
                b = d.box
                boxes.append(((b[0] / 2, b[1] / 2, b[2] / 2, b[3] / 2), name))
    merged: list[dict[str, Any]] = []
    for box, source in boxes:
        home = next(
            (
                m
                for m in merged
                if iou(box, m["boxes"][0]) > 0.3
                or matches(box, m["boxes"][0])
                or matches(m["boxes"][0], box)
            ),
            None,
        )
        if home is None:
            merged.append({"boxes": [box], "sources": [source]})
        else:
            home["boxes"].append(box)
            home["sources"].append(source)
    return [
        {
            "box": [round(float(v), 1) for v in np.mean(np.array(m["boxes"]), axis=0)],
            "sources": sorted(set(m["sources"])),
        }
        for m in merged
    ]


def link(per_frame: list[list[dict[str, Any]]]) -> None:
    """Give every candidate a ``track`` number (greedy IoU with recent tracks)."""
    tracks: list[tuple[int, Box]] = []  # (last frame, last box) per track
    for i, cands in enumerate(per_frame):
        taken: set[int] = set()
        for c in cands:
            box = tuple(c["box"])
            best = max(
                (
                    (iou(box, last), t)
                    for t, (when, last) in enumerate(tracks)
                    if t not in taken and i - when <= 3
                ),
                default=(0.0, -1),
            )
            if best[0] > 0.2:
                t = best[1]
            else:
                t = len(tracks)
                tracks.append((i, box))
            tracks[t] = (i, box)
            taken.add(t)
            c["track"] = t


def sheets(frames: list[U8], per_frame: list[list[dict[str, Any]]], out: Path, clip: str) -> None:
    by_track: dict[int, list[tuple[int, Box]]] = {}
    for i, cands in enumerate(per_frame):
        for c in cands:
            by_track.setdefault(c["track"], []).append((i, tuple(c["box"])))
    cell, cols = 72, 16
    rows = max(1, len(by_track))
    sheet = Image.new("RGB", (60 + cols * cell, rows * (cell + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (t, items) in enumerate(sorted(by_track.items())):
        y = r * (cell + 14)
        draw.text((4, y + cell // 2), f"T{t}\n{len(items)}f", fill="black")
        pick = [items[int(k)] for k in np.linspace(0, len(items) - 1, min(cols, len(items)))]
        for col, (i, b) in enumerate(pick):
            x0, y0, x1, y1 = b
            pad = 0.3 * (x1 - x0)
            crop = Image.fromarray(frames[i]).crop(
                (int(x0 - pad), int(y0 - pad), int(x1 + pad), int(y1 + pad))
            )
            sheet.paste(crop.resize((cell, cell)), (60 + col * cell, y))
            draw.text((60 + col * cell + 2, y + cell), f"{i} {y1 - y0:.0f}px", fill="black")
    sheet.save(out / f"{clip}.tracks.png")
    shown = list(range(0, len(frames), 4))
    cols2 = 3
    over = Image.new("RGB", (cols2 * 480, ((len(shown) + cols2 - 1) // cols2) * 270), "black")
    draw = ImageDraw.Draw(over)
    for k, i in enumerate(shown):
        ox, oy = (k % cols2) * 480, (k // cols2) * 270
        over.paste(Image.fromarray(frames[i]).resize((480, 270)), (ox, oy))
        sx, sy = 480 / frames[i].shape[1], 270 / frames[i].shape[0]
        draw.text((ox + 4, oy + 4), f"frame {i}", fill="yellow")
        for c in per_frame[i]:
            x0, y0, x1, y1 = c["box"]
            draw.rectangle((ox + x0 * sx, oy + y0 * sy, ox + x1 * sx, oy + y1 * sy), outline="red")
            draw.text((ox + x0 * sx, oy + y1 * sy + 1), f"T{c['track']}", fill="red")
    over.save(out / f"{clip}.frames.png")


def propose(clip: str, out: Path) -> Path:
    frames = clip_frames(MEDIA / f"{clip}.gif")
    found = proposers()
    per_frame = [propose_frame(f, found) for f in frames]
    link(per_frame)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{clip}.proposals.json"
    path.write_text(json.dumps({"clip": clip, "frames": per_frame}, indent=1))
    sheets(frames, per_frame, out, clip)
    return path


def accept(
    clip: str, proposals: Path, tracks: set[int], drop: set[tuple[int, int]], note: str
) -> Path:
    doc = json.loads(proposals.read_text())
    faces: dict[str, list[list[float]]] = {}
    for i, cands in enumerate(doc["frames"]):
        keep = [c["box"] for c in cands if c["track"] in tracks and (c["track"], i) not in drop]
        if keep:
            faces[str(i)] = keep
    frames = clip_frames(MEDIA / f"{clip}.gif")
    TRUTH.mkdir(exist_ok=True)
    path = TRUTH / f"{clip}.json"
    head = {
        "clip": f"{clip}.gif",
        "source": "Intel IoT devkit sample videos, CC-BY 4.0",
        "size": [int(frames[0].shape[1]), int(frames[0].shape[0])],
        "frames": len(frames),
        "box": "x0, y0, x1, y1 in GIF pixels; mean of the proposing detectors' boxes",
        "procedure": "python -m tools.bench.clip_truth propose; the contact sheets reviewed by "
        "eye; then accept (see the module's docstring and truth/README.md)",
        "accepted_tracks": sorted(tracks),
        "dropped": sorted(f"{t}:{i}" for t, i in drop),
        "note": note,
    }
    # One line per frame: the file stays readable and its diffs small.
    rows = ",\n".join(f'  "{i}": {json.dumps(boxes)}' for i, boxes in faces.items())
    text = json.dumps(head, indent=1)[:-2] + ',\n "faces": {\n' + rows + "\n }\n}\n"
    json.loads(text)
    path.write_text(text)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["propose", "accept"])
    parser.add_argument("clip", help="name of a GIF in ../shared/media, without .gif")
    parser.add_argument("--out", type=Path, default=REPORTS / "clip_truth")
    parser.add_argument("--tracks", default="", help="accepted track numbers, comma-separated")
    parser.add_argument("--drop", default="", help="track:frame pairs to leave out")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    if args.action == "propose":
        print(propose(args.clip, args.out))
        return 0
    tracks = {int(t) for t in args.tracks.split(",") if t}
    drop = {(int(p.split(":")[0]), int(p.split(":")[1])) for p in args.drop.split(",") if p}
    print(accept(args.clip, args.out / f"{args.clip}.proposals.json", tracks, drop, args.note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
