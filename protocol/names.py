"""Identifiers that end up in MQTT topics and certificate names: one safe alphabet."""

from __future__ import annotations

import re

from protocol.errors import BadEncoding

# Lowercase letters, digits and inner hyphens: never an MQTT wildcard (+ #), level separator
# (/), or anything a shell or ACL file would treat specially.
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise BadEncoding(
            f"{what} {value!r} must be 1-63 lowercase letters, digits or inner hyphens"
        )
    return value
