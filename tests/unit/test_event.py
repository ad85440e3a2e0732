"""Match events: signed compact JWS, probe crop sealed to the control room."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol import errors, hpke
from protocol.encoding import b64url_decode, b64url_encode, canonical_json
from protocol.event import (
    TYP,
    MatchEvent,
    new_event_id,
    open_probe,
    seal_probe,
    sign_event,
    verify_event,
)
from protocol.jws import sign_compact
from protocol.limits import Limits
from tests.conftest import EMBEDDER, NOW, Fleet

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"


def make_event(fleet: Fleet, device_id: str = "cam-01", **changes: object) -> MatchEvent:
    event_id = new_event_id()
    event = MatchEvent(
        event_id=event_id,
        device_id=device_id,
        site="kx",
        deployment_id="kx-2026-11-28",
        watchlist_version=3,
        subject_ref="WL-0001",
        category="wanted",
        score=0.71,
        threshold=0.6,
        margin=0.22,
        observed_at=NOW + timedelta(milliseconds=250),
        track_id=17,
        embedder_sha256=EMBEDDER,
        probe_suite=hpke.DEFAULT_SUITE,
        probe=seal_probe(
            JPEG, fleet.adjudication.public_key(), event_id=event_id, device_id=device_id
        ),
    )
    return replace(event, **changes)  # type: ignore[arg-type]


def keys(fleet: Fleet) -> dict[str, ed25519.Ed25519PublicKey]:
    return {"cam-01": fleet.device_signing.public_key()}


def test_round_trip_and_probe(fleet: Fleet) -> None:
    event = make_event(fleet)
    token = sign_event(event, fleet.device_signing)
    assert token.count(b".") == 2
    got = verify_event(token, keys(fleet))
    assert got == event
    assert got.observed_at == NOW + timedelta(milliseconds=250)
    assert open_probe(got, fleet.adjudication) == JPEG


def test_header_is_exactly_what_design_says(fleet: Fleet) -> None:
    token = sign_event(make_event(fleet), fleet.device_signing)
    header = json.loads(b64url_decode(token.split(b".")[0], "h"))
    assert header == {"alg": "EdDSA", "kid": "cam-01", "typ": "lfr-event+jws"}
    claims = json.loads(b64url_decode(token.split(b".")[1], "p"))
    for name in (
        "event_id",
        "device_id",
        "site",
        "deployment_id",
        "watchlist_version",
        "subject_ref",
        "score",
        "threshold",
        "observed_at",
        "track_id",
        "embedder_sha256",
        "probe",
    ):
        assert name in claims


def test_probe_is_unreadable_without_the_adjudication_key(fleet: Fleet) -> None:
    event = verify_event(sign_event(make_event(fleet), fleet.device_signing), keys(fleet))
    assert JPEG not in b64url_decode(b64url_encode(event.probe), "p")
    with pytest.raises(errors.DecryptionFailed):
        open_probe(event, hpke.generate_key(hpke.DEFAULT_SUITE))


def test_probe_cannot_be_moved_to_another_event(fleet: Fleet) -> None:
    first, second = make_event(fleet), make_event(fleet)
    moved = replace(second, probe=first.probe)
    with pytest.raises(errors.DecryptionFailed):
        open_probe(moved, fleet.adjudication)


def test_unknown_device_is_refused(fleet: Fleet) -> None:
    token = sign_event(make_event(fleet), fleet.device_signing)
    with pytest.raises(errors.UnknownSigner):
        verify_event(token, {})


def test_device_cannot_sign_for_another(fleet: Fleet) -> None:
    # cam-01's key, cam-02's claims: refused whichever key the verifier looks up.
    event = make_event(fleet, device_id="cam-02")
    token = sign_compact(canonical_json(event.to_json()), fleet.device_signing, "cam-01", TYP)
    with pytest.raises(errors.BadSignature, match="differs from signer"):
        verify_event(token, keys(fleet))
    wrong_key = sign_event(event, fleet.device_signing)
    with pytest.raises(errors.BadSignature):
        verify_event(wrong_key, {"cam-02": ed25519.Ed25519PrivateKey.generate().public_key()})


def test_tampered_claims_fail_signature(fleet: Fleet) -> None:
    token = sign_event(make_event(fleet), fleet.device_signing)
    header, payload, sig = token.split(b".")
    claims = json.loads(b64url_decode(payload, "p"))
    claims["score"] = 0.99
    forged = b".".join([header, b64url_encode(canonical_json(claims)).encode(), sig])
    with pytest.raises(errors.BadSignature):
        verify_event(forged, keys(fleet))


def test_alg_none_and_other_algorithms_are_refused(fleet: Fleet) -> None:
    token = sign_event(make_event(fleet), fleet.device_signing)
    _, payload, sig = token.split(b".")
    for header in (
        {"alg": "none", "kid": "cam-01", "typ": TYP},
        {"alg": "HS256", "kid": "cam-01", "typ": TYP},
        {"alg": "EdDSA", "kid": "cam-01", "typ": "JWT"},
        {"alg": "EdDSA", "kid": "cam-01", "typ": TYP, "crit": ["b64"]},
    ):
        forged = b".".join([b64url_encode(canonical_json(header)).encode(), payload, sig])
        with pytest.raises((errors.UnsupportedAlgorithm, errors.BadEncoding)):
            verify_event(forged, keys(fleet))


def test_oversize_event_is_refused(fleet: Fleet) -> None:
    token = sign_event(make_event(fleet), fleet.device_signing)
    with pytest.raises(errors.Oversize):
        verify_event(token, keys(fleet), Limits(event_bytes=len(token) - 1))


def test_flipped_byte_anywhere_is_refused(fleet: Fleet) -> None:
    event = make_event(fleet, probe=b"\x00" * 64)
    token = sign_event(event, fleet.device_signing)
    for index in range(len(token)):
        mutated = bytearray(token)
        mutated[index] ^= 0x01
        with pytest.raises(errors.RejectedInput):
            verify_event(bytes(mutated), keys(fleet))


def test_sign_refuses_an_event_a_consumer_would_refuse(fleet: Fleet) -> None:
    with pytest.raises(errors.BadEncoding):
        sign_event(make_event(fleet, subject_ref="John Smith"), fleet.device_signing)
