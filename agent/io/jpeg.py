"""JPEG encoding of a matched face's crop (Pillow, imported lazily)."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt


def encode_jpeg(rgb: npt.NDArray[np.uint8], quality: int = 85) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=quality)
    return out.getvalue()
