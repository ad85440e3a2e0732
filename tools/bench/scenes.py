"""What the bench shows the pipeline: real faces on a synthetic concourse, and where the real
clips are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
LFW = SHARED / "datasets" / "lfw"
MEDIA = SHARED / "media"
U8 = npt.NDArray[np.uint8]


def faces(count: int) -> list[U8]:
    """Real faces: LFW when ../shared is present, else the demo's pinned registry pictures."""
    if LFW.is_dir():
        people = sorted(p for p in LFW.iterdir() if p.is_dir())[: count * 3 : 3]
        files = [sorted(p.iterdir())[0] for p in people]
    else:
        from tools.demo_assets import CACHE, fetch_assets

        files = sorted(fetch_assets(CACHE).values())
    files = [files[i % len(files)] for i in range(count)]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def concourse(width: int, height: int, people: list[U8], sizes: list[int]) -> U8:
    """A grey concourse with the given faces pasted at the given sizes, spread out."""
    ramp = np.linspace(60, 130, width, dtype=np.uint8)
    frame = np.repeat(np.stack([ramp, ramp, ramp + 8], axis=-1)[None], height, axis=0).copy()
    slots = max(len(people), 1)
    for i, (face, size) in enumerate(zip(people, sizes, strict=True)):
        # LFW crops are ~2.2x the face: scale so the face itself is about `size` pixels.
        side = int(size * 2.2)
        tile = np.asarray(Image.fromarray(face).resize((side, side)))
        x = int((i + 0.5) * width / slots - side / 2)
        y = int(height * (0.25 + 0.3 * (i % 2))) - side // 2
        x, y = max(0, min(x, width - side)), max(0, min(y, height - side))
        frame[y : y + side, x : x + side] = tile
    return frame
