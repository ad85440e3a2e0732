"""The console's pure parts: match strength from the calibration, the instructions file, the
route table, the queue's wording."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.console import app
from central.console.instructions import MAX_FILE, parse_instructions
from central.console.queue import waiting_seconds, waiting_text
from central.console.strength import curve, judge, load_curves, log10_p
from lfrkit.console import UsageError

# The accurate profile's K=3 calibration rows for 100 and 1,000 entries (models/MANIFEST.json).
TABLE = {
    "100": {"1e-02": 0.7627, "1e-03": 0.7964, "1e-04": 0.8301},
    "1000": {"1e-02": 0.7964, "1e-03": 0.8301, "1e-04": 0.8638},
}


def test_strength_is_how_much_rarer_than_at_the_threshold() -> None:
    points = curve(TABLE)
    assert log10_p(points, 0.8301) == pytest.approx(-6.0)  # FPIR 1e-3 over 1,000 -> p 1e-6
    assert log10_p(points, 0.8638) == pytest.approx(-7.0)
    assert judge(0.8301, 0.8301, points).word == "weak"
    assert "no rarer than at the threshold" in judge(0.8301, 0.8301, points).text
    assert judge(0.85, 0.8301, points).word == "weak"
    assert judge(0.8640, 0.8301, points).word == "moderate"
    strong = judge(0.90, 0.8301, points)
    assert strong.word == "strong" and "times rarer than at the threshold" in strong.text
    assert "once in" in strong.text and "comparisons" in strong.text


def test_strength_without_a_calibration_says_it_is_by_margin() -> None:
    assert judge(0.71, 0.60, None).word == "strong"
    assert judge(0.66, 0.60, None).word == "moderate"
    weak = judge(0.61, 0.60, None)
    assert weak.word == "weak" and "no calibration" in weak.text


def test_the_shipped_profiles_have_curves() -> None:
    curves = load_curves()
    assert len(curves) >= 2
    for points in curves.values():
        assert all(b[0] >= a[0] and b[1] <= a[1] for a, b in pairwise(points))


def test_instructions_file() -> None:
    text = b'wanted = "Stop and confirm identity."\nmissing = """Engage gently."""\n'
    assert parse_instructions(text) == {
        "wanted": "Stop and confirm identity.",
        "missing": "Engage gently.",
    }
    for bad, words in (
        (b"wanted = 3\n", "non-empty string"),
        (b'"a b" = "x"\n', "not a category name"),
        (b"wanted = \n", "not UTF-8 TOML"),
        (b"\xff\xfe", "not UTF-8 TOML"),
        (b"x = '" + b"a" * MAX_FILE + b"'", "larger than"),
        (b'[wanted]\nx = "y"\n', "non-empty string"),
    ):
        with pytest.raises(UsageError, match=words):
            parse_instructions(bad, "i.toml")


@given(st.binary(max_size=300))
def test_instructions_parser_never_crashes(data: bytes) -> None:
    try:
        found = parse_instructions(data)
    except UsageError as exc:
        assert "\n" not in str(exc).strip()
    else:
        assert all(isinstance(v, str) and v for v in found.values())


def test_routes_match_only_valid_parameters() -> None:
    event = "0f8fad5b-d9cb-469f-a165-70867728950e"
    found = app.match("GET", ["alerts", event, "probe.jpg"])
    assert found is not None and found[1] == {"event": event}
    assert app.match("GET", ["alerts", "../etc", "probe.jpg"]) is None
    assert app.match("POST", ["alerts", event]) is None
    assert app.match("GET", ["static", "console.css"]) is not None
    assert app.match("GET", ["static", "..%2fweb.py"]) is None
    assert app.match("GET", ["references", ".hidden"]) is None
    with pytest.raises(ValueError, match="unknown parameter"):
        app.route("GET", "/x/{nope}", lambda request: None)  # type: ignore[arg-type,return-value]


def test_waiting_words() -> None:
    assert waiting_seconds("2026-11-28T14:00:00Z", 1795874400 + 65) == 65
    assert waiting_seconds("garbage", 10) == 0
    assert [waiting_text(s) for s in (5, 65, 7260)] == ["5 s", "1 min 05 s", "2 h 01 min"]
