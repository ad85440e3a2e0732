"""Request parsing for the console: every header or form is a value or a :class:`BadRequest`.

Strict on purpose (issue 17 finding 6): one ASCII-digit Content-Length of at most
:data:`MAX_BODY`, no Transfer-Encoding, ASCII url-encoded forms with each field once, Host
names compared without their port, CSRF values compared in constant time whatever their bytes.
"""

from __future__ import annotations

import hmac
import re
from http import HTTPStatus
from urllib.parse import parse_qs

MAX_BODY = 4096
MAX_FIELDS = 8
EVENT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SUBJECT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_LENGTH = re.compile(r"^[0-9]{1,9}$")

# Security headers on every response: nothing cached, framed or sniffed; scripts and styles
# only from the page's own /static/ (no inline code, no CDN).
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class BadRequest(Exception):
    """The request itself is malformed (answered 400 or 413, connection closed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def host_name(header: str) -> str:
    """The name in a Host header without its port, lower-case (``[::1]:8443`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name, colon, port = header.rpartition(":")
    return name if colon and port.isdigit() else header


def same_token(given: str, expected: str) -> bool:
    """Constant-time comparison of any submitted value (non-ASCII too) with a token."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def parse_form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body: ASCII, at most 8 fields, each once."""
    try:
        text = body.decode("ascii")
        pairs = parse_qs(
            text,
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            encoding="utf-8",
            errors="surrogateescape",  # compared as bytes later, never a crash
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "the form is not ASCII url-encoded") from None
    if any(len(values) != 1 for values in pairs.values()):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "a form field was given more than once")
    return {name: values[0] for name, values in pairs.items()}


def text_field(form: dict[str, str], name: str, limit: int) -> str:
    """A free-text field (the officer's note): valid UTF-8, no control characters but
    newlines, at most ``limit`` characters."""
    value = form.get(name, "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"the {name} is not UTF-8") from None
    value = value.replace("\r\n", "\n").strip()
    if len(value) > limit:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"the {name} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"the {name} has control characters")
    return value


def content_length(values: list[str] | None) -> int:
    """Exactly one Content-Length of ASCII digits, at most :data:`MAX_BODY`."""
    if not values:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "Content-Length is required")
    if len(values) != 1 or not _LENGTH.match(values[0]):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "Content-Length must be one decimal number")
    length = int(values[0])
    if length > MAX_BODY:
        raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the form is too large")
    return length


def cookies(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        found.setdefault(name, value)  # the first of a name wins (the most specific path)
    return found


def path_parts(target: str) -> list[str]:
    """The path's non-empty segments (the query string is dropped)."""
    return [p for p in target.split("?", maxsplit=1)[0].split("/") if p]
