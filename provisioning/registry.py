"""The fleet registry (``registry.json``): every enrolled device and central client.

Ops tools seal watchlists to the device keys recorded here; consumers trust events only from
devices listed as ``active``; the broker's ACL and CRL are generated from it. Devices and
clients share one namespace because their certificate CN becomes their MQTT username.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from lfrkit.console import UsageError
from lfrkit.files import atomic_write, read_bounded
from protocol import hpke
from protocol.encoding import Fields, canonical_json, parse_json_object
from protocol.errors import BadEncoding
from protocol.keys import HpkePublicKey, load_hpke_public, load_signing_public
from protocol.names import check_name

FORMAT = "lfr-registry/1"
MAX_BYTES = 64 * 1024 * 1024
STATUSES = ("active", "revoked")
ROLES = ("ops", "alerts", "broker-admin")
CLIENT_ROLES = ("ops", "alerts")  # what issue-client hands out; broker-config makes the admin


@dataclass(frozen=True)
class DeviceRecord:
    device_id: str
    site: str
    status: str
    signing_public_key: str  # PEM
    hpke_public_keys: dict[str, str]  # suite -> PEM
    cert_fingerprint_sha256: str
    cert_serial: str  # hex
    cert_not_after: str  # RFC 3339
    enrolled_at: str
    revoked_at: str | None = None

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
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class ClientRecord:
    """A central client (ops workstation, alert consumer) with its own TLS certificate."""

    name: str
    role: str
    status: str
    cert_serial: str
    cert_not_after: str
    revoked_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "cert_serial": self.cert_serial,
            "cert_not_after": self.cert_not_after,
            "revoked_at": self.revoked_at,
        }


def _status(fields: Fields) -> str:
    status = fields.text("status", max_len=16)
    if status not in STATUSES:
        raise BadEncoding(f"status must be one of {STATUSES}")
    return status


def _revoked_at(fields: Fields) -> str | None:
    if fields.is_null("revoked_at"):
        return None
    return fields.text("revoked_at", max_len=40)


def _device(obj: Any, where: str) -> DeviceRecord:
    fields = Fields(obj, where, allowed=frozenset(DeviceRecord.__dataclass_fields__))
    hpke_keys = fields.sub("hpke_public_keys", allowed=frozenset(hpke.SUITES))
    return DeviceRecord(
        device_id=check_name(fields.text("device_id", max_len=63), f"{where}: device_id"),
        site=check_name(fields.text("site", max_len=63), f"{where}: site"),
        status=_status(fields),
        signing_public_key=fields.text("signing_public_key", max_len=1024),
        hpke_public_keys={
            s: hpke_keys.text(s, max_len=8192) for s in hpke.SUITES if hpke_keys.has(s)
        },
        cert_fingerprint_sha256=fields.text("cert_fingerprint_sha256", max_len=64),
        cert_serial=fields.text("cert_serial", max_len=64),
        cert_not_after=fields.text("cert_not_after", max_len=40),
        enrolled_at=fields.text("enrolled_at", max_len=40),
        revoked_at=_revoked_at(fields),
    )


def _client(obj: Any, where: str) -> ClientRecord:
    fields = Fields(obj, where, allowed=frozenset(ClientRecord.__dataclass_fields__))
    role = fields.text("role", max_len=16)
    if role not in ROLES:
        raise BadEncoding(f"{where}: role must be one of {ROLES}")
    return ClientRecord(
        name=check_name(fields.text("name", max_len=63), f"{where}: name"),
        role=role,
        status=_status(fields),
        cert_serial=fields.text("cert_serial", max_len=64),
        cert_not_after=fields.text("cert_not_after", max_len=40),
        revoked_at=_revoked_at(fields),
    )


@dataclass(frozen=True)
class Registry:
    devices: dict[str, DeviceRecord]
    clients: dict[str, ClientRecord]

    @classmethod
    def empty(cls) -> Registry:
        return cls({}, {})

    @classmethod
    def load(cls, path: Path) -> Registry:
        what = f"registry {path}"
        data = read_bounded(path, MAX_BYTES, "registry")
        fields = Fields(
            parse_json_object(data, what, MAX_BYTES),
            what,
            allowed=frozenset({"format", "devices", "clients"}),
        )
        if fields.text("format", max_len=32) != FORMAT:
            raise BadEncoding(f"{what}: format is not {FORMAT!r}")
        devices = [
            _device(item, f"{what}: device {i + 1}")
            for i, item in enumerate(fields.items("devices", 1_000_000))
        ]
        clients = (
            [
                _client(item, f"{what}: client {i + 1}")
                for i, item in enumerate(fields.items("clients", 10_000))
            ]
            if fields.has("clients")
            else []
        )
        names = [d.device_id for d in devices] + [c.name for c in clients]
        if len(set(names)) != len(names):
            raise BadEncoding(f"{what}: a device id or client name appears twice")
        return cls({d.device_id: d for d in devices}, {c.name: c for c in clients})

    def save(self, path: Path) -> None:
        doc = {
            "format": FORMAT,
            "devices": [r.to_json() for _, r in sorted(self.devices.items())],
            "clients": [c.to_json() for _, c in sorted(self.clients.items())],
        }
        atomic_write(path, canonical_json(doc) + b"\n", mode=0o644)

    def get(self, device_id: str) -> DeviceRecord:
        record = self.devices.get(device_id)
        if record is None:
            raise UsageError(f"unknown device {device_id!r} (not in the registry)")
        return record

    def name_taken(self, name: str) -> bool:
        return name in self.devices or name in self.clients

    def with_device(self, record: DeviceRecord) -> Registry:
        if record.device_id in self.clients:
            raise UsageError(f"{record.device_id!r} is already a client name")
        return Registry({**self.devices, record.device_id: record}, self.clients)

    def with_client(self, record: ClientRecord) -> Registry:
        if record.name in self.devices:
            raise UsageError(f"{record.name!r} is already a device id")
        return Registry(self.devices, {**self.clients, record.name: record})

    def at_site(self, site: str) -> list[DeviceRecord]:
        return [r for _, r in sorted(self.devices.items()) if r.site == site]

    def trusted_signing_keys(self) -> dict[str, ed25519.Ed25519PublicKey]:
        """Event signers consumers accept: active devices only."""
        return {r.device_id: r.signing_key() for r in self.devices.values() if r.status == "active"}

    def revoke(self, name: str, when: str) -> Registry:
        if name in self.devices:
            return self.with_device(replace(self.devices[name], status="revoked", revoked_at=when))
        if name in self.clients:
            return self.with_client(replace(self.clients[name], status="revoked", revoked_at=when))
        raise UsageError(f"unknown device or client {name!r} (not in the registry)")

    def revoked_serials(self) -> list[tuple[str, str]]:
        """(serial hex, revoked_at) of every revoked device and client certificate."""
        out = [
            (r.cert_serial, r.revoked_at or r.enrolled_at)
            for r in self.devices.values()
            if r.status == "revoked"
        ]
        out += [
            (c.cert_serial, c.revoked_at or c.cert_not_after)
            for c in self.clients.values()
            if c.status == "revoked"
        ]
        return sorted(out)
