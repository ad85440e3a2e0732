"""The baseline measured in the same run: OpenCV's frontal-face Haar cascade (detection only)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from tools.bench.scenes import U8
from tools.bench.timing import Timing, timed


def haar_cascade() -> Any | None:
    """OpenCV's frontal-face Haar cascade (the baseline), or None without OpenCV."""
    try:
        import cv2
    except ImportError:
        return None
    cascades = Path(cv2.__file__).parent / "data"
    return cv2.CascadeClassifier(str(cascades / "haarcascade_frontalface_default.xml"))


def haar_detect(cascade: Any, frame: U8) -> int:
    """Faces the baseline finds in one RGB frame (grey conversion included, as a user would)."""
    import cv2

    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return len(cascade.detectMultiScale(grey, 1.1, 5, minSize=(30, 30)))


def haar_baseline(frame: U8, runs: int) -> Timing | None:
    cascade = haar_cascade()
    if cascade is None:
        return None
    return timed("baseline: OpenCV Haar detect (720p)", runs, partial(haar_detect, cascade, frame))
