"""The deployment's instructions per subject category (``lfr-alerts serve --instructions``).

A TOML file of ``category = "what an officer does"``, written by the deployment's command
team, e.g.::

    wanted = "Stop and confirm identity; arrest only on a confirmed match and a live warrant."
    missing = "Engage gently; call the welfare team on channel 4 before approaching."

Read once at start, bounded before parsing; anything else in the file is a one-line error.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from lfrkit.console import UsageError
from lfrkit.files import read_bounded
from protocol.errors import RejectedInput

MAX_FILE = 64 * 1024
MAX_TEXT = 2000
_CATEGORY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_instructions(data: bytes, source: str = "instructions") -> dict[str, str]:
    """category -> text; raises UsageError naming what is wrong."""
    if len(data) > MAX_FILE:
        raise UsageError(f"{source}: larger than {MAX_FILE} bytes")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{source}: not UTF-8 TOML ({exc})") from None
    found: dict[str, str] = {}
    for category, text in doc.items():
        if not _CATEGORY.match(category):
            raise UsageError(f"{source}: {category!r} is not a category name (A-Z a-z 0-9 _ -)")
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"{source}: {category} must be a non-empty string")
        if len(text) > MAX_TEXT:
            raise UsageError(f"{source}: {category} is longer than {MAX_TEXT} characters")
        found[category] = text.strip()
    return found


def load_instructions(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        data = read_bounded(path, MAX_FILE, "instructions")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    except RejectedInput as exc:
        raise UsageError(str(exc)) from None
    return parse_instructions(data, str(path))
