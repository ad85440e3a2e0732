"""Images for the alert view: the probe upscaled for the screen, the control room's references.

References are the control room's own (``lfr-alerts serve --references DIR``), never from a device:
``DIR/<subject_ref>.jpg|.jpeg|.png``, or ``DIR/<subject_ref>/`` holding the photos
``lfr-watchlist enrol --images`` was given for that subject (the first by name is shown), so
the enrolment folder itself can be the references folder.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from lfrkit.files import read_bounded
from protocol.errors import RejectedInput

log = logging.getLogger(__name__)
MAX_REFERENCE = 16 * 1024 * 1024  # a reference photo; larger files in the folder are refused
MAX_PROBE_PIXELS = 4096 * 4096  # checked from the header before decoding
_KINDS = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


class BadImage(RejectedInput):
    reason = "bad_probe_image"


def find_reference(folder: Path | None, subject_ref: str) -> Path | None:
    """The reference photo of ``subject_ref`` (a validated opaque reference), or None."""
    if folder is None:
        return None
    for suffix in _KINDS:
        if (folder / f"{subject_ref}{suffix}").is_file():
            return folder / f"{subject_ref}{suffix}"
    subject = folder / subject_ref
    if subject.is_dir():
        photos = sorted(p for p in subject.iterdir() if p.suffix.lower() in _KINDS)
        for photo in photos:
            if photo.is_file():
                return photo
    return None


def read_reference(path: Path) -> tuple[bytes, str]:
    """(bytes, content type) of a reference photo, bounded."""
    try:
        return read_bounded(path, MAX_REFERENCE, "reference"), _KINDS[path.suffix.lower()]
    except (OSError, RejectedInput) as exc:
        log.error("reference %s: %s", path.name, exc)
        raise


def upscale_jpeg(jpeg: bytes, size: int) -> bytes:
    """The probe crop scaled (Lanczos) so its longer side is ``size`` px, as a JPEG: a
    100 px crop shown at 320 px by the browser's own scaling is blocky."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            width, height = image.size
            if width * height > MAX_PROBE_PIXELS or min(width, height) < 1:
                raise BadImage(f"probe of {width}x{height} pixels")
            scale = size / max(width, height)
            target = (max(1, round(width * scale)), max(1, round(height * scale)))
            resized = image.convert("RGB").resize(target, Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadImage(f"probe is not a readable image ({exc})") from None
    out = io.BytesIO()
    resized.save(out, "JPEG", quality=92)
    return out.getvalue()
