"""Concourse composites: real backgrounds at 720p/1080p with LFW faces pasted at 16-256 px,
blurred, relit and partly occluded, each frame with its ground-truth boxes beside it.

Seeded and rebuilt at run time from ../shared (never committed). Backgrounds: frames of the
CC-BY clips (Intel IoT devkit sample videos) scaled up, and CC0/public-domain scene photos
from the pinned scikit-image wheel. The clips show real people: where a clip frame has
ground truth (``tools/bench/truth/``) its faces become *ignore* regions (a detection there is
neither a hit nor a false detection, as in WIDER FACE); clip frames without ground truth are
not used.

Ground-truth box of a pasted face: the box BlazeFace short-range draws on the 250x250 LFW
photo (the central face; photos where that face is not clearly central are skipped), scaled
with the paste. Its height is the face size of the size bins. Detectors draw other extents
(Haar's square is larger, HOG's smaller), so :func:`tools.bench.detection.matches` matches
on box centres and relative size, not on a strict IoU.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from agent.pipeline import Detector
from tools.bench.scenes import LFW, MEDIA, U8

TRUTH = Path(__file__).resolve().parent / "truth"
Box = tuple[float, float, float, float]
SIZE_BINS = ((16, 24), (24, 32), (32, 48), (48, 64), (64, 96), (96, 128), (128, 256))
# Scene photos in scikit-image 0.24.0's wheel (licences in skimage/data/_fetchers.py):
# rocket public domain (SpaceX), brick/grass/gravel CC0 (CC0Textures), coffee CC0.
SCENES = ("rocket.jpg", "brick.png", "grass.png", "gravel.png", "coffee.png")


@dataclass(frozen=True)
class Face:
    box: Box  # ground truth, frame pixels
    blurred: bool
    gain: float
    occluded: bool

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass
class Composite:
    image: U8
    faces: list[Face]
    ignore: list[Box] = field(default_factory=list)
    background: str = ""


@dataclass(frozen=True)
class Source:
    """An LFW photo with its face box (BlazeFace short-range on the photo)."""

    image: U8
    box: Box


def truth(clip: str) -> dict[int, list[Box]] | None:
    """The committed ground truth of a clip (frame index -> face boxes), or None."""
    path = TRUTH / f"{clip}.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    return {int(k): [(b[0], b[1], b[2], b[3]) for b in v] for k, v in doc["faces"].items()}


def clip_frames(path: Path) -> list[U8]:
    with Image.open(path) as gif:
        out = []
        for i in range(getattr(gif, "n_frames", 1)):
            gif.seek(i)
            out.append(np.asarray(gif.convert("RGB")))
    return out


def scene_images() -> dict[str, U8]:
    """The CC0/public-domain scenes of the pinned scikit-image wheel (fetched once)."""
    from tools.demo_assets import ASSETS, CACHE, fetch_assets

    requirement, args, wheel, sha256, _ = next(a for a in ASSETS if "scikit" in a[0])
    members = {f"skimage/data/{n}": f"scene-{n}" for n in SCENES}
    files = fetch_assets(CACHE, [(requirement, args, wheel, sha256, members)])
    return {n: np.asarray(Image.open(files[f"scene-{n}"]).convert("RGB")) for n in SCENES}


def backgrounds() -> list[tuple[str, U8, list[Box]]]:
    """(name, image, ignore boxes in image pixels): scenes, then clip frames with truth."""
    out: list[tuple[str, U8, list[Box]]] = [(n, img, []) for n, img in scene_images().items()]
    for clip in sorted(MEDIA.glob("*.gif")) if MEDIA.is_dir() else []:
        known = truth(clip.stem)
        if known is None:
            continue
        frames = clip_frames(clip)
        for i in sorted(known)[:: max(1, len(known) // 6)]:
            out.append((f"{clip.stem}#{i}", frames[i], known[i]))
    return out


def cover(img: U8, width: int, height: int) -> tuple[U8, float, float, float]:
    """``img`` scaled to cover width x height and centre-cropped; with (scale, dx, dy) such
    that a point p of img lands at p * scale - (dx, dy)."""
    h, w = img.shape[:2]
    scale = max(width / w, height / h)
    nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    big = np.asarray(Image.fromarray(img).resize((nw, nh), Image.Resampling.BILINEAR))
    dx, dy = (nw - width) // 2, (nh - height) // 2
    return big[dy : dy + height, dx : dx + width].copy(), scale, float(dx), float(dy)


def head_tile(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The part of a ``width x height`` photo that :func:`paste` copies around face ``box``:
    the head and about half a face around it."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    return (
        max(0, int(x0 - 0.45 * h)),
        max(0, int(y0 - 0.5 * h)),
        min(width, int(x1 + 0.45 * h)),
        min(height, int(y1 + 0.45 * h)),
    )


def lfw_sources(count: int, seed: int) -> list[Source]:
    """``count`` LFW photos (distinct people, seeded) whose central face BlazeFace finds and
    whose pasted head tile shows no other face.

    About one LFW photo in ten has a second person (a shoulder, half a face, a face in the
    crowd) beside the central one; pasted, that face would have no truth box and any detector
    finding it would be charged a false detection. BlazeFace short-range misses most of them
    (they are partial or small), so the tile is also searched by BlazeFace full-range and by
    YuNet (as decoded, no second look) on the photo scaled 2x (faces down to ~12 px), and a
    photo is skipped when any of them finds a face other than the central one there. (The
    skipped photos were reviewed by eye: nearly all are real faces; in the few that are not, a
    detector fires on junk, which then costs no detector anything, as if the photo had not
    been drawn.)"""
    from agent.models import load_detector
    from agent.vision.manifest import load_manifest
    from agent.vision.yunet_detector import YuNetDetector

    short = load_detector("blazeface_short_float32.tflite")
    full = load_detector("blazeface_full_float32.tflite")
    # YuNet as decoded (OpenCV's), without the second look: a partial face at the photo's edge
    # fails the look there (the crop is black beyond the edge) yet is a face once pasted.
    yunet = YuNetDetector.from_manifest(load_manifest(), "yunet_float32.tflite", second_look=None)
    people = sorted(p for p in LFW.iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    out: list[Source] = []
    for i in rng.permutation(len(people)):
        photo = np.asarray(Image.open(sorted(people[i].iterdir())[0]).convert("RGB"))
        dets = short.detect(photo)
        if len(dets) != 1:
            continue  # a second face would be pasted without a truth box
        x0, y0, x1, y1 = dets[0].box
        if abs((x0 + x1) / 2 - 125) > 25 or abs((y0 + y1) / 2 - 125) > 25 or y1 - y0 < 80:
            continue
        if _second_face(photo, dets[0].box, [full], [yunet]):
            continue
        out.append(Source(photo, dets[0].box))
        if len(out) == count:
            break
    return out


def _second_face(photo: U8, box: Box, at_1x: list[Detector], at_2x: list[Detector]) -> bool:
    """Whether a detector finds, inside the head tile of ``box``, a face whose centre lies
    outside ``box``; ``at_2x`` run on the photo scaled 2x (their boxes scaled back)."""
    h, w = photo.shape[:2]
    x0, y0, x1, y1 = head_tile(box, w, h)
    tile = (float(x0), float(y0), float(x1), float(y1))
    big = np.asarray(Image.fromarray(photo).resize((2 * w, 2 * h), Image.Resampling.BILINEAR))
    found = [d.box for det in at_1x for d in det.detect(photo, 1)]
    found += [
        (b[0] / 2, b[1] / 2, b[2] / 2, b[3] / 2)
        for det in at_2x
        for b in (d.box for d in det.detect(big, 1))
    ]
    for b in found:
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        central = box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
        if not central and _overlaps(b, [tile]):
            return True
    return False


def _overlaps(box: Box, others: list[Box]) -> bool:
    return any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in others)


def paste(
    frame: U8,
    src: Source,
    height: float,
    at: tuple[float, float],
    rng: np.random.Generator,
    *,
    effects: bool = True,
) -> Face:
    """Paste the head of ``src`` with its face ``height`` px tall and the face box's top-left
    at ``at``; lighting change always, blur and occlusion at random (``effects=False``: none
    of them, the photo as it is, for a test that needs the face recognisable every frame)."""
    x0, y0, x1, y1 = src.box
    h = y1 - y0
    # The head and a little around it, faded out at the edges (no hard rectangle).
    cx0, cy0, cx1, cy1 = head_tile(src.box, src.image.shape[1], src.image.shape[0])
    s = height / h
    w_out, h_out = max(2, round((cx1 - cx0) * s)), max(2, round((cy1 - cy0) * s))
    tile = Image.fromarray(src.image[cy0:cy1, cx0:cx1]).resize(
        (w_out, h_out), Image.Resampling.LANCZOS
    )
    blurred = effects and bool(rng.random() < 0.3)
    if blurred:
        tile = tile.filter(
            ImageFilter.GaussianBlur(float(rng.uniform(0.4, 1.0)) * (height / 24) ** 0.5)
        )
    gain = float(rng.uniform(0.55, 1.35)) if effects else 1.0
    pix = np.asarray(tile).astype(np.float32) * gain
    yy, xx = np.mgrid[0:h_out, 0:w_out]
    r = ((xx - w_out / 2) / (w_out / 2)) ** 2 + ((yy - h_out / 2) / (h_out / 2)) ** 2
    alpha = np.clip((1.0 - r) / 0.35, 0.0, 1.0)[..., None]
    px, py = int(at[0] - (x0 - cx0) * s), int(at[1] - (y0 - cy0) * s)
    region = frame[py : py + h_out, px : px + w_out].astype(np.float32)
    frame[py : py + h_out, px : px + w_out] = np.clip(
        alpha * pix + (1 - alpha) * region, 0, 255
    ).astype(np.uint8)
    box = (float(at[0]), float(at[1]), float(at[0] + (x1 - x0) * s), float(at[1] + height))
    occluded = effects and bool(rng.random() < 0.25)
    if occluded:
        # A scarf (lower part) or a passer-by / pillar (one side): 20-40 % of the face box.
        bw, bh = box[2] - box[0], box[3] - box[1]
        part = float(rng.uniform(0.2, 0.4))
        shade = rng.integers(20, 90, size=3)
        side = int(rng.integers(3))
        if side == 0:
            ox0, oy0, ox1, oy1 = box[0] - 2, box[3] - part * bh, box[2] + 2, box[3] + 2
        elif side == 1:
            ox0, oy0, ox1, oy1 = box[0] - 2, box[1] - 2, box[0] + part * bw, box[3] + 2
        else:
            ox0, oy0, ox1, oy1 = box[2] - part * bw, box[1] - 2, box[2] + 2, box[3] + 2
        frame[max(0, int(oy0)) : int(oy1), max(0, int(ox0)) : int(ox1)] = shade
    return Face(box, blurred, gain, occluded)


def composites(
    width: int, height: int, frames: int, per_frame: int, seed: int
) -> Iterator[Composite]:
    """``frames`` seeded composites of ``per_frame`` faces each, sizes drawn evenly over
    :data:`SIZE_BINS` (then uniformly inside the bin)."""
    rng = np.random.default_rng(seed)
    bgs = backgrounds()
    sources = lfw_sources(min(frames * per_frame, 400), seed)
    k = 0
    for n in range(frames):
        name, bg, ignore = bgs[n % len(bgs)]
        image, scale, dx, dy = cover(bg, width, height)
        if rng.random() < 0.5:
            image = image[:, ::-1].copy()
            ignore = [(bg.shape[1] - b[2], b[1], bg.shape[1] - b[0], b[3]) for b in ignore]
        placed = [
            (b[0] * scale - dx, b[1] * scale - dy, b[2] * scale - dx, b[3] * scale - dy)
            for b in ignore
        ]
        shown = list(placed)
        faces: list[Face] = []
        for _ in range(per_frame):
            lo, hi = SIZE_BINS[int(rng.integers(len(SIZE_BINS)))]
            size = float(rng.uniform(lo, hi))
            src = sources[k % len(sources)]
            k += 1
            bx0, by0, bx1, by1 = src.box
            aspect = (bx1 - bx0) / (by1 - by0)
            # The pasted head reaches about half a face beyond the box on every side.
            margin = 0.6 * size
            for _try in range(60):
                x = float(rng.uniform(margin, width - margin - aspect * size))
                y = float(rng.uniform(margin, height - margin - size))
                head = (x - margin, y - margin, x + aspect * size + margin, y + size + margin)
                if x > margin and y > margin and not _overlaps(head, shown):
                    shown.append(head)
                    faces.append(paste(image, src, size, (x, y), rng))
                    break
        yield Composite(image, faces, placed, name)
