"""What every frame source shares: the frame, the two kinds of failure, the protocol, and
how camera passwords are kept out of logs and status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]

# rtsp://user:password@host and GStreamer's user-pw=... / password=...: never logged or reported.
_USERINFO = re.compile(r"(://[^\s:/@]+:)[^\s@]+@")
_SECRET_PROPERTY = re.compile(r"\b(user-pw|password|passwd)=(\"[^\"]*\"|'[^']*'|\S+)", re.I)


def mask_credentials(text: str) -> str:
    """``text`` with the passwords of camera URIs and pipelines replaced by ``***``."""
    return _SECRET_PROPERTY.sub(r"\1=***", _USERINFO.sub(r"\1***@", text))


class CameraError(Exception):
    """The camera failed (will be retried with back-off)."""


class SourceError(Exception):
    """The source cannot work as configured (bad URI, missing library): not retried."""


@dataclass(frozen=True)
class Frame:
    image: U8
    index: int
    duration: float  # seconds this frame stands for (pacing for files; 0 for live cameras)


class FrameSource(Protocol):
    finite: bool

    def open(self) -> None: ...

    def read(self) -> Frame | None:
        """The next frame; None when a finite source is exhausted."""
        ...

    def close(self) -> None: ...
