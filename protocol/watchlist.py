"""Watchlist bundles: sealed to one device, signed by ops keys, verified on the device.

A bundle is a JWS in general JSON serialization (``typ`` ``lfr-watchlist+jws``) whose payload
is the JSON header below plus ``ciphertext``: the entries sealed with HPKE to the device's key,
with the canonical header as HPKE ``info`` so a ciphertext cannot be moved under another
header. :func:`open_bundle` is the whole device-side check, like TUF's trusted metadata set:
bytes and ``now`` in, a verified :class:`Watchlist` or one :class:`RejectedInput` out, in this
order: size, structure, signatures, addressee, version, validity window, embedder, decryption,
entries. It does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol import hpke
from protocol.encoding import (
    Fields,
    b64url_encode,
    canonical_json,
    format_time,
    parse_json_object,
    require_aware,
)
from protocol.entries import SHA256_HEX, Entries, Entry, decode_sealed_plaintext
from protocol.entries import encode_sealed_plaintext as _encode
from protocol.errors import (
    BadEncoding,
    DecryptionFailed,
    EmbedderMismatch,
    Expired,
    NotYetValid,
    RollbackRejected,
    UnsupportedAlgorithm,
    WrongDevice,
)
from protocol.jws import parse_general, require_threshold, sign_general
from protocol.keys import HpkePrivateKey, HpkePublicKey
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.trust import TrustPolicy

FORMAT = "lfr-watchlist/1"
TYP = "lfr-watchlist+jws"
MAX_VERSION = 2**53 - 1  # exact in every JSON implementation
DEFAULT_SKEW = timedelta(minutes=5)
_INFO_PREFIX = b"lfr-watchlist/1 info\x00"
_HEADER_FIELDS = frozenset(
    {
        "format",
        "device_id",
        "site",
        "deployment_id",
        "version",
        "issued_at",
        "expires_at",
        "embedder_sha256",
        "dim",
        "hpke_suite",
    }
)


@dataclass(frozen=True)
class WatchlistHeader:
    device_id: str
    site: str
    deployment_id: str
    version: int
    issued_at: datetime
    expires_at: datetime
    embedder_sha256: str
    dim: int
    hpke_suite: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "device_id": self.device_id,
            "site": self.site,
            "deployment_id": self.deployment_id,
            "version": self.version,
            "issued_at": format_time(self.issued_at),
            "expires_at": format_time(self.expires_at),
            "embedder_sha256": self.embedder_sha256,
            "dim": self.dim,
            "hpke_suite": self.hpke_suite,
        }

    def hpke_info(self) -> bytes:
        return _INFO_PREFIX + canonical_json(self.to_json())

    def is_expired(self, now: datetime) -> bool:
        return require_aware(now) >= self.expires_at


@dataclass(frozen=True, eq=False)
class Watchlist:
    """A verified, decrypted watchlist, and which ops keys signed it."""

    header: WatchlistHeader
    entries: tuple[Entry, ...]
    signed_by: frozenset[str]


def seal_bundle(
    entries: Entries,
    *,
    device_id: str,
    site: str,
    deployment_id: str,
    version: int,
    issued_at: datetime,
    expires_at: datetime,
    recipient: HpkePublicKey,
    signers: Sequence[tuple[ed25519.Ed25519PrivateKey, str]],
    suite: str = hpke.DEFAULT_SUITE,
    dtype: str = "float16",
) -> bytes:
    """Seal ``entries`` to one device and sign the bundle with every ``(key, kid)``."""
    if not 1 <= version <= MAX_VERSION:
        raise ValueError("version must be a positive integer")
    if require_aware(expires_at) <= require_aware(issued_at):
        raise ValueError("expires_at must be after issued_at")
    header = WatchlistHeader(
        device_id,
        site,
        deployment_id,
        version,
        issued_at,
        expires_at,
        entries.embedder_sha256,
        entries.dim,
        suite,
    )
    # Re-parse our own header so a value we could not verify later is refused now.
    _parse_header(Fields(header.to_json(), "watchlist"), DEFAULT_LIMITS)
    sealed = hpke.seal(suite, recipient, _encode(entries.entries, dtype), header.hpke_info())
    payload = canonical_json({**header.to_json(), "ciphertext": b64url_encode(sealed)})
    return sign_general(payload, signers, TYP)


def _parse_header(fields: Fields, limits: Limits) -> WatchlistHeader:
    fmt = fields.text("format", max_len=32)
    if fmt != FORMAT:
        raise UnsupportedAlgorithm(f"watchlist: format {fmt!r} is not {FORMAT!r}")
    suite = fields.text("hpke_suite", max_len=64)
    if suite not in hpke.SUITES:
        raise UnsupportedAlgorithm(f"watchlist: HPKE suite {suite!r} is not supported")
    embedder = fields.text("embedder_sha256", max_len=64)
    if not SHA256_HEX.match(embedder):
        raise BadEncoding("watchlist: embedder_sha256 must be 64 lowercase hex digits")
    header = WatchlistHeader(
        device_id=fields.text("device_id", max_len=64),
        site=fields.text("site", max_len=64),
        deployment_id=fields.text("deployment_id", max_len=128),
        version=fields.integer("version", 1, MAX_VERSION),
        issued_at=fields.time("issued_at"),
        expires_at=fields.time("expires_at"),
        embedder_sha256=embedder,
        dim=fields.integer("dim", 1, limits.dim),
        hpke_suite=suite,
    )
    if header.expires_at <= header.issued_at:
        raise BadEncoding("watchlist: expires_at is not after issued_at")
    return header


@dataclass(frozen=True)
class SignedBundle:
    """A bundle whose signatures met the threshold; its entries are still sealed."""

    header: WatchlistHeader
    ciphertext: bytes
    hpke_info: bytes
    signed_by: frozenset[str]


def read_signed(data: bytes, trust: TrustPolicy, limits: Limits = DEFAULT_LIMITS) -> SignedBundle:
    """Check size, structure and signatures only (nothing about addressee or time)."""
    jws = parse_general(data, TYP, "watchlist", limits.bundle_bytes, limits.signatures)
    signed_by = require_threshold(jws, trust.ops_keys, trust.threshold, "watchlist")
    payload = parse_json_object(jws.payload, "watchlist payload", limits.bundle_bytes)
    fields = Fields(payload, "watchlist", allowed=_HEADER_FIELDS | {"ciphertext"})
    header = _parse_header(fields, limits)
    ciphertext = fields.b64("ciphertext", limits.bundle_bytes)
    # info is the header exactly as signed (canonicalised), not as we would re-format it.
    signed_header = {k: v for k, v in payload.items() if k != "ciphertext"}
    return SignedBundle(header, ciphertext, _INFO_PREFIX + canonical_json(signed_header), signed_by)


def open_bundle(
    data: bytes,
    *,
    trust: TrustPolicy,
    device_id: str,
    site: str,
    hpke_key: HpkePrivateKey | Mapping[str, HpkePrivateKey],
    embedder_sha256: str,
    min_version: int,
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
    skew: timedelta = DEFAULT_SKEW,
) -> Watchlist:
    """Verify and decrypt a bundle as the device ``device_id`` at ``site``.

    ``min_version`` is the lowest acceptable version: the installed version + 1 when a new
    bundle arrives, the installed version itself when re-verifying the stored one at start.
    """
    now = require_aware(now)
    signed = read_signed(data, trust, limits)
    header = signed.header
    if header.device_id != device_id or header.site != site:
        raise WrongDevice(
            f"watchlist is for device {header.device_id!r} at site "
            f"{header.site!r}, not {device_id!r} at {site!r}"
        )
    if header.version < min_version:
        raise RollbackRejected(
            f"watchlist version {header.version} is not greater than the "
            f"installed version {min_version - 1}"
        )
    if now + skew < header.issued_at:
        raise NotYetValid(
            f"watchlist issued_at {format_time(header.issued_at)} is in the "
            f"future (now {format_time(now)})"
        )
    if header.is_expired(now):
        raise Expired(f"watchlist expired at {format_time(header.expires_at)}")
    if header.embedder_sha256 != embedder_sha256:
        raise EmbedderMismatch(
            f"watchlist made with embedder {header.embedder_sha256[:12]}…, "
            f"this device runs {embedder_sha256[:12]}…"
        )
    # A device holds one key per suite; the bundle says which one it was sealed to.
    key = hpke_key.get(header.hpke_suite) if isinstance(hpke_key, Mapping) else hpke_key
    if key is None:
        raise DecryptionFailed(
            f"watchlist sealed with {header.hpke_suite}, for which this device has no key"
        )
    plaintext = hpke.open_sealed(
        header.hpke_suite, key, signed.ciphertext, signed.hpke_info, "watchlist"
    )
    entries = decode_sealed_plaintext(plaintext, header.dim, limits)
    return Watchlist(header, entries, signed.signed_by)
