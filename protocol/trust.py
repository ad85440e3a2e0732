"""What a device pins: the ops signing keys and how many of them must sign."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.encoding import Fields, parse_json_object
from protocol.errors import BadEncoding
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


@dataclass(frozen=True)
class DeviceTrust:
    """What ops approved for one device: its identity, the pinned keys, the control room."""

    device_id: str
    site: str
    policy: TrustPolicy
    adjudication_key: HpkePublicKey

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TRUST_FORMAT,
            "device_id": self.device_id,
            "site": self.site,
            "threshold": self.policy.threshold,
            "ops_keys": [public_pem(k).decode("ascii") for k in self.policy.ops_keys.values()],
            "adjudication_public_key": public_pem(self.adjudication_key).decode("ascii"),
        }


def parse_device_trust(data: bytes, max_bytes: int = 256 * 1024) -> DeviceTrust:
    what = "trust.json"
    fields = Fields(
        parse_json_object(data, what, max_bytes),
        what,
        allowed=frozenset(
            {"format", "device_id", "site", "threshold", "ops_keys", "adjudication_public_key"}
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
    )
