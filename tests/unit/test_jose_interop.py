"""Interop: independent JOSE libraries (jwcrypto, joserfc) verify ours, and we verify theirs."""

from __future__ import annotations

import json
import warnings

import pytest
from joserfc import jws as rfc_jws
from joserfc.jwk import KeySet, OKPKey
from jwcrypto import jwk, jws
from jwcrypto.common import json_encode

from protocol.command import open_command, sign_command
from protocol.encoding import b64url_decode, b64url_encode
from protocol.event import TYP as EVENT_TYP
from protocol.event import sign_event, verify_event
from protocol.keys import key_id, private_pem, public_pem
from protocol.watchlist import TYP as WATCHLIST_TYP
from tests.conftest import NOW, Fleet
from tests.unit.test_command import command
from tests.unit.test_event import make_event
from tests.unit.test_watchlist_bundle import open_as_device

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


def test_jwcrypto_verifies_our_event(fleet: Fleet) -> None:
    event = make_event(fleet)
    token = sign_event(event, fleet.device_signing).decode()
    checked = jws.JWS()
    checked.deserialize(token, key=jwk.JWK.from_pem(public_pem(fleet.device_signing.public_key())))
    assert json.loads(checked.payload)["event_id"] == event.event_id
    assert checked.jose_header == {"alg": "EdDSA", "kid": "cam-01", "typ": EVENT_TYP}


def test_joserfc_verifies_our_event(fleet: Fleet) -> None:
    event = make_event(fleet)
    token = sign_event(event, fleet.device_signing).decode()
    key = OKPKey.import_key(public_pem(fleet.device_signing.public_key()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = rfc_jws.deserialize_compact(token, key, algorithms=["EdDSA"])
    assert json.loads(got.payload)["subject_ref"] == event.subject_ref


def test_we_verify_an_event_signed_by_jwcrypto(fleet: Fleet) -> None:
    event = make_event(fleet)
    theirs = jws.JWS(json.dumps(event.to_json(), indent=1).encode())
    theirs.add_signature(
        jwk.JWK.from_pem(private_pem(fleet.device_signing)),
        None,
        json_encode({"typ": EVENT_TYP, "alg": "EdDSA", "kid": "cam-01"}),
    )
    got = verify_event(
        theirs.serialize(compact=True).encode(), {"cam-01": fleet.device_signing.public_key()}
    )
    assert got == event


def test_we_verify_an_event_signed_by_joserfc(fleet: Fleet) -> None:
    event = make_event(fleet)
    key = OKPKey.import_key(private_pem(fleet.device_signing))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = rfc_jws.serialize_compact(
            {"alg": "EdDSA", "kid": "cam-01", "typ": EVENT_TYP},
            json.dumps(event.to_json()).encode(),
            key,
            algorithms=["EdDSA"],
        )
    assert verify_event(token.encode(), {"cam-01": fleet.device_signing.public_key()}) == event


def test_jwcrypto_verifies_each_watchlist_signature(fleet: Fleet) -> None:
    bundle = json.loads(fleet.bundle(signers=(0, 2)))
    assert len(bundle["signatures"]) == 2
    for signature, ops_index in zip(bundle["signatures"], (0, 2), strict=True):
        flattened = json.dumps({"payload": bundle["payload"], **signature})
        checked = jws.JWS()
        checked.deserialize(
            flattened, key=jwk.JWK.from_pem(public_pem(fleet.ops[ops_index].public_key()))
        )
        assert checked.jose_header["kid"] == key_id(fleet.ops[ops_index].public_key())
        assert checked.jose_header["typ"] == WATCHLIST_TYP
    # A key that did not sign verifies nothing.
    checked = jws.JWS()
    with pytest.raises(jws.InvalidJWSSignature):
        checked.deserialize(
            json.dumps(bundle), key=jwk.JWK.from_pem(public_pem(fleet.ops[1].public_key()))
        )


def test_joserfc_verifies_the_general_serialization(fleet: Fleet) -> None:
    bundle = json.loads(fleet.bundle(signers=(0, 1)))
    keys = KeySet(
        [
            OKPKey.import_key(
                public_pem(fleet.ops[i].public_key()), {"kid": key_id(fleet.ops[i].public_key())}
            )
            for i in (0, 1)
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = rfc_jws.deserialize_json(bundle, keys, algorithms=["EdDSA"])
    assert got.payload == b64url_decode(bundle["payload"], "payload")


def test_we_verify_a_watchlist_signed_by_jwcrypto(fleet: Fleet) -> None:
    # Payload (header + ciphertext) made by us; the two signatures made by jwcrypto.
    payload = b64url_decode(json.loads(fleet.bundle())["payload"], "payload")
    theirs = jws.JWS(payload)
    for index in (1, 2):
        theirs.add_signature(
            jwk.JWK.from_pem(private_pem(fleet.ops[index])),
            None,
            json_encode(
                {"alg": "EdDSA", "typ": WATCHLIST_TYP, "kid": key_id(fleet.ops[index].public_key())}
            ),
        )
    watchlist = open_as_device(fleet, theirs.serialize(compact=False).encode())
    assert watchlist.signed_by == {key_id(fleet.ops[i].public_key()) for i in (1, 2)}


def test_jwcrypto_verifies_our_command(fleet: Fleet) -> None:
    data = json.loads(sign_command(command(), fleet.signers(0, 1)))
    flattened = json.dumps({"payload": data["payload"], **data["signatures"][1]})
    checked = jws.JWS()
    checked.deserialize(flattened, key=jwk.JWK.from_pem(public_pem(fleet.ops[1].public_key())))
    assert json.loads(checked.payload)["command"] == "wipe"
    assert (
        open_command(
            json.dumps(data).encode(),
            trust=fleet.trust,
            device_id="cam-01",
            site="kx",
            last_counter=0,
            now=NOW,
        ).counter
        == 5
    )


def test_base64url_matches_rfc_7515_appendix_c() -> None:
    assert b64url_encode(bytes([3, 236, 255, 224, 193])) == "A-z_4ME"
