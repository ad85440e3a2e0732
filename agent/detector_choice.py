"""Which face detector a node runs: ``[vision] detector`` = ``auto``, ``blazeface`` or ``yunet``.

``auto`` (the default) decides by the frame height, at the frame: YuNet for 720 rows or more (a
concourse camera, faces of 30-120 px, where BlazeFace short-range is blind: issue 15's bench),
BlazeFace below (a door or desk camera, a close-up clip). It is decided on the frames
themselves, not on ``camera.width``/``height``, because a clip's, a stream's or a V4L2 camera's
size is only known once it delivers; a camera's frame size does not change, so in practice the
choice is made once, at the first frame, and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from agent.pipeline import Detection, Detector

log = logging.getLogger(__name__)
U8 = npt.NDArray[np.uint8]

AUTO = "auto"
SETTINGS = (AUTO, "blazeface", "yunet")
AUTO_YUNET_MIN_HEIGHT = 720  # frame rows from which ``auto`` picks YuNet


def resolve(setting: str, height: int) -> str:
    """The detector ``setting`` means for frames of ``height`` rows."""
    if setting != AUTO:
        return setting
    return "yunet" if height >= AUTO_YUNET_MIN_HEIGHT else "blazeface"


class ChosenDetector:
    """Runs the detector ``setting`` names (with ``auto``: the one :func:`resolve` picks for
    each frame's height). ``in_use`` is the one that ran last (None before the first frame)."""

    def __init__(self, setting: str, detectors: Mapping[str, Detector]) -> None:
        needed = {"blazeface", "yunet"} if setting == AUTO else {setting}
        missing = needed - detectors.keys()
        if missing:
            raise ValueError(f"detector {setting!r} needs {sorted(missing)}")
        self.setting = setting
        self._detectors = dict(detectors)
        self.in_use: str | None = None if setting == AUTO else setting
        self._announced: set[str] = set()

    def detect(self, frame: U8, tiles: int = 1) -> Sequence[Detection]:
        name = resolve(self.setting, frame.shape[0])
        if name not in self._announced:
            # Once per detector: a source whose frame size keeps changing must not flood the log.
            log.info(
                "detector: %s for %dx%d frames (vision.detector = %s)",
                name,
                frame.shape[1],
                frame.shape[0],
                self.setting,
            )
            self._announced.add(name)
        self.in_use = name
        # tiles is BlazeFace's small-face mode; YuNet scales from min_face_px instead.
        return self._detectors[name].detect(frame, tiles=tiles if name == "blazeface" else 1)

    @property
    def detectors(self) -> Mapping[str, Detector]:
        """The loaded detectors by name (what ``setting`` may choose among)."""
        return MappingProxyType(self._detectors)

    def describe(self) -> str:
        """For the status: the detector in use, or the setting before the first frame."""
        return self.in_use or self.setting
