"""Enrolment, ops side: approve a device's request and write its install bundle.

The device's request holds public keys and a CSR only (``provisioning.device`` made it). ops
verify it, issue the TLS certificate, record the device in the registry and hand back a bundle
(device.crt, ca.crt, trust.json, broker.json) for ``device-install``. Approving the same
request again re-issues nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from lfrkit.console import UsageError
from lfrkit.files import atomic_write, ensure_private_dir, read_bounded
from protocol.encoding import format_time
from protocol.enrolment import parse_request
from protocol.keys import public_pem
from protocol.trust import DeviceTrust
from provisioning import ca
from provisioning.authority import Authority
from provisioning.broker_info import BROKER_JSON, BrokerInfo, write_broker_info
from provisioning.registry import DeviceRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Approval:
    record: DeviceRecord
    reused: bool  # True when an earlier approval of the same request was re-issued as is


def approve(
    request_path: Path,
    authority_dir: Path,
    out: Path,
    now: datetime,
    broker: tuple[str, int] | None = None,
) -> Approval:
    """Verify a device's request, issue its certificate, record it, write its install bundle."""
    authority = Authority.load(authority_dir)
    request = parse_request(read_bounded(request_path, 64 * 1024, "request.json"))
    registry = authority.registry()
    signing_pem = public_pem(request.signing_key).decode("ascii")
    existing = registry.devices.get(request.device_id)
    if existing is not None and existing.status == "revoked":
        raise UsageError(f"device {request.device_id!r} is revoked; enrol it under a new id")
    if existing is not None and existing.signing_public_key != signing_pem:
        raise UsageError(
            f"device {request.device_id!r} is already enrolled with other keys; revoke it first"
        )
    if registry.name_taken(request.device_id) and existing is None:
        raise UsageError(f"{request.device_id!r} is already the name of a central client")
    public = request.csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise UsageError("request.json: the CSR key must be an EC (P-256) key")
    ca_cert = authority.ca_cert()
    issued = authority.issued_cert_path(request.device_id)
    cert = None
    if existing is not None and issued.exists():
        previous = x509.load_pem_x509_certificate(issued.read_bytes())
        if previous.public_key() == public and previous.not_valid_after_utc > now:
            cert = previous  # same request approved again: same certificate, same record
    reused = cert is not None
    if cert is None:
        cert = ca.issue_client_cert(
            authority.ca_key(),
            ca_cert,
            public,
            common_name=request.device_id,
            organizational_unit=f"device:{request.site}",
            now=now,
        )
        ensure_private_dir(issued.parent)
        atomic_write(issued, ca.cert_pem(cert), 0o644)
    record = DeviceRecord(
        device_id=request.device_id,
        site=request.site,
        status="active",
        signing_public_key=signing_pem,
        hpke_public_keys={s: public_pem(k).decode("ascii") for s, k in request.hpke_keys.items()},
        cert_fingerprint_sha256=ca.fingerprint(cert),
        cert_serial=f"{cert.serial_number:x}",
        cert_not_after=format_time(cert.not_valid_after_utc),
        enrolled_at=existing.enrolled_at if existing else format_time(now),
    )
    write_install_bundle(authority, record, cert, Path(out), broker or authority.broker())
    registry.with_device(record).save(authority.registry_path)
    log.info("approved device %s at site %s", request.device_id, request.site)
    return Approval(record, reused)


def write_install_bundle(
    authority: Authority,
    record: DeviceRecord,
    cert: x509.Certificate,
    out: Path,
    broker: tuple[str, int] | None,
) -> None:
    trust = DeviceTrust(
        record.device_id,
        record.site,
        authority.policy,
        authority.adjudication_key,
        authority.trust_serial,
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "device.crt", ca.cert_pem(cert), 0o644)
    atomic_write(out / "ca.crt", ca.cert_pem(authority.ca_cert()), 0o644)
    atomic_write(out / "trust.json", trust.to_bytes(), 0o644)
    if broker is not None:
        write_broker_info(out / BROKER_JSON, BrokerInfo(*broker))
