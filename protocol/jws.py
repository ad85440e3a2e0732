"""JWS (RFC 7515) with EdDSA/Ed25519 (RFC 8037), in the two serializations we use.

- Compact (events): ``b64(header).b64(payload).b64(signature)``.
- General JSON (watchlists, commands): one payload, several signatures, each with its own
  protected header, so N ops keys can sign the same bytes (two-person rule).

Only protected headers are accepted, with exactly the members ``alg`` (must be ``EdDSA``),
``kid`` and ``typ``: anything else (``crit``, ``b64``, ``jku`` ...) is refused rather than
half-understood.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.encoding import (
    Fields,
    b64url_decode,
    b64url_encode,
    canonical_json,
    parse_json_object,
)
from protocol.errors import BadEncoding, InsufficientSignatures, Oversize, UnsupportedAlgorithm

ALG = "EdDSA"
_HEADER_FIELDS = frozenset({"alg", "kid", "typ"})
_MAX_HEADER_BYTES = 1024
_SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class Signature:
    kid: str
    signing_input: bytes
    signature: bytes


@dataclass(frozen=True)
class ParsedJws:
    """A structurally valid JWS whose signatures have not been checked yet."""

    payload: bytes
    signatures: tuple[Signature, ...]


def _header(kid: str, typ: str) -> str:
    return b64url_encode(canonical_json({"alg": ALG, "kid": kid, "typ": typ}))


def _sign(key: ed25519.Ed25519PrivateKey, protected: str, payload: str) -> str:
    return b64url_encode(key.sign(f"{protected}.{payload}".encode("ascii")))


def sign_compact(payload: bytes, key: ed25519.Ed25519PrivateKey, kid: str, typ: str) -> bytes:
    protected, body = _header(kid, typ), b64url_encode(payload)
    return f"{protected}.{body}.{_sign(key, protected, body)}".encode("ascii")


def sign_general(
    payload: bytes,
    signers: Sequence[tuple[ed25519.Ed25519PrivateKey, str]],
    typ: str,
    *,
    allow_unsigned: bool = False,
) -> bytes:
    """General JSON serialization, one signature per ``(key, kid)``.

    ``allow_unsigned``: no signer is fine (a draft that others sign later with
    :func:`add_signature`; a device refuses it until it reaches the threshold)."""
    if not signers and not allow_unsigned:
        raise ValueError("at least one signer is required")
    body = b64url_encode(payload)
    signatures = []
    for key, kid in signers:
        protected = _header(kid, typ)
        signatures.append({"protected": protected, "signature": _sign(key, protected, body)})
    return canonical_json({"payload": body, "signatures": signatures})


def _parse_header(protected: str, typ: str, what: str) -> str:
    if len(protected) > _MAX_HEADER_BYTES:
        raise Oversize(f"{what}: protected header longer than {_MAX_HEADER_BYTES} bytes")
    raw = b64url_decode(protected, f"{what}: protected header")
    fields = Fields(
        parse_json_object(raw, f"{what}: protected header", _MAX_HEADER_BYTES),
        f"{what}: protected header",
        allowed=_HEADER_FIELDS,
    )
    alg = fields.text("alg", max_len=16)
    if alg != ALG:
        raise UnsupportedAlgorithm(f"{what}: alg {alg!r} is not accepted (only {ALG})")
    got_typ = fields.text("typ", max_len=64)
    if got_typ != typ:
        raise UnsupportedAlgorithm(f"{what}: typ {got_typ!r} where {typ!r} was expected")
    return fields.text("kid", max_len=128)


def _signature_bytes(text: str, what: str) -> bytes:
    sig = b64url_decode(text, f"{what}: signature")
    if len(sig) != _SIGNATURE_BYTES:
        raise BadEncoding(f"{what}: an Ed25519 signature is {_SIGNATURE_BYTES} bytes")
    return sig


def parse_compact(token: bytes, typ: str, what: str, max_bytes: int) -> ParsedJws:
    if len(token) > max_bytes:
        raise Oversize(f"{what}: {len(token)} bytes exceeds the limit of {max_bytes}")
    try:
        text = token.decode("ascii").strip()
    except UnicodeDecodeError:
        raise BadEncoding(f"{what}: a compact JWS is ASCII") from None
    parts = text.split(".")
    if len(parts) != 3:
        raise BadEncoding(f"{what}: a compact JWS has three dot-separated parts")
    protected, body, sig = parts
    kid = _parse_header(protected, typ, what)
    payload = b64url_decode(body, f"{what}: payload")
    signing_input = f"{protected}.{body}".encode("ascii")
    return ParsedJws(payload, (Signature(kid, signing_input, _signature_bytes(sig, what)),))


def _parse_general(
    data: bytes, typ: str, what: str, max_bytes: int, max_signatures: int, *, min_signatures: int
) -> tuple[str, list[dict[str, str]], ParsedJws]:
    fields = Fields(
        parse_json_object(data, what, max_bytes), what, allowed=frozenset({"payload", "signatures"})
    )
    body = fields.text("payload", max_len=max_bytes, min_len=0)
    payload = b64url_decode(body, f"{what}: payload")
    signatures = []
    raw: list[dict[str, str]] = []
    for index, item in enumerate(
        fields.items("signatures", max_signatures, min_items=min_signatures)
    ):
        where = f"{what}: signature {index + 1}"
        entry = Fields(item, where, allowed=frozenset({"protected", "signature"}))
        protected = entry.text("protected", max_len=_MAX_HEADER_BYTES)
        kid = _parse_header(protected, typ, where)
        text = entry.text("signature", max_len=128)
        sig = _signature_bytes(text, where)
        signatures.append(Signature(kid, f"{protected}.{body}".encode("ascii"), sig))
        raw.append({"protected": protected, "signature": text})
    return body, raw, ParsedJws(payload, tuple(signatures))


def parse_general(
    data: bytes,
    typ: str,
    what: str,
    max_bytes: int,
    max_signatures: int,
    *,
    min_signatures: int = 1,
) -> ParsedJws:
    """``min_signatures`` 0: a draft still to be signed (never for what a device acts on)."""
    return _parse_general(
        data, typ, what, max_bytes, max_signatures, min_signatures=min_signatures
    )[2]


def add_signature(
    data: bytes,
    key: ed25519.Ed25519PrivateKey,
    kid: str,
    *,
    typ: str,
    what: str,
    max_bytes: int,
    max_signatures: int,
) -> bytes:
    """``data`` (a general JWS, possibly with no signature yet) with one more signature.

    The payload and every existing signature are kept byte for byte (the payload is never
    decoded and re-encoded), so what the others signed still verifies. A key that already
    signed is refused: a second signature by it would count once anyway."""
    body, raw, parsed = _parse_general(data, typ, what, max_bytes, max_signatures, min_signatures=0)
    if any(s.kid == kid for s in parsed.signatures):
        raise ValueError(f"{what}: key {kid} has already signed it")
    if len(raw) >= max_signatures:
        raise Oversize(f"{what}: already {len(raw)} signatures, the most a device reads")
    protected = _header(kid, typ)
    raw.append({"protected": protected, "signature": _sign(key, protected, body)})
    return canonical_json({"payload": body, "signatures": raw})


def is_valid(signature: Signature, key: ed25519.Ed25519PublicKey) -> bool:
    try:
        key.verify(signature.signature, signature.signing_input)
    except InvalidSignature:
        return False
    return True


def require_threshold(
    jws: ParsedJws, trusted: Mapping[str, ed25519.Ed25519PublicKey], threshold: int, what: str
) -> frozenset[str]:
    """Ids of the distinct pinned keys with a valid signature; at least ``threshold`` of them.

    A key that signs twice counts once; signatures by unknown keys or that fail are ignored
    here (they cannot help reach the threshold) and reported in the error.
    """
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    valid: set[str] = set()
    unknown = invalid = 0
    for signature in jws.signatures:
        key = trusted.get(signature.kid)
        if key is None:
            unknown += 1
        elif is_valid(signature, key):
            valid.add(signature.kid)
        else:
            invalid += 1
    if len(valid) < threshold:
        raise InsufficientSignatures(
            f"{what}: {len(valid)} valid signature(s) from distinct pinned keys, "
            f"{threshold} required ({invalid} invalid, {unknown} by unknown keys)"
        )
    return frozenset(valid)
