from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from protocol import errors
from protocol.encoding import b64url_decode, format_time, parse_json, parse_time


@pytest.mark.parametrize("text", ["AA==", "A", "AB", "a+b/", "QQ=", " QQ", "QR"])
def test_base64url_refuses_padding_other_alphabets_and_noncanonical(text: str) -> None:
    with pytest.raises(errors.BadEncoding):
        b64url_decode(text, "x")


def test_json_refuses_duplicates_constants_and_deep_nesting() -> None:
    for data in (
        b'{"a":1,"a":2}',
        b'{"a":NaN}',
        b"[Infinity]",
        b"[" * 50_000 + b"]" * 50_000,
        b'{"a":"\xff"}',
    ):
        with pytest.raises(errors.BadEncoding):
            parse_json(data, "doc", 1 << 20)


def test_json_size_is_checked_first() -> None:
    with pytest.raises(errors.Oversize, match="11 bytes exceeds the limit of 10"):
        parse_json(b"not json!!!", "doc", 10)


def test_times_are_strict_rfc3339_utc() -> None:
    moment = datetime(2026, 11, 28, 9, 30, 5, 250000, tzinfo=UTC)
    assert format_time(moment) == "2026-11-28T09:30:05.250000Z"
    assert parse_time(format_time(moment), "t") == moment
    assert format_time(moment.astimezone(timezone(timedelta(hours=1)))) == format_time(moment)
    for bad in (
        "2026-11-28T09:30:05+01:00",
        "2026-11-28 09:30:05Z",
        "2026-02-30T00:00:00Z",
        "2026-11-28T09:30:05",
    ):
        with pytest.raises(errors.BadEncoding):
            parse_time(bad, "t")
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 1, 1))
