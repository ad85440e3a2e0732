"""Why an input from outside was refused.

Every refusal of untrusted bytes raises one subclass of :class:`RejectedInput`, each with a
stable ``reason`` code (used for counters, status and logs) and a message that says what was
wrong. Programming errors (wrong argument types, misuse of the API) raise plain exceptions.
"""

from __future__ import annotations


class RejectedInput(Exception):
    """Untrusted input that was refused. ``reason`` is a short stable code."""

    reason = "rejected"


class Oversize(RejectedInput):
    """Larger than a configured limit (checked before parsing or decrypting)."""

    reason = "oversize"


class BadEncoding(RejectedInput):
    """Not valid JSON / base64url / JWS structure, or the wrong fields or types."""

    reason = "bad_json"


class UnsupportedAlgorithm(RejectedInput):
    """A header names an algorithm, type or suite this version does not accept."""

    reason = "unsupported_algorithm"


class InsufficientSignatures(RejectedInput):
    """Fewer valid signatures from distinct pinned keys than the threshold requires."""

    reason = "too_few_signatures"


class BadSignature(RejectedInput):
    """A single-signer object (event, request) whose signature does not verify."""

    reason = "bad_signature"


class UnknownSigner(RejectedInput):
    """Signed by a key id nobody pinned (an unknown or revoked device)."""

    reason = "unknown_signer"


class WrongDevice(RejectedInput):
    """Addressed to another device (or site)."""

    reason = "wrong_device"


class RollbackRejected(RejectedInput):
    """Version or counter not greater than the one already accepted (rollback or replay)."""

    reason = "rollback"


class Expired(RejectedInput):
    """``expires_at`` is at or before now."""

    reason = "expired"


class NotYetValid(RejectedInput):
    """``issued_at`` lies in the future beyond the allowed clock skew."""

    reason = "not_yet_valid"


class EmbedderMismatch(RejectedInput):
    """Made for another embedding profile than the one this device runs."""

    reason = "embedder_mismatch"


class DecryptionFailed(RejectedInput):
    """HPKE open failed: wrong recipient key, altered ciphertext or altered header."""

    reason = "decryption_failed"


class MalformedEntries(RejectedInput):
    """The decrypted (or to-be-sealed) entries are not well formed."""

    reason = "malformed_entries"


class ThresholdMissing(RejectedInput):
    """A watchlist that carries no signed match threshold (made before lfr-watchlist/2)."""

    reason = "threshold_missing"


class ThresholdTooLow(RejectedInput):
    """A watchlist whose signed threshold is below the device profile's 1:1 threshold."""

    reason = "threshold_too_low"


REASONS: tuple[str, ...] = tuple(
    cls.reason
    for cls in (
        Oversize,
        BadEncoding,
        UnsupportedAlgorithm,
        InsufficientSignatures,
        BadSignature,
        UnknownSigner,
        WrongDevice,
        RollbackRejected,
        Expired,
        NotYetValid,
        EmbedderMismatch,
        DecryptionFailed,
        MalformedEntries,
        ThresholdMissing,
        ThresholdTooLow,
    )
)
