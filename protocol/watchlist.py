"""Watchlist bundles: sealed to one device, signed by ops keys, verified on the device.

A bundle is a JWS in general JSON serialization (``typ`` ``lfr-watchlist+jws``) whose payload
is the JSON header below plus ``ciphertext``: the entries sealed with HPKE to the device's key,
with the canonical header as HPKE ``info`` so a ciphertext cannot be moved under another
header. :func:`open_bundle` is the whole device-side check, like TUF's trusted metadata set:
bytes and ``now`` in, a verified :class:`Watchlist` or one :class:`RejectedInput` out, in this
order: size, structure, signatures, addressee, version, validity window, embedder, match
threshold, decryption, entries. It does no I/O.

Format 2 adds ``threshold`` to the signed header: the operating threshold ops chose for this
list (:class:`MatchThreshold`), so the device never picks a 1:1 value for a list on its own.
A format-1 bundle has none and is refused (:class:`ThresholdMissing`), as is a threshold below
the device profile's 1:1 threshold (:class:`ThresholdTooLow`).
"""

from __future__ import annotations

import hashlib
import itertools
import math
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
    ThresholdMissing,
    ThresholdTooLow,
    UnsupportedAlgorithm,
    WrongDevice,
)
from protocol.jws import add_signature, parse_general, require_threshold, sign_general
from protocol.keys import HpkePrivateKey, HpkePublicKey
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.trust import TrustPolicy

FORMAT = "lfr-watchlist/2"
OLD_FORMATS = frozenset({"lfr-watchlist/1"})  # no threshold: refused as ThresholdMissing
TYP = "lfr-watchlist+jws"
MAX_VERSION = 2**53 - 1  # exact in every JSON implementation
DEFAULT_SKEW = timedelta(minutes=5)
# The HPKE info's domain label; the header in it carries the format itself.
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
        "threshold",
        "entry_count",
    }
)
CALIBRATED = "calibrated"  # chosen from the profile's 1:N calibration for the list's size
POLICY = "policy"  # an explicit value ops set (lfr-watchlist seal --threshold)
_THRESHOLD_FIELDS = frozenset(
    {"value", "basis", "fpir", "k", "list_size", "by_coherence", "entry_means"}
)
MAX_TEMPLATE_K = 64
MAX_LIST_SIZE = 10_000_000
MAX_COHERENCE_BINS = 32
Bins = tuple[tuple[float, float], ...]


def check_bins(bins: Bins, value: float) -> str | None:
    """Why ``bins`` is not a valid coherence schedule for ``value`` (None: it is). Bins are
    ``(lowest coherence, threshold)``: the first starts at 0, starts rise strictly within
    [0, 1), thresholds never rise (a more coherent template, nearer one face, needs no more)
    and the first is ``value`` itself, so ``value`` stays the strictest the list is matched at."""
    if not 1 <= len(bins) <= MAX_COHERENCE_BINS:
        return f"has {len(bins)} bins, not 1..{MAX_COHERENCE_BINS}"
    if bins[0][0] != 0.0 or bins[0][1] != value:
        return "must start at coherence 0 with the threshold's value"
    for (lo, t), (next_lo, next_t) in itertools.pairwise(bins):
        if not lo < next_lo < 1.0:
            return "coherences must rise strictly within [0, 1)"
        if not 0.0 < next_t <= t:
            return "thresholds must be in (0, 1] and never rise with coherence"
    return None


@dataclass(frozen=True)
class MatchThreshold:
    """The operating threshold of a watchlist, and how it was chosen.

    ``calibrated``: from the profile's 1:N calibration at false-positive identification rate
    ``fpir`` for ``list_size`` entries and templates of ``k`` faces; ``policy``: a value ops
    set explicitly (``fpir``, ``k`` and ``list_size`` are then None). A per-entry threshold
    can only raise it (the matcher takes the larger)."""

    value: float
    basis: str
    fpir: float | None = None
    k: int | None = None
    list_size: int | None = None
    # Calibrated only, optional: the threshold by the template's coherence (the norm of the
    # mean of its unit embeddings), ``((0, value), (c1, t1), ...)``: a template of K nearly
    # identical video frames behaves like one face, not like K different photos.
    by_coherence: Bins | None = None
    # Calibrated only: the threshold counts, for every entry of several photos, one more row,
    # the mean of its photos' unit embeddings (renormalised), so the node may add it. Absent:
    # an entry is scored by its best photo only.
    entry_means: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and 0.0 < self.value <= 1.0):
            raise ValueError("threshold value must be in (0, 1]")
        if self.entry_means and self.basis != CALIBRATED:
            raise ValueError("only a calibrated threshold has entry_means")
        if self.by_coherence is not None:
            if self.basis != CALIBRATED:
                raise ValueError("only a calibrated threshold has by_coherence")
            why = check_bins(self.by_coherence, self.value)
            if why is not None:
                raise ValueError(f"by_coherence {why}")
        if self.basis == POLICY:
            if (self.fpir, self.k, self.list_size) != (None, None, None):
                raise ValueError("a policy threshold has no fpir, k or list_size")
        elif self.basis == CALIBRATED:
            if self.fpir is None or self.k is None or self.list_size is None:
                raise ValueError("a calibrated threshold needs fpir, k and list_size")
            if not (0.0 < self.fpir < 1.0 and 1 <= self.k <= MAX_TEMPLATE_K):
                raise ValueError("fpir must be in (0, 1) and k in 1..64")
            if not 1 <= self.list_size <= MAX_LIST_SIZE:
                raise ValueError(f"list_size must be in 1..{MAX_LIST_SIZE}")
        else:
            raise ValueError(f"threshold basis must be {CALIBRATED!r} or {POLICY!r}")

    def to_json(self) -> dict[str, Any]:
        if self.basis == POLICY:
            return {"value": self.value, "basis": POLICY}
        doc: dict[str, Any] = {
            "value": self.value,
            "basis": CALIBRATED,
            "fpir": self.fpir,
            "k": self.k,
            "list_size": self.list_size,
        }
        if self.by_coherence is not None:
            doc["by_coherence"] = [[c, t] for c, t in self.by_coherence]
        if self.entry_means:
            doc["entry_means"] = True
        return doc

    @property
    def lowest(self) -> float:
        """The lowest value any template is matched at."""
        return self.value if self.by_coherence is None else self.by_coherence[-1][1]

    def describe(self) -> str:
        if self.basis == POLICY:
            return f"{self.value:.4f} (policy)"
        by = ""
        if self.by_coherence is not None and len(self.by_coherence) > 1:
            by = f", down to {self.lowest:.4f} for coherent templates"
        return (
            f"{self.value:.4f} (calibrated: FPIR {self.fpir:g}, {self.list_size} entries, "
            f"K={self.k}{by}{', mean rows counted' if self.entry_means else ''})"
        )


def _parse_threshold(fields: Fields) -> MatchThreshold:
    if not fields.has("threshold"):
        raise ThresholdMissing("watchlist: the signed header has no match threshold")
    t = fields.sub("threshold", _THRESHOLD_FIELDS)
    value = t.number("value", 0.0, 1.0)
    if value <= 0.0:
        raise BadEncoding("watchlist: threshold: field 'value' must be in (0, 1]")
    basis = t.text("basis", max_len=16)
    if basis == POLICY:
        members = ("fpir", "k", "list_size", "by_coherence", "entry_means")
        extra = sorted(n for n in members if t.has(n))
        if extra:
            raise BadEncoding(f"watchlist: threshold: a policy threshold has no {extra[0]!r}")
        return MatchThreshold(value, POLICY)
    if basis != CALIBRATED:
        raise BadEncoding(
            f"watchlist: threshold: basis {basis!r} is not {CALIBRATED!r} or {POLICY!r}"
        )
    fpir = t.number("fpir", 0.0, 1.0)
    if not 0.0 < fpir < 1.0:
        raise BadEncoding("watchlist: threshold: field 'fpir' must be in (0, 1)")
    bins = _parse_bins(t, value) if t.has("by_coherence") else None
    means = t.boolean("entry_means") if t.has("entry_means") else False
    return MatchThreshold(
        value,
        CALIBRATED,
        fpir,
        t.integer("k", 1, MAX_TEMPLATE_K),
        t.integer("list_size", 1, MAX_LIST_SIZE),
        bins,
        means,
    )


def _parse_bins(t: Fields, value: float) -> Bins:
    what = "watchlist: threshold: by_coherence"
    items = t.items("by_coherence", MAX_COHERENCE_BINS, min_items=1)
    bins = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 2):
            raise BadEncoding(f"{what}: each bin must be [coherence, threshold]")
        pair = Fields({"coherence": item[0], "threshold": item[1]}, what)
        bins.append((pair.number("coherence", 0.0, 1.0), pair.number("threshold", 0.0, 1.0)))
    why = check_bins(tuple(bins), value)
    if why is not None:
        raise BadEncoding(f"{what} {why}")
    return tuple(bins)


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
    threshold: MatchThreshold
    # Signed so a second signer sees how many entries they sign for (the entries themselves
    # are sealed to the device); the device refuses a bundle holding another number. None:
    # a bundle sealed before the field existed.
    entry_count: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {
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
            "threshold": self.threshold.to_json(),
        }
        if self.entry_count is not None:
            doc["entry_count"] = self.entry_count
        return doc

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
    threshold: MatchThreshold,
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
        threshold,
        len(entries.entries),
    )
    # Re-parse our own header so a value we could not verify later is refused now.
    _parse_header(Fields(header.to_json(), "watchlist"), DEFAULT_LIMITS)
    sealed = hpke.seal(suite, recipient, _encode(entries.entries, dtype), header.hpke_info())
    payload = canonical_json({**header.to_json(), "ciphertext": b64url_encode(sealed)})
    return sign_general(payload, signers, TYP, allow_unsigned=True)


def _parse_header(fields: Fields, limits: Limits) -> WatchlistHeader:
    fmt = fields.text("format", max_len=32)
    if fmt in OLD_FORMATS:
        raise ThresholdMissing(
            f"watchlist: format {fmt!r} carries no match threshold; re-seal it with a "
            f"current lfr-watchlist ({FORMAT!r})"
        )
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
        threshold=_parse_threshold(fields),
        entry_count=(
            fields.integer("entry_count", 1, MAX_LIST_SIZE) if fields.has("entry_count") else None
        ),
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


@dataclass(frozen=True)
class Draft:
    """A bundle as a signer sees it before adding a signature: the signed header and who has
    signed so far (signatures not verified: the signer checks what they sign, not others)."""

    header: WatchlistHeader
    signatures: tuple[str, ...]  # key ids, in order
    payload_sha256: str


def read_draft(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Draft:
    jws = parse_general(
        data, TYP, "watchlist", limits.bundle_bytes, limits.signatures, min_signatures=0
    )
    payload = parse_json_object(jws.payload, "watchlist payload", limits.bundle_bytes)
    fields = Fields(payload, "watchlist", allowed=_HEADER_FIELDS | {"ciphertext"})
    header = _parse_header(fields, limits)
    fields.b64("ciphertext", limits.bundle_bytes)
    return Draft(
        header,
        tuple(s.kid for s in jws.signatures),
        hashlib.sha256(jws.payload).hexdigest(),
    )


def add_bundle_signature(
    data: bytes, key: ed25519.Ed25519PrivateKey, kid: str, limits: Limits = DEFAULT_LIMITS
) -> bytes:
    """``data`` with one more signature; the payload and the others are unchanged."""
    read_draft(data, limits)  # never sign what a device could not parse
    return add_signature(
        data,
        key,
        kid,
        typ=TYP,
        what="watchlist",
        max_bytes=limits.bundle_bytes,
        max_signatures=limits.signatures,
    )


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
    min_threshold: float | None = None,
) -> Watchlist:
    """Verify and decrypt a bundle as the device ``device_id`` at ``site``.

    ``min_threshold``: the device profile's 1:1 threshold; a bundle whose signed threshold is
    below it is refused (None: the profile has none, e.g. a test backend).

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
    if min_threshold is not None and header.threshold.lowest < min_threshold:
        raise ThresholdTooLow(
            f"watchlist threshold {header.threshold.describe()} is below this profile's 1:1 "
            f"threshold {min_threshold:.4f}"
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
    if header.entry_count is not None and len(entries) != header.entry_count:
        raise BadEncoding(
            f"watchlist holds {len(entries)} entries; its signed header says {header.entry_count}"
        )
    t = header.threshold
    if t.list_size is not None and len(entries) > t.list_size:
        # A threshold calibrated for a shorter list lets strangers through more often.
        raise ThresholdTooLow(
            f"watchlist threshold {t.describe()} was calibrated for fewer entries than its "
            f"{len(entries)}"
        )
    return Watchlist(header, entries, signed.signed_by)
