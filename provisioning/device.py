"""Enrolment, device side (the technician, on the node): device-init and device-install.

device-init creates the device's keys and a signed enrolment request; ops approve it
(``provisioning.approve``); device-install checks the bundle ops sent back against the
device's own keys, installs it and writes agent.toml. Private keys are created on the device
and never leave it. Every step can be re-run safely: it does nothing when the result is
already in place, and it never replaces an existing identity unless told to (``force``),
which archives the old one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from lfrkit import tls
from lfrkit.console import UsageError
from lfrkit.files import archive, atomic_write, ensure_private_dir, read_bounded, read_private
from lfrkit.layout import DeviceLayout
from lfrkit.toml_text import render_config
from protocol import hpke
from protocol.encoding import canonical_json, parse_json_object
from protocol.enrolment import EnrolmentRequest, parse_request, sign_request
from protocol.keys import private_pem
from protocol.names import check_name
from protocol.trust import MAX_TRUST_BYTES, DeviceTrust, open_rotation, parse_device_trust
from provisioning import ca
from provisioning.broker_info import BROKER_JSON, read_broker_info

TRUST_JWS = "trust.jws"  # a signed trust rotation in an install bundle (provisioning.rotation)

log = logging.getLogger(__name__)


def read_identity(layout: DeviceLayout) -> tuple[str, str]:
    doc = parse_json_object(
        read_bounded(layout.identity, 4096, "identity.json"), str(layout.identity), 4096
    )
    return str(doc.get("device_id")), str(doc.get("site"))


def device_init(
    device_id: str, site: str, state: Path, now: datetime, force: bool = False
) -> tuple[Path, bool]:
    """Create the device's keys and signed enrolment request.

    Returns (request.json, created). Re-running for the same id and site does nothing.
    """
    layout = DeviceLayout(Path(state))
    check_name(device_id, "device id")
    check_name(site, "site")
    if layout.has_identity():
        if read_identity(layout) == (device_id, site) and not force:
            return layout.request, False
        if not force:
            current = "@".join(read_identity(layout))
            raise UsageError(
                f"{state} already holds the identity {current}; pass --force to "
                "archive it and create a new one"
            )
        archive(
            [
                layout.keys_dir,
                layout.identity,
                layout.request,
                layout.cert,
                layout.ca_cert,
                layout.trust,
                layout.watchlist,
                layout.counters,
            ],
            layout.root,
            now,
        )
    ensure_private_dir(layout.root)
    ensure_private_dir(layout.keys_dir)
    signing = ed25519.Ed25519PrivateKey.generate()
    hpke_keys = {suite: hpke.generate_key(suite) for suite in hpke.SUITES}
    tls_key = tls.new_tls_key()
    for suite, key in hpke_keys.items():
        atomic_write(layout.hpke_key(suite), private_pem(key), 0o600)
    atomic_write(layout.tls_key, tls.tls_key_pem(tls_key), 0o600)
    request = EnrolmentRequest(
        device_id,
        site,
        now,
        signing.public_key(),
        {s: k.public_key() for s, k in hpke_keys.items()},
        ca.make_csr(tls_key, device_id),
    )
    atomic_write(
        layout.identity, canonical_json({"device_id": device_id, "site": site}) + b"\n", 0o644
    )
    atomic_write(layout.request, sign_request(request, signing), 0o644)
    # The signing key last: its presence marks a complete identity.
    atomic_write(layout.signing_key, private_pem(signing), 0o600)
    return layout.request, True


@dataclass(frozen=True)
class Installed:
    trust: DeviceTrust
    config: Path | None
    changed: bool


def _bundle_broker(bundle: Path) -> tuple[str, int] | None:
    info = read_broker_info(bundle / BROKER_JSON)
    return None if info is None else info.address


def _bundle_trust(bundle: Path, layout: DeviceLayout, device_id: str, site: str) -> DeviceTrust:
    """The trust this install pins: first install, same trust, or a signed rotation.

    Once a device pins ops keys, only a rotation signed by ``threshold`` of them may change
    the keys, the threshold or the adjudication key (``--force`` does not bypass this: a
    technician who must start again runs ``device-init --force`` and gets a new identity
    that ops approve afresh).
    """
    offered = parse_device_trust(read_bounded(bundle / "trust.json", MAX_TRUST_BYTES, "trust.json"))
    if (offered.device_id, offered.site) != (device_id, site):
        raise UsageError(
            f"bundle is for {offered.device_id}@{offered.site}, this device is {device_id}@{site}"
        )
    if not layout.trust.exists():
        return offered  # first install: the technician vouches for what ops approved
    current = parse_device_trust(read_bounded(layout.trust, MAX_TRUST_BYTES, "pinned trust.json"))
    if current.same_trust(offered):
        return current
    rotation_path = bundle / TRUST_JWS
    if not rotation_path.exists():
        raise UsageError(
            "bundle trust.json changes the pinned ops keys, threshold or adjudication key "
            f"and holds no {TRUST_JWS} signed by {current.policy.threshold} of the pinned keys; "
            "refused"
        )
    rotated = open_rotation(
        read_bounded(rotation_path, MAX_TRUST_BYTES, TRUST_JWS), current, MAX_TRUST_BYTES
    )
    if not rotated.same_trust(offered):
        raise UsageError(f"bundle trust.json differs from the trust signed in {TRUST_JWS}")
    log.warning(
        "trust rotation to serial %d accepted: %d ops keys, threshold %d",
        rotated.serial,
        len(rotated.policy.ops_keys),
        rotated.policy.threshold,
    )
    return rotated


def _tls_public(layout: DeviceLayout) -> object:
    """This device's TLS public key: from its key, or (keys sealed and the plain files
    removed) from the CSR in its own request.json, which carries the same public key."""
    if layout.tls_key.exists() or not layout.sealed_marker.exists():
        return tls.load_tls_key(read_private(layout.tls_key, "TLS key")).public_key()
    return parse_request(read_bounded(layout.request, 64 * 1024, "request.json")).csr.public_key()


def device_install(
    bundle: Path,
    state: Path,
    *,
    config: Path | None = None,
    broker: tuple[str, int] | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> Installed:
    """Check what ops approved against this device's own keys, then install it.

    Also writes the agent config when ``config`` is given (broker from ``broker`` or the
    bundle's broker.json). An existing config with other content is kept unless ``force``.
    """
    now = now or datetime.now(UTC)
    layout = DeviceLayout(Path(state))
    if not layout.has_identity():
        raise UsageError(f"{state} holds no device identity; run lfr-provision device-init first")
    device_id, site = read_identity(layout)
    bundle = Path(bundle)
    trust = _bundle_trust(bundle, layout, device_id, site)
    trust_bytes = trust.to_bytes()
    cert_pem = read_bounded(bundle / "device.crt", 65536, "device.crt")
    ca_pem = read_bounded(bundle / "ca.crt", 65536, "ca.crt")
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
    except ValueError as exc:
        raise UsageError(f"bundle certificate is not PEM X.509: {exc}") from None
    if cert.public_key() != _tls_public(layout):
        raise UsageError("device.crt was not issued for this device's TLS key")
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise UsageError("device.crt is not issued by the bundled ca.crt") from None
    if layout.ca_cert.exists() and layout.ca_cert.read_bytes() != ca_pem and not force:
        raise UsageError(f"{state} trusts another CA; pass --force to archive it and switch")
    changed = False
    for path, data in (
        (layout.ca_cert, ca_pem),
        (layout.cert, cert_pem),
        (layout.trust, trust_bytes),
    ):
        if not path.exists() or path.read_bytes() != data:
            if force and path == layout.ca_cert and path.exists():
                archive([layout.ca_cert, layout.cert, layout.trust], layout.root, now)
            atomic_write(path, data, 0o644)
            changed = True
    if config is not None:
        changed |= _write_config(
            Path(config), layout, broker or _bundle_broker(bundle), force=force, now=now
        )
    log.info("installed identity for %s@%s", device_id, site)
    return Installed(trust, config, changed)


def _write_config(
    path: Path,
    layout: DeviceLayout,
    broker: tuple[str, int] | None,
    *,
    force: bool,
    now: datetime,
) -> bool:
    device_id, site = read_identity(layout)
    if broker is None:
        raise UsageError(
            "no broker address: pass --broker HOST:PORT (or ask ops to approve with --broker)"
        )
    text = render_config(
        {
            "device": {"id": device_id, "site": site, "state_dir": str(layout.root.resolve())},
            "broker": {"host": broker[0], "port": broker[1]},
        },
        header="lfr-agent configuration, written by lfr-provision device-install.\n"
        "Keys and certificates live in state_dir; see docs/operator-guide.md.",
    )
    if path.exists():
        if path.read_text() == text:
            return False
        if not force:
            raise UsageError(
                f"{path} exists with other settings; pass --force to archive it and write a new one"
            )
        archive([path], path.parent, now)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode(), 0o644)
    return True
