"""The walk-through's scene (tools/bench/walkthrough.py): who walks, in which lane, when, and
where their face is in each frame (the ground truth the replay and the diagnosis score against).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from tools.bench.scenes import LFW, MEDIA
from tools.evaluation.lfw import DATASETS

PAIRS = DATASETS / "lfw_pairs_10fold.txt"

U8 = npt.NDArray[np.uint8]
WIDTH, HEIGHT = 1920, 1080
WALK_FRAMES = 25  # 2.5 s in view
GAP_FRAMES = 18  # 1.8 s between walkers of a lane: longer than a track's max_age (1.5 s)
FACE_FROM, FACE_TO = 28.0, 120.0  # face height, px, entering and leaving
MIN_FACE_PX = 40.0
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Person:
    name: str  # LFW identity
    ref: str | None  # watchlist reference when listed
    enrol: tuple[Path, ...]  # photos enrolled (listed people and padding)
    walk: tuple[Path, ...]  # the photos that walk past, in turn (never enrolled); () padding


@dataclass(frozen=True)
class Walker:
    person: Person
    lane: int
    first: int  # frame indices, inclusive
    images: tuple[U8, ...]  # the walking photos, shown in turn along the walk
    boxes: tuple[Box, ...]  # the face in each (BlazeFace on the photo)
    gain: float

    @property
    def last(self) -> int:
        return self.first + WALK_FRAMES - 1

    def photo(self, index: int) -> tuple[U8, Box]:
        """The photo shown at frame ``index``: the walk is cut into equal parts, one a photo."""
        part = (index - self.first) * len(self.images) // WALK_FRAMES
        part = min(max(part, 0), len(self.images) - 1)
        return self.images[part], self.boxes[part]

    def height(self, index: int) -> float:
        return FACE_FROM + (FACE_TO - FACE_FROM) * (index - self.first) / (WALK_FRAMES - 1)

    @property
    def sized(self) -> int:
        """The first frame in which the face is at least the minimum size."""
        return next(i for i in range(self.first, self.last + 1) if self.height(i) >= MIN_FACE_PX)


def held_out_folders(pairs: Path = PAIRS) -> list[Path]:
    """LFW identities of the 1:N calibration's held-out half (named in the pairs file,
    sha256(name) odd): the walk-through never shows a face the thresholds were fitted on."""
    from tools.evaluation.calibration_1n import half
    from tools.evaluation.lfw import pair_identities

    named = pair_identities(pairs)
    return [p for p in sorted(LFW.iterdir()) if p.is_dir() and p.name in named and half(p.name)]


def choose_people(
    listed: int,
    strangers: int,
    entries: int,
    seed: int,
    walk_photos: int = 1,
    *,
    listed_photos: int | None = None,
) -> list[Person]:
    """Listed people (2 enrolled photos + ``walk_photos`` others), strangers (up to
    ``walk_photos`` photos each, as many as they have) and padding, all distinct LFW identities
    of the calibration's held-out half. Listed people are drawn among those with at least
    ``listed_photos`` photos (default and least: 2 + ``walk_photos``), so that clips of
    different ``walk_photos`` can list the same people."""
    need = 2 + walk_photos if listed_photos is None else listed_photos
    if need < 2 + walk_photos:
        raise ValueError(f"listed people need at least {2 + walk_photos} photos, not {need}")
    rng = np.random.default_rng(seed)
    folders = held_out_folders()
    order = rng.permutation(len(folders))
    photos = {i: sorted(folders[i].glob("*.jpg")) for i in order}
    many = [i for i in order if len(photos[i]) >= need][:listed]
    rest = [i for i in order if i not in set(many)]
    padding_needed = max(0, entries - listed)
    if len(many) < listed or len(rest) < strangers + padding_needed:
        raise ValueError(
            f"the held-out half has {len(folders)} identities ({len(many)} with "
            f"{need}+ photos): too few for {listed} listed, {strangers} strangers "
            f"and {padding_needed} padding entries"
        )
    people = [
        Person(
            folders[i].name, f"WL-{n:05d}", tuple(photos[i][:2]), tuple(photos[i][2:][:walk_photos])
        )
        for n, i in enumerate(many)
    ]
    people += [
        Person(folders[i].name, None, (), tuple(photos[i][:walk_photos])) for i in rest[:strangers]
    ]
    padding = rest[strangers : strangers + padding_needed]
    people += [
        Person(folders[i].name, f"WL-{listed + n:05d}", (photos[i][0],), ())
        for n, i in enumerate(padding)
    ]
    return people


def background() -> U8:
    """A 1080p frame of the first CC-BY clip, blurred: a defocused concourse."""
    clip = sorted(MEDIA.glob("*.gif"))[0]
    with Image.open(clip) as gif:
        frame = gif.convert("RGB")
    scale = max(WIDTH / frame.width, HEIGHT / frame.height)
    big = frame.resize((round(frame.width * scale), round(frame.height * scale)))
    big = big.crop((0, 0, WIDTH, HEIGHT)).filter(ImageFilter.GaussianBlur(12))
    return np.asarray(big, dtype=np.uint8)


def schedule(people: list[Person], lanes: int, seed: int) -> list[Walker]:
    """Walkers in ``lanes`` lanes at once, in a seeded order; faces found with BlazeFace."""
    from agent.vision.detector import FaceDetector
    from agent.vision.manifest import load_manifest

    detector = FaceDetector.from_manifest(load_manifest(), "blazeface_short_float32.tflite")
    rng = np.random.default_rng(seed + 1)
    walking = [p for p in people if p.walk]
    walkers: list[Walker] = []
    next_free = [3 * lane for lane in range(lanes)]  # staggered starts
    for index in rng.permutation(len(walking)):
        person = walking[int(index)]
        images: list[U8] = []
        boxes: list[Box] = []
        for path in person.walk:
            image = np.asarray(Image.open(path).convert("RGB"))
            found = detector.detect(image)
            if found:  # else BlazeFace finds no face on the photo: it cannot be placed
                images.append(image)
                boxes.append(max(found, key=lambda d: d.width * d.height).box)
        if not images:
            continue
        lane = int(np.argmin(next_free))
        gain = float(rng.uniform(0.75, 1.15))
        walkers.append(Walker(person, lane, next_free[lane], tuple(images), tuple(boxes), gain))
        next_free[lane] += WALK_FRAMES + GAP_FRAMES
    return walkers


@dataclass(frozen=True)
class Placement:
    """Where a walker's head tile goes in one frame, and how much it is scaled."""

    crop: tuple[int, int, int, int]  # the head in the walker's photo (x0, y0, x1, y1)
    at: tuple[int, int]  # the tile's top-left corner in the frame
    size: tuple[int, int]  # the tile's width and height in the frame
    scale: float


def placement(walker: Walker, index: int, lanes: int) -> tuple[Placement, Box]:
    """The walker's head at this frame (moving right along its lane, the face growing), and
    its face box in frame pixels."""
    image, (x0, y0, x1, y1) = walker.photo(index)
    h = y1 - y0
    cx0, cy0 = max(0, int(x0 - 0.5 * h)), max(0, int(y0 - 0.6 * h))
    cx1 = min(image.shape[1], int(x1 + 0.5 * h))
    cy1 = min(image.shape[0], int(y1 + 0.5 * h))
    s = walker.height(index) / h
    w_out, h_out = max(2, round((cx1 - cx0) * s)), max(2, round((cy1 - cy0) * s))
    step = (WIDTH - 400) / WALK_FRAMES
    px = int(100 + step * (index - walker.first))
    lane_height = (HEIGHT - 200) // lanes
    py = int(60 + lane_height * walker.lane + (lane_height - h_out) / 2)
    face = (
        px + (x0 - cx0) * s,
        py + (y0 - cy0) * s,
        px + (x1 - cx0) * s,
        py + (y1 - cy0) * s,
    )
    return Placement((cx0, cy0, cx1, cy1), (px, py), (w_out, h_out), s), face


def paste(frame: U8, walker: Walker, index: int, lanes: int) -> None:
    """The walker's head at this frame, blended into ``frame`` with a soft elliptic edge."""
    place, _ = placement(walker, index, lanes)
    cx0, cy0, cx1, cy1 = place.crop
    w_out, h_out = place.size
    px, py = place.at
    image, _ = walker.photo(index)
    tile = Image.fromarray(image[cy0:cy1, cx0:cx1]).resize((w_out, h_out), Image.Resampling.LANCZOS)
    pix = np.asarray(tile).astype(np.float32) * walker.gain
    yy, xx = np.mgrid[0:h_out, 0:w_out]
    r = ((xx - w_out / 2) / (w_out / 2)) ** 2 + ((yy - h_out / 2) / (h_out / 2)) ** 2
    alpha = np.clip((1.0 - r) / 0.35, 0.0, 1.0)[..., None]
    region = frame[py : py + h_out, px : px + w_out].astype(np.float32)
    frame[py : py + h_out, px : px + w_out] = np.clip(
        alpha * pix + (1 - alpha) * region, 0, 255
    ).astype(np.uint8)
