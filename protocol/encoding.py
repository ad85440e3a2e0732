"""Strict building blocks for the wire formats: base64url, JSON, RFC 3339 times, typed fields.

Parsers here are for untrusted bytes: every failure is a :class:`BadEncoding`, never a
``ValueError`` or ``KeyError`` escaping to the caller.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from protocol.errors import BadEncoding, Oversize

_B64URL = re.compile(rb"^[A-Za-z0-9_-]*$")
# re.ASCII: \d would otherwise accept any Unicode digit (fullwidth, Arabic-Indic), unlike RFC 3339.
_RFC3339_UTC = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$", re.ASCII
)


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes, what: str) -> bytes:
    """Decode unpadded base64url; refuse padding, other alphabets and non-canonical forms."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    if not _B64URL.match(raw) or len(raw) % 4 == 1:
        raise BadEncoding(f"{what}: not unpadded base64url")
    try:
        out = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadEncoding(f"{what}: not unpadded base64url") from exc
    # Unused trailing bits must be zero, so each value has exactly one encoding (no malleability).
    if b64url_encode(out).encode("ascii") != raw:
        raise BadEncoding(f"{what}: non-canonical base64url")
    return out


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, ASCII only, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # Two parsers could pick different values for a repeated key: refuse the ambiguity.
            raise BadEncoding(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise BadEncoding(f"JSON constant {name} is not allowed")


# No wire format nests deeper than 5; a fixed bound does not depend on the caller's stack.
MAX_DEPTH = 16


def _depth_within(value: Any, limit: int) -> bool:
    """Whether ``value`` nests at most ``limit`` arrays/objects deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def parse_json(data: bytes, what: str, max_bytes: int) -> Any:
    """Parse UTF-8 JSON after checking its size; refuse duplicates, NaN and deep nesting."""
    if len(data) > max_bytes:
        raise Oversize(f"{what}: {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        if not _depth_within(value, MAX_DEPTH):
            raise BadEncoding(f"JSON nested deeper than {MAX_DEPTH}")
        return value
    except BadEncoding as exc:
        raise BadEncoding(f"{what}: {exc}") from None
    except RecursionError:
        raise BadEncoding(f"{what}: JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadEncoding(f"{what}: not valid UTF-8 JSON ({exc.__class__.__name__})") from None


def parse_json_object(data: bytes, what: str, max_bytes: int) -> dict[str, Any]:
    value = parse_json(data, what, max_bytes)
    if not isinstance(value, dict):
        raise BadEncoding(f"{what}: expected a JSON object")
    return value


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` and whole seconds (microseconds if present)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, what: str) -> datetime:
    match = _RFC3339_UTC.match(text)
    if not match:
        raise BadEncoding(f"{what}: not an RFC 3339 UTC time like 2026-01-31T12:00:00Z")
    year, month, day, hour, minute, second, frac = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((frac or "0").ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        raise BadEncoding(f"{what}: not a valid date/time") from None


def require_aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    return now.astimezone(UTC)


class Fields:
    """Typed, bounded access to a JSON object from outside; errors name the field."""

    def __init__(self, obj: Any, what: str, allowed: frozenset[str] | None = None) -> None:
        if not isinstance(obj, Mapping):
            raise BadEncoding(f"{what}: expected a JSON object")
        if allowed is not None:
            unknown = sorted(set(obj) - allowed)
            if unknown:
                raise BadEncoding(f"{what}: unknown field {unknown[0]!r}")
        self._obj = obj
        self._what = what

    def names(self) -> list[str]:
        return list(self._obj)

    def has(self, name: str) -> bool:
        return name in self._obj

    def is_null(self, name: str) -> bool:
        """Absent or JSON null."""
        return self._obj.get(name) is None

    def _get(self, name: str) -> Any:
        if name not in self._obj:
            raise BadEncoding(f"{self._what}: missing field {name!r}")
        return self._obj[name]

    def text(self, name: str, max_len: int = 256, min_len: int = 1) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise BadEncoding(f"{self._what}: field {name!r} must be a string")
        if not min_len <= len(value) <= max_len:
            raise BadEncoding(
                f"{self._what}: field {name!r} must be {min_len}..{max_len} characters long"
            )
        return value

    def integer(self, name: str, lo: int, hi: int) -> int:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadEncoding(f"{self._what}: field {name!r} must be an integer")
        if not lo <= value <= hi:
            raise BadEncoding(f"{self._what}: field {name!r} must be in {lo}..{hi}")
        return value

    def boolean(self, name: str) -> bool:
        value = self._get(name)
        if not isinstance(value, bool):
            raise BadEncoding(f"{self._what}: field {name!r} must be true or false")
        return value

    def number(self, name: str, lo: float, hi: float) -> float:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadEncoding(f"{self._what}: field {name!r} must be a number")
        try:
            number = float(value)
        except OverflowError:  # JSON integers have any number of digits; floats do not
            raise BadEncoding(f"{self._what}: field {name!r} must be in {lo}..{hi}") from None
        if not (math.isfinite(number) and lo <= number <= hi):
            raise BadEncoding(f"{self._what}: field {name!r} must be in {lo}..{hi}")
        return number

    def optional_number(self, name: str, lo: float, hi: float) -> float | None:
        if self._obj.get(name) is None:
            return None
        return self.number(name, lo, hi)

    def items(self, name: str, max_items: int, min_items: int = 0) -> list[Any]:
        value = self._get(name)
        if not isinstance(value, list):
            raise BadEncoding(f"{self._what}: field {name!r} must be a list")
        if len(value) > max_items:
            raise Oversize(
                f"{self._what}: field {name!r} has {len(value)} items, "
                f"more than the limit of {max_items}"
            )
        if len(value) < min_items:
            raise BadEncoding(f"{self._what}: field {name!r} needs at least {min_items} items")
        return value

    def sub(self, name: str, allowed: frozenset[str] | None = None) -> Fields:
        """The nested object ``name``, as :class:`Fields`."""
        return Fields(self._get(name), f"{self._what}: {name}", allowed)

    def b64(self, name: str, max_bytes: int) -> bytes:
        text = self.text(name, max_len=4 * ((max_bytes + 2) // 3), min_len=0)
        return b64url_decode(text, f"{self._what}: field {name!r}")

    def time(self, name: str) -> datetime:
        return parse_time(self.text(name, max_len=40), f"{self._what}: field {name!r}")
