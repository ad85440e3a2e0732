"""What a device pins: the ops signing keys and how many of them must sign.

The first ``trust.json`` a device installs is taken as approved by the technician (it came
with the certificate ops issued). Every later change of the pinned ops keys, the threshold
or the adjudication key must arrive as a *trust rotation*: the new document as a general
JWS (``typ`` ``lfr-trust+jws``) signed by at least ``threshold`` of the keys the device pins
*now*, with a ``serial`` above the pinned one (so an old rotation cannot be replayed to
restore keys that were rotated out). ``open_rotation`` is that check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.encoding import Fields, canonical_json, parse_json_object
from protocol.errors import (
    BadEncoding,
    Oversize,
    RejectedInput,
    RollbackRejected,
    WrongDevice,
)
from protocol.jws import parse_general, require_threshold, sign_general
from protocol.keys import HpkePublicKey, key_id, load_hpke_public, load_signing_public, public_pem
from protocol.names import check_name


@dataclass(frozen=True)
class TrustPolicy:
    ops_keys: Mapping[str, ed25519.Ed25519PublicKey]
    threshold: int

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= len(self.ops_keys):
            raise ValueError(
                f"threshold {self.threshold} must be between 1 and the number of "
                f"pinned ops keys ({len(self.ops_keys)})"
            )
        for kid, key in self.ops_keys.items():
            if key_id(key) != kid:
                raise ValueError(f"pinned key id {kid} does not match its key")
        object.__setattr__(self, "ops_keys", MappingProxyType(dict(self.ops_keys)))

    @classmethod
    def of(cls, keys: Iterable[ed25519.Ed25519PublicKey], threshold: int) -> TrustPolicy:
        return cls({key_id(k): k for k in keys}, threshold)


TRUST_FORMAT = "lfr-trust/1"
ROTATION_TYP = "lfr-trust+jws"
MAX_TRUST_BYTES = 256 * 1024
MAX_SERIAL = 2**53 - 1
_MAX_ROTATION_SIGNATURES = 16


@dataclass(frozen=True)
class DeviceTrust:
    """What ops approved for one device: its identity, the pinned keys, the control room."""

    device_id: str
    site: str
    policy: TrustPolicy
    adjudication_key: HpkePublicKey
    # 0 for the trust ops first approved; each rotation raises it (anti-replay).
    serial: int = 0

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": TRUST_FORMAT,
            "device_id": self.device_id,
            "site": self.site,
            "threshold": self.policy.threshold,
            "ops_keys": [public_pem(k).decode("ascii") for k in self.policy.ops_keys.values()],
            "adjudication_public_key": public_pem(self.adjudication_key).decode("ascii"),
        }
        if self.serial:  # absent for serial 0: trust.json written before rotations existed
            doc["serial"] = self.serial
        return doc

    def to_bytes(self) -> bytes:
        """The ``trust.json`` file a device keeps."""
        return canonical_json(self.to_json()) + b"\n"

    def same_trust(self, other: DeviceTrust) -> bool:
        """Whether ``other`` pins exactly what this does (device, keys, threshold, serial)."""
        return self.to_json() == other.to_json()


def parse_device_trust(
    data: bytes, max_bytes: int = MAX_TRUST_BYTES, what: str = "trust.json"
) -> DeviceTrust:
    fields = Fields(
        parse_json_object(data, what, max_bytes),
        what,
        allowed=frozenset(
            {
                "format",
                "device_id",
                "site",
                "threshold",
                "ops_keys",
                "adjudication_public_key",
                "serial",
            }
        ),
    )
    if fields.text("format", max_len=32) != TRUST_FORMAT:
        raise BadEncoding(f"{what}: format is not {TRUST_FORMAT!r}")
    keys = []
    for index, pem in enumerate(fields.items("ops_keys", 64, min_items=1)):
        if not isinstance(pem, str):
            raise BadEncoding(f"{what}: ops_keys[{index}] must be a PEM string")
        keys.append(
            load_signing_public(pem.encode("ascii", "replace"), f"{what}: ops_keys[{index}]")
        )
    threshold = fields.integer("threshold", 1, len(keys))
    if len({key_id(k) for k in keys}) != len(keys):
        raise BadEncoding(f"{what}: an ops key is listed twice")
    adjudication = load_hpke_public(
        fields.text("adjudication_public_key", max_len=8192).encode("ascii", "replace"),
        f"{what}: adjudication_public_key",
    )
    return DeviceTrust(
        check_name(fields.text("device_id", max_len=63), "device_id"),
        check_name(fields.text("site", max_len=63), "site"),
        TrustPolicy.of(keys, threshold),
        adjudication,
        fields.integer("serial", 1, MAX_SERIAL) if fields.has("serial") else 0,
    )


def sign_rotation(
    trust: DeviceTrust, signers: Sequence[tuple[ed25519.Ed25519PrivateKey, str]]
) -> bytes:
    """The rotation to ``trust``, signed by ``signers`` (keys the device pins today)."""
    if trust.serial < 1:
        raise ValueError("a rotated trust needs a serial of at least 1")
    return sign_general(canonical_json(trust.to_json()), signers, ROTATION_TYP)


def is_rotation(data: bytes, max_bytes: int = MAX_TRUST_BYTES) -> bool:
    """Whether ``data`` is shaped as a trust rotation (a general JWS whose protected headers
    say ``lfr-trust+jws``), so the command topic can carry rotations beside commands.
    Nothing is verified here: :func:`open_rotation` does that."""
    if len(data) > max_bytes:
        return False
    try:
        parse_general(data, ROTATION_TYP, "trust rotation", max_bytes, _MAX_ROTATION_SIGNATURES)
    except RejectedInput:
        return False
    return True


def open_rotation(
    data: bytes, current: DeviceTrust, max_bytes: int = MAX_TRUST_BYTES
) -> DeviceTrust:
    """The new trust in a rotation, if the device pinning ``current`` must accept it.

    Checked in order: size (before parsing), JWS structure, at least ``threshold`` valid
    signatures by distinct keys pinned in ``current``, the trust document itself, the
    device and site, and a serial strictly above ``current.serial``. No clock is needed:
    the serial alone stops a replay, and a node with a wrong clock can still be repaired.
    """
    what = "trust rotation"
    if len(data) > max_bytes:
        raise Oversize(f"{what}: {len(data)} bytes exceeds the limit of {max_bytes}")
    jws = parse_general(data, ROTATION_TYP, what, max_bytes, _MAX_ROTATION_SIGNATURES)
    require_threshold(jws, current.policy.ops_keys, current.policy.threshold, what)
    new = parse_device_trust(jws.payload, max_bytes, f"{what} payload")
    if (new.device_id, new.site) != (current.device_id, current.site):
        raise WrongDevice(
            f"{what} is for {new.device_id}@{new.site}, this device is "
            f"{current.device_id}@{current.site}"
        )
    if new.serial <= current.serial:
        raise RollbackRejected(
            f"{what}: serial {new.serial} is not greater than the pinned serial "
            f"{current.serial} (replayed or out of order)"
        )
    return new
