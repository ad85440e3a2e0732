"""Device enrolment: device-init (on the device) -> approve (ops) -> device-install (device).

Private keys are created on the device and never leave it; ops see only public keys and a CSR.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from agent.io.console import UsageError
from agent.io.files import atomic_write, ensure_private_dir, read_bounded, read_private
from agent.io.layout import DeviceLayout
from protocol import hpke
from protocol.encoding import canonical_json, format_time, parse_json_object
from protocol.enrolment import EnrolmentRequest, parse_request, sign_request
from protocol.keys import private_pem, public_pem
from protocol.names import check_name
from protocol.trust import DeviceTrust, parse_device_trust
from provisioning import ca
from provisioning.authority import Authority
from provisioning.registry import DeviceRecord

log = logging.getLogger(__name__)


def device_init(device_id: str, site: str, state: Path, now: datetime) -> Path:
    """Create the device's keys and its signed enrolment request; returns request.json."""
    layout = DeviceLayout(Path(state))
    check_name(device_id, "device id")
    check_name(site, "site")
    if layout.signing_key.exists():
        raise UsageError(f"{state} already holds a device identity; refusing to overwrite it")
    ensure_private_dir(layout.root)
    ensure_private_dir(layout.keys_dir)
    signing = ed25519.Ed25519PrivateKey.generate()
    hpke_keys = {suite: hpke.generate_key(suite) for suite in hpke.SUITES}
    tls = ca.new_tls_key()
    for suite, key in hpke_keys.items():
        atomic_write(layout.hpke_key(suite), private_pem(key), 0o600)
    atomic_write(layout.tls_key, ca.tls_key_pem(tls), 0o600)
    request = EnrolmentRequest(
        device_id,
        site,
        now,
        signing.public_key(),
        {s: k.public_key() for s, k in hpke_keys.items()},
        ca.make_csr(tls, device_id),
    )
    atomic_write(
        layout.identity, canonical_json({"device_id": device_id, "site": site}) + b"\n", 0o644
    )
    atomic_write(layout.request, sign_request(request, signing), 0o644)
    # The signing key last: its presence marks a complete identity.
    atomic_write(layout.signing_key, private_pem(signing), 0o600)
    return layout.request


def approve(request_path: Path, authority_dir: Path, out: Path, now: datetime) -> DeviceRecord:
    """Verify a device's request, issue its certificate, record it, write its install bundle."""
    authority = Authority.load(authority_dir)
    request = parse_request(read_bounded(request_path, 64 * 1024, "request.json"))
    registry = authority.registry()
    signing_pem = public_pem(request.signing_key).decode("ascii")
    existing = registry.devices.get(request.device_id)
    if existing is not None and existing.signing_public_key != signing_pem:
        raise UsageError(
            f"device {request.device_id!r} is already enrolled with other keys; revoke it first"
        )
    if existing is not None and existing.status == "revoked":
        raise UsageError(f"device {request.device_id!r} is revoked; it cannot be re-approved")
    public = request.csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise UsageError("request.json: the CSR key must be an EC (P-256) key")
    ca_cert = authority.ca_cert()
    cert = ca.issue_client_cert(
        authority.ca_key(),
        ca_cert,
        public,
        common_name=request.device_id,
        organizational_unit=f"device:{request.site}",
        now=now,
    )
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
    trust = DeviceTrust(
        request.device_id, request.site, authority.policy, authority.adjudication_key
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "device.crt", ca.cert_pem(cert), 0o644)
    atomic_write(out / "ca.crt", ca.cert_pem(ca_cert), 0o644)
    atomic_write(out / "trust.json", canonical_json(trust.to_json()) + b"\n", 0o644)
    registry.with_record(record).save(authority.registry_path)
    log.info("approved device %s at site %s", request.device_id, request.site)
    return record


def read_identity(layout: DeviceLayout) -> tuple[str, str]:
    doc = parse_json_object(
        read_bounded(layout.identity, 4096, "identity.json"), str(layout.identity), 4096
    )
    return str(doc.get("device_id")), str(doc.get("site"))


def device_install(bundle: Path, state: Path) -> DeviceTrust:
    """Check what ops approved against this device's own keys, then install it."""
    layout = DeviceLayout(Path(state))
    if not layout.signing_key.exists():
        raise UsageError(f"{state} holds no device identity; run lfr-provision device-init first")
    device_id, site = read_identity(layout)
    bundle = Path(bundle)
    trust_bytes = read_bounded(bundle / "trust.json", 256 * 1024, "trust.json")
    trust = parse_device_trust(trust_bytes)
    if (trust.device_id, trust.site) != (device_id, site):
        raise UsageError(
            f"bundle is for {trust.device_id}@{trust.site}, this device is {device_id}@{site}"
        )
    cert_pem = read_bounded(bundle / "device.crt", 65536, "device.crt")
    ca_pem = read_bounded(bundle / "ca.crt", 65536, "ca.crt")
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
    except ValueError as exc:
        raise UsageError(f"bundle certificate is not PEM X.509: {exc}") from None
    tls = ca.load_tls_key(read_private(layout.tls_key, "TLS key"))
    if cert.public_key() != tls.public_key():
        raise UsageError("device.crt was not issued for this device's TLS key")
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise UsageError("device.crt is not issued by the bundled ca.crt") from None
    atomic_write(layout.ca_cert, ca_pem, 0o644)
    atomic_write(layout.cert, cert_pem, 0o644)
    atomic_write(layout.trust, trust_bytes, 0o644)
    log.info("installed identity for %s@%s", device_id, site)
    return trust
