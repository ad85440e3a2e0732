"""Fleet life cycle on the ops side: central clients, certificate renewal, revocation."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from lfrkit import tls
from lfrkit.console import UsageError
from lfrkit.files import atomic_write, ensure_private_dir
from protocol.encoding import format_time, parse_time
from protocol.names import check_name
from provisioning import ca
from provisioning.approve import write_install_bundle
from provisioning.authority import Authority
from provisioning.registry import ROLES, ClientRecord, DeviceRecord

log = logging.getLogger(__name__)
CLIENT_CERT_LIFETIME = ca.DEVICE_CERT_LIFETIME * 4  # central machines, renewed yearly


def issue_client(
    authority_dir: Path, role: str, name: str, out: Path, now: datetime
) -> ClientRecord:
    """Key pair + certificate for an ops workstation or an alert consumer (CN = name)."""
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}")
    check_name(name, "client name")
    authority = Authority.load(authority_dir)
    registry = authority.registry()
    existing = registry.clients.get(name)
    if registry.name_taken(name) and (existing is None or existing.role != role):
        raise UsageError(f"{name!r} is already taken by a device or another client")
    if existing is not None and existing.status == "revoked":
        raise UsageError(f"client {name!r} is revoked; use a new name")
    out = ensure_private_dir(Path(out))
    key_path, cert_path = out / f"{name}.key", out / f"{name}.crt"
    if existing is not None and key_path.exists() and cert_path.exists():
        return existing  # already issued here: re-running changes nothing
    key = tls.new_tls_key()
    cert = ca.issue_client_cert(
        authority.ca_key(),
        authority.ca_cert(),
        key.public_key(),
        common_name=name,
        organizational_unit=f"client:{role}",
        now=now,
        lifetime=CLIENT_CERT_LIFETIME,
    )
    atomic_write(key_path, tls.tls_key_pem(key), 0o600)
    atomic_write(cert_path, ca.cert_pem(cert), 0o644)
    record = ClientRecord(
        name, role, "active", f"{cert.serial_number:x}", format_time(cert.not_valid_after_utc)
    )
    registry.with_client(record).save(authority.registry_path)
    return record


def renew(authority_dir: Path, device_id: str, out: Path, now: datetime) -> DeviceRecord:
    """A new certificate for the same device key; install it with device-install."""
    authority = Authority.load(authority_dir)
    registry = authority.registry()
    record = registry.get(device_id)
    if record.status != "active":
        raise UsageError(f"device {device_id} is {record.status}; it cannot be renewed")
    issued = authority.issued_cert_path(device_id)
    if not issued.exists():
        raise UsageError(f"no issued certificate on record for {device_id} ({issued})")
    old = x509.load_pem_x509_certificate(issued.read_bytes())
    public = old.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise UsageError(f"{issued}: not an EC certificate")
    cert = ca.issue_client_cert(
        authority.ca_key(),
        authority.ca_cert(),
        public,
        common_name=device_id,
        organizational_unit=f"device:{record.site}",
        now=now,
    )
    atomic_write(issued, ca.cert_pem(cert), 0o644)
    record = replace(
        record,
        cert_fingerprint_sha256=ca.fingerprint(cert),
        cert_serial=f"{cert.serial_number:x}",
        cert_not_after=format_time(cert.not_valid_after_utc),
    )
    write_install_bundle(authority, record, cert, Path(out), authority.broker())
    registry.with_device(record).save(authority.registry_path)
    return record


def write_crl(authority: Authority, out: Path, now: datetime) -> int:
    """Regenerate the CRL from the registry; returns how many certificates it lists."""
    registry = authority.registry()
    revoked = [
        (int(serial, 16), parse_time(when, "revoked_at"))
        for serial, when in registry.revoked_serials()
    ]
    number_path = authority.root / "crl.number"
    number = int(number_path.read_text()) + 1 if number_path.exists() else 1
    crl = ca.make_crl(authority.ca_key(), authority.ca_cert(), revoked, now, number)
    atomic_write(out, ca.crl_pem(crl), 0o644)
    atomic_write(number_path, f"{number}\n".encode(), 0o644)
    return len(revoked)


def revoke(authority_dir: Path, name: str, now: datetime) -> str:
    """Mark a device or client revoked; returns its kind. Regenerate the broker config after."""
    authority = Authority.load(authority_dir)
    registry = authority.registry()
    kind = "device" if name in registry.devices else "client"
    current = registry.devices.get(name) or registry.clients.get(name)
    if current is not None and current.status == "revoked":
        return kind  # already revoked: nothing to do
    registry.revoke(name, format_time(now)).save(authority.registry_path)
    log.warning("revoked %s %s", kind, name)
    return kind
