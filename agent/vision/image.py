"""Image decoding to RGB uint8 arrays (Pillow, imported lazily)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt

from agent.vision.errors import ImageDecodeError

MAX_IMAGE_PIXELS = 50_000_000


def decode_image(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode JPEG/PNG/... bytes to an ``H x W x 3`` RGB uint8 array (EXIF orientation applied)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ImageDecodeError(f"image of {w}x{h} pixels is larger than allowed")
            rgb = ImageOps.exif_transpose(im).convert("RGB")
            return np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageDecodeError(f"not a decodable image ({exc})") from exc


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    try:
        return decode_image(path.read_bytes())
    except ImageDecodeError as exc:
        raise ImageDecodeError(f"{path}: {exc}") from exc


def resize(img: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """Bilinear (antialiased when shrinking) resize with Pillow."""
    from PIL import Image

    out = Image.fromarray(img).resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(out, dtype=np.uint8)


def shrink(img: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """Area-average (box filter) resize with Pillow: for scaling a whole camera frame down, where
    it costs about 40 % less than :func:`resize` (1080p to 768x432 here) and still averages away
    the detail that would alias."""
    from PIL import Image

    out = Image.fromarray(img).resize((width, height), Image.Resampling.BOX)
    return np.asarray(out, dtype=np.uint8)
