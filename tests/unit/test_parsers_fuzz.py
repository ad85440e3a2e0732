"""Property tests: whatever bytes arrive, every parser either succeeds or raises RejectedInput.

Random bytes mostly die in the JSON layer, so each format is also fuzzed *behind* valid
signatures: structurally plausible payloads with arbitrary values, properly signed, so the
field validation and the decryption paths see hostile input too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import errors, hpke
from protocol.command import TYP as COMMAND_TYP
from protocol.command import open_command
from protocol.encoding import (
    b64url_decode,
    b64url_encode,
    canonical_json,
    parse_json,
    parse_time,
)
from protocol.enrolment import parse_request
from protocol.entries import decode_sealed_plaintext, parse_entries_file
from protocol.event import TYP as EVENT_TYP
from protocol.event import open_probe, verify_event
from protocol.jws import sign_compact, sign_general
from protocol.keys import load_hpke_private, load_hpke_public, load_signing_public
from protocol.trust import parse_device_trust
from protocol.watchlist import TYP as WATCHLIST_TYP
from tests.conftest import EMBEDDER, NOW, Fleet
from tests.unit.test_event import make_event
from tests.unit.test_watchlist_bundle import open_as_device

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def only_rejections(parse: Callable[[], Any]) -> None:
    try:
        parse()
    except errors.RejectedInput as exc:
        assert exc.reason in errors.REASONS
        assert str(exc)  # every refusal says what was wrong


def plausible(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid objects with some fields replaced, removed or added."""
    keys = sorted(valid)
    return st.builds(
        lambda replaced, dropped, extra: {
            **{k: v for k, v in valid.items() if k not in dropped},
            **replaced,
            **extra,
        },
        st.dictionaries(st.sampled_from(keys), json_values, max_size=3),
        st.sets(st.sampled_from(keys), max_size=2),
        st.dictionaries(st.text(max_size=8), json_values, max_size=1),
    )


@FUZZ
@given(st.binary(max_size=2048))
def test_bytes_into_every_parser(fleet: Fleet, data: bytes) -> None:
    only_rejections(lambda: open_as_device(fleet, data))
    only_rejections(lambda: verify_event(data, {"cam-01": fleet.device_signing.public_key()}))
    only_rejections(
        lambda: open_command(
            data, trust=fleet.trust, device_id="cam-01", site="kx", last_counter=0, now=NOW
        )
    )
    only_rejections(lambda: parse_entries_file(data))
    only_rejections(lambda: decode_sealed_plaintext(data, 8))
    only_rejections(lambda: parse_request(data))
    only_rejections(lambda: parse_device_trust(data))
    only_rejections(lambda: parse_json(data, "x", 4096))
    only_rejections(lambda: load_signing_public(data))
    only_rejections(lambda: load_hpke_public(data))
    only_rejections(lambda: load_hpke_private(data))
    for suite in hpke.SUITES:
        key = fleet.device_keys[suite]
        only_rejections(partial(hpke.open_sealed, suite, key, data, b"", "x"))


@FUZZ
@given(st.text(max_size=64))
def test_text_into_text_parsers(text: str) -> None:
    only_rejections(lambda: b64url_decode(text, "x"))
    only_rejections(lambda: parse_time(text, "x"))


@FUZZ
@given(st.binary(max_size=64))
def test_base64url_round_trips(data: bytes) -> None:
    assert b64url_decode(b64url_encode(data), "x") == data


@FUZZ
@given(st.data())
def test_signed_watchlist_with_hostile_header(fleet: Fleet, data: st.DataObject) -> None:
    valid = json.loads(b64url_decode(json.loads(fleet.bundle())["payload"], "p"))
    payload = data.draw(plausible(valid))
    signed = sign_general(canonical_json(payload), fleet.signers(0, 1), WATCHLIST_TYP)
    only_rejections(lambda: open_as_device(fleet, signed))


@FUZZ
@given(st.data())
def test_hostile_entries_behind_valid_encryption(fleet: Fleet, data: st.DataObject) -> None:
    entry = {
        "subject_ref": "WL-1",
        "category": "wanted",
        "threshold": None,
        "embeddings": b64url_encode(b"\x00\x3c" * 8),
    }
    entry = data.draw(plausible(entry))
    body = data.draw(
        plausible(
            {"dtype": data.draw(st.sampled_from(["float16", "int8", "x"])), "entries": [entry]}
        )
    )
    only_rejections(lambda: decode_sealed_plaintext(canonical_json(body), 8))


@FUZZ
@given(st.data())
def test_hostile_entries_file(data: st.DataObject) -> None:
    entry = data.draw(
        plausible(
            {
                "subject_ref": "WL-1",
                "category": "wanted",
                "threshold": 0.5,
                "embeddings": [[0.1, 0.2, 0.3, 0.4]],
                "quality": [0.8],
            }
        )
    )
    body = data.draw(plausible({"embedder_sha256": EMBEDDER, "dim": 4, "entries": [entry]}))
    only_rejections(lambda: parse_entries_file(canonical_json(body)))


@FUZZ
@given(st.data())
def test_signed_event_with_hostile_claims(fleet: Fleet, data: st.DataObject) -> None:
    claims = data.draw(plausible(make_event(fleet).to_json()))
    token = sign_compact(canonical_json(claims), fleet.device_signing, "cam-01", EVENT_TYP)
    keys = {"cam-01": fleet.device_signing.public_key()}

    def verify_and_open() -> None:
        open_probe(verify_event(token, keys), fleet.adjudication)

    only_rejections(verify_and_open)


@FUZZ
@given(st.data())
def test_signed_command_with_hostile_fields(fleet: Fleet, data: st.DataObject) -> None:
    valid = {
        "format": "lfr-command/1",
        "device_id": "cam-01",
        "site": "kx",
        "command": "pause",
        "counter": 9,
        "issued_at": "2026-11-28T09:00:00Z",
        "expires_at": "2026-11-28T09:10:00Z",
    }
    signed = sign_general(
        canonical_json(data.draw(plausible(valid))), fleet.signers(0, 1), COMMAND_TYP
    )
    only_rejections(
        lambda: open_command(
            signed, trust=fleet.trust, device_id="cam-01", site="kx", last_counter=0, now=NOW
        )
    )
