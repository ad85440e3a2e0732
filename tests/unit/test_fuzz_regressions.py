"""Inputs the fuzzing campaign (tools/fuzz) found crashing a parser.

Each raised an exception outside :class:`protocol.errors.RejectedInput`, which the agent and
the listener do not catch: one such bundle or event stopped the process that received it.
"""

from __future__ import annotations

import pytest

from protocol import errors, hpke
from protocol.encoding import Fields, b64url_encode, canonical_json
from protocol.entries import decode_sealed_plaintext, parse_entries_file
from protocol.event import TYP as EVENT_TYP
from protocol.event import parse_stored_event, verify_event
from protocol.jws import sign_compact, sign_general
from protocol.watchlist import POLICY, MatchThreshold, WatchlistHeader
from protocol.watchlist import TYP as WATCHLIST_TYP
from tests.conftest import EMBEDDER, NOW, Fleet
from tests.unit.test_event import make_event
from tests.unit.test_watchlist_bundle import open_as_device

BEYOND_FLOAT = 10**400  # a JSON integer of 401 digits: Python parses it, float() cannot


def test_integer_beyond_float_range_is_a_bad_number() -> None:
    with pytest.raises(errors.BadEncoding, match="'score' must be in"):
        Fields({"score": BEYOND_FLOAT}, "event").number("score", -1.0, 1.0)
    with pytest.raises(errors.BadEncoding):
        Fields({"threshold": -BEYOND_FLOAT}, "entry").optional_number("threshold", -1.0, 1.0)


@pytest.mark.parametrize("claim", ["score", "threshold", "margin"])
def test_signed_event_with_a_score_beyond_float_range_is_refused(fleet: Fleet, claim: str) -> None:
    claims = {**make_event(fleet).to_json(), claim: BEYOND_FLOAT}
    token = sign_compact(canonical_json(claims), fleet.device_signing, "cam-01", EVENT_TYP)
    with pytest.raises(errors.BadEncoding):
        verify_event(token, {"cam-01": fleet.device_signing.public_key()})
    with pytest.raises(errors.BadEncoding):
        parse_stored_event(token)


def test_entries_file_with_a_threshold_beyond_float_range_is_malformed() -> None:
    body = {
        "embedder_sha256": EMBEDDER,
        "dim": 2,
        "entries": [
            {
                "subject_ref": "WL-1",
                "category": "wanted",
                "threshold": BEYOND_FLOAT,
                "embeddings": [[0.6, 0.8]],
            }
        ],
    }
    with pytest.raises(errors.MalformedEntries):
        parse_entries_file(canonical_json(body))


def _int8(scales: bytes, dim: int = 8) -> bytes:
    entry = {
        "subject_ref": "WL-1",
        "category": "wanted",
        "threshold": None,
        "embeddings": b64url_encode(b"\x01" * dim),
        "scales": b64url_encode(scales),
    }
    return canonical_json({"dtype": "int8", "entries": [entry]})


@pytest.mark.parametrize("size", [1, 2, 3, 5, 6])
def test_int8_scales_that_are_not_whole_float32_values_are_malformed(size: int) -> None:
    with pytest.raises(errors.MalformedEntries, match="one float32 scale per row"):
        decode_sealed_plaintext(_int8(b"\x00\x00\x80\x3f\x00\x00\x80"[:size]), 8)


def test_int8_entries_with_one_good_scale_still_decode() -> None:
    (entry,) = decode_sealed_plaintext(_int8(b"\x00\x00\x80\x3f"), 8)
    assert entry.embeddings.shape == (1, 8)


def test_signed_and_sealed_bundle_with_bad_int8_scales_is_refused(fleet: Fleet) -> None:
    """The whole device-side check, behind two valid signatures and a ciphertext that opens."""
    header = WatchlistHeader(
        "cam-01", "kx", "kx-2026-11-28", 2, NOW, NOW.replace(hour=18), EMBEDDER, 8,
        hpke.DEFAULT_SUITE, MatchThreshold(0.6, POLICY),
    )  # fmt: skip
    sealed = hpke.seal(
        hpke.DEFAULT_SUITE,
        fleet.device_keys[hpke.DEFAULT_SUITE].public_key(),
        _int8(b"\x00\x00\x80\x3f\x00"),
        header.hpke_info(),
    )
    payload = canonical_json({**header.to_json(), "ciphertext": b64url_encode(sealed)})
    bundle = sign_general(payload, fleet.signers(0, 1), WATCHLIST_TYP)
    with pytest.raises(errors.MalformedEntries):
        open_as_device(fleet, bundle)


def test_a_repeated_subject_ref_is_not_repeated_in_the_refusal(fleet: Fleet) -> None:
    """The message is logged by the agent; the decrypted entries must not reach the log."""
    entry = {
        "subject_ref": "WL-SECRET-7",
        "category": "wanted",
        "threshold": None,
        "embeddings": b64url_encode(b"\x00\x3c" * 8),
    }
    body = canonical_json({"dtype": "float16", "entries": [entry, entry]})
    with pytest.raises(errors.MalformedEntries, match="twice") as refusal:
        decode_sealed_plaintext(body, 8)
    assert "WL-SECRET-7" not in str(refusal.value)


def test_times_with_non_ascii_digits_are_refused() -> None:
    from protocol.encoding import parse_time
    from protocol.errors import BadEncoding

    assert parse_time("2026-11-28T09:00:00Z", "t").year == 2026
    with pytest.raises(BadEncoding):
        parse_time("\uff12\uff10\uff12\uff16-11-28T09:00:00Z", "t")  # fullwidth digits
    with pytest.raises(BadEncoding):
        parse_time("2026-11-28T09:00:\u0660\u0660Z", "t")  # Arabic-Indic digits
