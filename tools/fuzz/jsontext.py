"""JSON text that canonical_json cannot write (duplicate members, ``1e400``, deep nesting,
lone surrogates), and the base64url helpers the mutators use."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from protocol.encoding import b64url_encode

# -- JSON that canonical_json cannot write ------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (``1e400``, ``NaN``, deep nesting, a lone surrogate)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """An object written with these members in this order, duplicates included."""

    items: tuple[tuple[str, Any], ...]


def dumps(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in value.items) + "}"
    if isinstance(value, dict):
        body = ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in sorted(value.items()))
        return "{" + body + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8


def b64(data: bytes) -> str:
    return b64url_encode(data)


def unb64(text: str | bytes) -> bytes:
    raw = text.encode("ascii") if isinstance(text, str) else text
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
