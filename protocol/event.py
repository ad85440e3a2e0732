"""Match events: a compact JWS (``typ`` ``lfr-event+jws``, ``kid`` = device id) over JSON.

The face crop (``probe``) is a JPEG sealed with HPKE to the control room's adjudication key,
so the broker and anyone reading the topic see a signed claim but never the face. The HPKE
``info`` binds the probe to its event id and device.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol import hpke
from protocol.encoding import Fields, b64url_encode, canonical_json, format_time, parse_json_object
from protocol.entries import SHA256_HEX, SUBJECT_REF
from protocol.errors import BadEncoding, BadSignature, UnknownSigner, UnsupportedAlgorithm
from protocol.jws import is_valid, parse_compact, sign_compact
from protocol.keys import HpkePrivateKey, HpkePublicKey
from protocol.limits import DEFAULT_LIMITS, Limits

FORMAT = "lfr-event/1"
TYP = "lfr-event+jws"
_PROBE_INFO = b"lfr-probe/1 info\x00"
_FIELDS = frozenset(
    {
        "format",
        "event_id",
        "device_id",
        "site",
        "deployment_id",
        "watchlist_version",
        "subject_ref",
        "category",
        "score",
        "threshold",
        "margin",
        "observed_at",
        "track_id",
        "embedder_sha256",
        "probe",
        "probe_suite",
    }
)


@dataclass(frozen=True)
class MatchEvent:
    event_id: str
    device_id: str
    site: str
    deployment_id: str
    watchlist_version: int
    subject_ref: str
    category: str
    score: float
    threshold: float
    margin: float
    observed_at: datetime
    track_id: int
    embedder_sha256: str
    probe_suite: str
    probe: bytes  # HPKE-sealed JPEG

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "event_id": self.event_id,
            "device_id": self.device_id,
            "site": self.site,
            "deployment_id": self.deployment_id,
            "watchlist_version": self.watchlist_version,
            "subject_ref": self.subject_ref,
            "category": self.category,
            "score": self.score,
            "threshold": self.threshold,
            "margin": self.margin,
            "observed_at": format_time(self.observed_at),
            "track_id": self.track_id,
            "embedder_sha256": self.embedder_sha256,
            "probe_suite": self.probe_suite,
            "probe": b64url_encode(self.probe),
        }


def new_event_id() -> str:
    return str(uuid.uuid4())


def _probe_info(event_id: str, device_id: str) -> bytes:
    return _PROBE_INFO + canonical_json({"event_id": event_id, "device_id": device_id})


def seal_probe(
    jpeg: bytes,
    recipient: HpkePublicKey,
    *,
    event_id: str,
    device_id: str,
    suite: str = hpke.DEFAULT_SUITE,
) -> bytes:
    return hpke.seal(suite, recipient, jpeg, _probe_info(event_id, device_id))


def open_probe(event: MatchEvent, adjudication_key: HpkePrivateKey) -> bytes:
    """The JPEG face crop of a verified event, for the adjudicating officer."""
    return hpke.open_sealed(
        event.probe_suite,
        adjudication_key,
        event.probe,
        _probe_info(event.event_id, event.device_id),
        "event probe",
    )


def sign_event(event: MatchEvent, device_key: ed25519.Ed25519PrivateKey) -> bytes:
    _parse_claims(event.to_json(), DEFAULT_LIMITS)  # never emit what a consumer would refuse
    return sign_compact(canonical_json(event.to_json()), device_key, event.device_id, TYP)


def _parse_claims(obj: Any, limits: Limits) -> MatchEvent:
    fields = Fields(obj, "event", allowed=_FIELDS)
    if fields.text("format", max_len=32) != FORMAT:
        raise UnsupportedAlgorithm(f"event: format is not {FORMAT!r}")
    event_id = fields.text("event_id", max_len=36)
    try:
        canonical_id = str(uuid.UUID(event_id))
    except ValueError:
        canonical_id = ""
    if canonical_id != event_id:
        raise BadEncoding("event: event_id must be a lowercase hyphenated UUID")
    subject_ref = fields.text("subject_ref", max_len=128)
    if not SUBJECT_REF.match(subject_ref):
        raise BadEncoding("event: subject_ref is not an opaque reference")
    embedder = fields.text("embedder_sha256", max_len=64)
    if not SHA256_HEX.match(embedder):
        raise BadEncoding("event: embedder_sha256 must be 64 lowercase hex digits")
    suite = fields.text("probe_suite", max_len=64)
    if suite not in hpke.SUITES:
        raise UnsupportedAlgorithm(f"event: probe suite {suite!r} is not supported")
    return MatchEvent(
        event_id=event_id,
        device_id=fields.text("device_id", max_len=64),
        site=fields.text("site", max_len=64),
        deployment_id=fields.text("deployment_id", max_len=128),
        watchlist_version=fields.integer("watchlist_version", 1, 2**53 - 1),
        subject_ref=subject_ref,
        category=fields.text("category", max_len=64),
        score=fields.number("score", -1e6, 1e6),
        threshold=fields.number("threshold", -1e6, 1e6),
        margin=fields.number("margin", -1e6, 1e6),
        observed_at=fields.time("observed_at"),
        track_id=fields.integer("track_id", 0, 2**53 - 1),
        embedder_sha256=embedder,
        probe_suite=suite,
        probe=fields.b64("probe", limits.probe_bytes),
    )


def parse_stored_event(token: bytes, limits: Limits = DEFAULT_LIMITS) -> MatchEvent:
    """Claims of an event that was verified when it was stored (the alert store is trusted).

    Never use this on anything received: that is what :func:`verify_event` is for.
    """
    jws = parse_compact(token, TYP, "event", limits.event_bytes)
    return _parse_claims(
        parse_json_object(jws.payload, "event payload", limits.event_bytes), limits
    )


def verify_event(
    token: bytes,
    device_keys: Mapping[str, ed25519.Ed25519PublicKey],
    limits: Limits = DEFAULT_LIMITS,
) -> MatchEvent:
    """Verify an event against the trusted (enrolled, not revoked) devices' keys."""
    jws = parse_compact(token, TYP, "event", limits.event_bytes)
    signature = jws.signatures[0]
    key = device_keys.get(signature.kid)
    if key is None:
        raise UnknownSigner(f"event: signed by {signature.kid!r}, not a trusted device")
    if not is_valid(signature, key):
        raise BadSignature(f"event: signature by {signature.kid!r} does not verify")
    event = _parse_claims(
        parse_json_object(jws.payload, "event payload", limits.event_bytes), limits
    )
    if event.device_id != signature.kid:
        raise BadSignature(
            f"event: device_id {event.device_id!r} differs from signer {signature.kid!r}"
        )
    return event
