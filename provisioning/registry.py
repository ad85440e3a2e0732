"""The fleet registry (``registry.json``): every enrolled device, its public keys and status.

Ops tools seal watchlists to the keys recorded here; consumers trust events only from devices
listed here as ``active``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.io.console import UsageError
from agent.io.files import atomic_write, read_bounded
from protocol import hpke
from protocol.encoding import Fields, canonical_json, parse_json_object
from protocol.errors import BadEncoding
from protocol.keys import HpkePublicKey, load_hpke_public, load_signing_public
from protocol.names import check_name

FORMAT = "lfr-registry/1"
MAX_BYTES = 64 * 1024 * 1024
STATUSES = ("active", "revoked")


@dataclass(frozen=True)
class DeviceRecord:
    device_id: str
    site: str
    status: str
    signing_public_key: str  # PEM
    hpke_public_keys: dict[str, str]  # suite -> PEM
    cert_fingerprint_sha256: str
    cert_serial: str
    cert_not_after: str  # RFC 3339
    enrolled_at: str

    def signing_key(self) -> ed25519.Ed25519PublicKey:
        return load_signing_public(
            self.signing_public_key.encode("ascii"), f"registry: {self.device_id} signing key"
        )

    def hpke_key(self, suite: str) -> HpkePublicKey:
        pem = self.hpke_public_keys.get(suite)
        if pem is None:
            raise UsageError(f"device {self.device_id} has no key for HPKE suite {suite}")
        return load_hpke_public(pem.encode("ascii"), f"registry: {self.device_id} HPKE key")

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "site": self.site,
            "status": self.status,
            "signing_public_key": self.signing_public_key,
            "hpke_public_keys": dict(sorted(self.hpke_public_keys.items())),
            "cert_fingerprint_sha256": self.cert_fingerprint_sha256,
            "cert_serial": self.cert_serial,
            "cert_not_after": self.cert_not_after,
            "enrolled_at": self.enrolled_at,
        }


def _record(obj: Any, where: str) -> DeviceRecord:
    fields = Fields(obj, where, allowed=frozenset(DeviceRecord.__dataclass_fields__))
    status = fields.text("status", max_len=16)
    if status not in STATUSES:
        raise BadEncoding(f"{where}: status must be one of {STATUSES}")
    hpke_keys = fields.sub("hpke_public_keys")
    suites = {}
    for suite in hpke.SUITES:
        if hpke_keys.has(suite):
            suites[suite] = hpke_keys.text(suite, max_len=8192)
    return DeviceRecord(
        device_id=check_name(fields.text("device_id", max_len=63), f"{where}: device_id"),
        site=check_name(fields.text("site", max_len=63), f"{where}: site"),
        status=status,
        signing_public_key=fields.text("signing_public_key", max_len=1024),
        hpke_public_keys=suites,
        cert_fingerprint_sha256=fields.text("cert_fingerprint_sha256", max_len=64),
        cert_serial=fields.text("cert_serial", max_len=64),
        cert_not_after=fields.text("cert_not_after", max_len=40),
        enrolled_at=fields.text("enrolled_at", max_len=40),
    )


@dataclass(frozen=True)
class Registry:
    devices: dict[str, DeviceRecord]

    @classmethod
    def empty(cls) -> Registry:
        return cls({})

    @classmethod
    def load(cls, path: Path) -> Registry:
        what = f"registry {path}"
        fields = Fields(
            parse_json_object(read_bounded(path, MAX_BYTES, "registry"), what, MAX_BYTES),
            what,
            allowed=frozenset({"format", "devices"}),
        )
        if fields.text("format", max_len=32) != FORMAT:
            raise BadEncoding(f"{what}: format is not {FORMAT!r}")
        records = [
            _record(item, f"{what}: device {i + 1}")
            for i, item in enumerate(fields.items("devices", 1_000_000))
        ]
        devices = {r.device_id: r for r in records}
        if len(devices) != len(records):
            raise BadEncoding(f"{what}: a device id appears twice")
        return cls(devices)

    def save(self, path: Path) -> None:
        doc = {"format": FORMAT, "devices": [r.to_json() for _, r in sorted(self.devices.items())]}
        atomic_write(path, canonical_json(doc) + b"\n", mode=0o644)

    def get(self, device_id: str) -> DeviceRecord:
        record = self.devices.get(device_id)
        if record is None:
            raise UsageError(f"unknown device {device_id!r} (not in the registry)")
        return record

    def with_record(self, record: DeviceRecord) -> Registry:
        return Registry({**self.devices, record.device_id: record})

    def at_site(self, site: str) -> list[DeviceRecord]:
        return [r for _, r in sorted(self.devices.items()) if r.site == site]

    def trusted_signing_keys(self) -> dict[str, ed25519.Ed25519PublicKey]:
        """Event signers consumers accept: active devices only."""
        return {r.device_id: r.signing_key() for r in self.devices.values() if r.status == "active"}

    def revoke(self, device_id: str) -> Registry:
        return self.with_record(replace(self.get(device_id), status="revoked"))
