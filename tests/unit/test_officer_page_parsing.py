"""The officers' page's request parsing: any header or form is a value or a BadRequest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.console.http import (
    MAX_BODY,
    BadRequest,
    content_length,
    host_name,
    parse_form,
    same_token,
    text_field,
)


@given(st.lists(st.text(max_size=12), max_size=3))
def test_content_length_is_one_small_decimal_or_refused(values: list[str]) -> None:
    try:
        length = content_length(values)
    except BadRequest as exc:
        assert exc.status in (400, 413)
    else:
        assert len(values) == 1 and values[0].isascii() and values[0].isdigit()
        assert 0 <= length <= MAX_BODY


def test_content_length_cases() -> None:
    assert content_length(["0"]) == 0 and content_length(["4096"]) == 4096
    for values, status in (
        (None, 400),
        ([], 400),
        (["-1"], 400),
        (["+5"], 400),
        ([" 5"], 400),
        (["٣"], 400),  # a non-ASCII digit
        (["1", "1"], 400),
        (["4097"], 413),
        (["99999999999999999999"], 400),
    ):
        with pytest.raises(BadRequest) as refused:
            content_length(values)
        assert refused.value.status == status, values


@given(st.binary(max_size=200))
def test_any_form_body_parses_or_is_refused(body: bytes) -> None:
    try:
        form = parse_form(body)
    except BadRequest as exc:
        assert exc.status == 400
    else:
        assert len(form) <= 8
        for value in form.values():
            assert isinstance(same_token(value, "token"), bool)


def test_forms_are_ascii_with_each_field_once() -> None:
    assert parse_form(b"csrf=%C3%A9&outcome=confirmed") == {"csrf": "é", "outcome": "confirmed"}
    assert parse_form(b"csrf=%FF")["csrf"] == "\udcff"  # kept, and refused as a token later
    for body in (b"csrf=\xc3\xa9", b"a=1&a=2", b"&".join(b"f%d=1" % i for i in range(9))):
        with pytest.raises(BadRequest):
            parse_form(body)


@given(st.text(max_size=60), st.text(max_size=60))
def test_same_token_never_raises(given_value: str, expected: str) -> None:
    assert same_token(given_value, expected) == (given_value == expected)


def test_host_names() -> None:
    assert host_name("Alerts.Example:8443") == "alerts.example"
    assert host_name("[::1]:8443") == "::1" and host_name("127.0.0.1") == "127.0.0.1"
    assert host_name("evil.example:x") == "evil.example:x"


@given(st.dictionaries(st.sampled_from(["note", "x"]), st.text(max_size=600), max_size=2))
def test_a_note_is_clean_text_or_refused(form: dict[str, str]) -> None:
    try:
        note = text_field(form, "note", 500)
    except BadRequest as exc:
        assert exc.status == 400 and "note" in str(exc)
    else:
        assert len(note) <= 500 and "\r" not in note
        assert all(ord(c) >= 32 or c in "\n\t" for c in note)


def test_a_note_from_a_form_keeps_its_lines_and_refuses_surrogates() -> None:
    form = parse_form(b"note=first+line%0D%0Asecond+%C3%A9&csrf=x")
    assert text_field(form, "note", 500) == "first line\nsecond \u00e9"
    with pytest.raises(BadRequest, match="not UTF-8"):
        text_field(parse_form(b"note=%FF"), "note", 500)
    with pytest.raises(BadRequest, match="control characters"):
        text_field({"note": "a\x1bb"}, "note", 500)
