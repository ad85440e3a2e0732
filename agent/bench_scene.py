"""Synthetic camera frames for ``lfr-agent bench``: drawn faces on a grey concourse.

A node has no test photographs (nothing under ../shared, no LFW), so the bench draws its
faces: a head with hair, eyes, brows, nose and mouth, in a few skin tones, 9-14 % of the frame
height (65-100 px at 720p, 97-151 px at 1080p: a concourse camera's faces). YuNet finds every
one of them; BlazeFace short-range, made for faces filling a desk camera's frame, does not at
these sizes (the bench says so rather than hiding it). The faces sway a little from frame to
frame, so the tracker follows people the way it does live. Deterministic: the same frames on
every node.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]

# Flat drawn faces in darker tones than these are found unreliably (they lack the shading a
# photograph has); the bench times the pipeline, it does not measure detection across skin
# tones (models/README.md does that on real photographs).
SKIN = ((224, 172, 140), (198, 134, 96), (239, 198, 170), (170, 110, 75))
HAIR = ((50, 35, 25), (20, 20, 20), (120, 80, 40), (90, 90, 90))
FRAMES_PER_CYCLE = 12  # the sway repeats after this many frames
COLUMNS = 5
DARK = (40, 30, 20)  # pupils and brows: the detectors look for dark eyes first


def _layout(width: int, height: int, count: int) -> list[tuple[float, float, float]]:
    """(centre x, centre y, face height) of each face: up to five a row, rows spread down."""
    rows = max(1, math.ceil(count / COLUMNS))
    cols = min(count, COLUMNS)
    out = []
    for i in range(count):
        r, c = divmod(i, COLUMNS)
        h = height * (0.09 + 0.05 * ((i * 7) % 10) / 9)
        cx = (c + 0.5) * width / max(cols, 1)
        cy = height * (0.5 if rows == 1 else 0.28 + 0.44 * r / (rows - 1))
        out.append((cx, cy, h))
    return out


def _draw_face(draw: object, cx: float, cy: float, h: float, i: int) -> None:
    from PIL import ImageDraw

    assert isinstance(draw, ImageDraw.ImageDraw)
    w = h * 0.78
    skin, hair = SKIN[i % len(SKIN)], HAIR[i % len(HAIR)]
    draw.ellipse([cx - w * 0.56, cy - h * 0.62, cx + w * 0.56, cy + h * 0.2], fill=hair)
    draw.ellipse([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=skin)
    ey, ex = cy - h * 0.08, w * 0.2
    brow = max(1, int(h * 0.03))
    for s in (-1, 1):
        x = cx + s * ex
        draw.ellipse([x - w * 0.09, ey - h * 0.035, x + w * 0.09, ey + h * 0.035], fill=(250,) * 3)
        draw.ellipse([x - w * 0.045, ey - h * 0.035, x + w * 0.045, ey + h * 0.035], fill=DARK)
        draw.line([x - w * 0.12, ey - h * 0.09, x + w * 0.12, ey - h * 0.1], fill=DARK, width=brow)
    shade = tuple(int(v * 0.85) for v in skin)
    draw.polygon(
        [(cx, ey + h * 0.02), (cx - w * 0.08, cy + h * 0.15), (cx + w * 0.08, cy + h * 0.15)],
        fill=shade,
    )
    draw.chord(
        [cx - w * 0.2, cy + h * 0.18, cx + w * 0.2, cy + h * 0.32], 0, 180, fill=(150, 60, 60)
    )


def scene(width: int, height: int, faces: int, frame: int = 0) -> U8:
    """Frame number ``frame`` (RGB, ``height`` x ``width``) with ``faces`` drawn faces."""
    from PIL import Image, ImageDraw, ImageFilter

    ramp = np.linspace(70, 140, width, dtype=np.uint8)
    background = np.repeat(np.stack([ramp, ramp + 4, ramp + 10], axis=-1)[None], height, axis=0)
    img = Image.fromarray(np.ascontiguousarray(background))
    draw = ImageDraw.Draw(img)
    phase = 2 * math.pi * (frame % FRAMES_PER_CYCLE) / FRAMES_PER_CYCLE
    for i, (cx, cy, h) in enumerate(_layout(width, height, faces)):
        # A sway of a fifth of a face width: people standing, shifting their weight.
        dx = 0.15 * h * math.sin(phase + i)
        _draw_face(draw, cx + dx, cy, h, i)
    # A camera's optics: no perfectly hard edges.
    return np.asarray(img.filter(ImageFilter.GaussianBlur(1)))


def cycle(width: int, height: int, faces: int, frames: int = FRAMES_PER_CYCLE) -> list[U8]:
    """``frames`` frames of the sway, drawn once so the timed loop costs the pipeline only."""
    step = FRAMES_PER_CYCLE / max(frames, 1)
    return [scene(width, height, faces, round(t * step)) for t in range(frames)]
