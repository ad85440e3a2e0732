"""Trust rotation, ops side: change the ops keys, threshold or adjudication key devices pin.

A device accepts a new trust only when it is signed by ``threshold`` of the keys it pins
today (``protocol.trust.open_rotation``). ``rotate_trust`` checks that the given signers
reach the authority's current threshold *before* it writes anything, writes one install
bundle per active device (device.crt, ca.crt, trust.json and the signed ``trust.jws``) for
``device-install``, and only then records the new keys, threshold and serial in
authority.json, so devices approved later pin the new trust from the start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from lfrkit.console import UsageError
from lfrkit.files import atomic_write, read_bounded
from lfrkit.mqtt import MqttError, MqttSettings
from protocol import hpke
from protocol.encoding import canonical_json
from protocol.keys import (
    HpkePublicKey,
    key_id,
    load_hpke_public,
    load_signing_public,
    private_pem,
    public_pem,
)
from protocol.topics import DeviceTopics
from protocol.trust import (
    MAX_TRUST_BYTES,
    DeviceTrust,
    TrustPolicy,
    parse_device_trust,
    sign_rotation,
)
from provisioning.approve import write_install_bundle
from provisioning.authority import FORMAT, Authority, load_ops_signer
from provisioning.device import TRUST_JWS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rotation:
    serial: int
    policy: TrustPolicy
    bundles: tuple[Path, ...]  # one per active device


def new_ops_key(out: Path) -> tuple[Path, str]:
    """A new Ed25519 ops key at ``out`` (0600) and its public half beside it (``.pub``)."""
    out = Path(out)
    if out.exists():
        raise UsageError(f"{out} exists; refusing to overwrite a key")
    key = ed25519.Ed25519PrivateKey.generate()
    pub = out.with_suffix(".pub")
    atomic_write(out, private_pem(key), 0o600)
    atomic_write(pub, public_pem(key.public_key()), 0o644)
    return pub, key_id(key.public_key())


def _read_public(path: Path) -> ed25519.Ed25519PublicKey:
    return load_signing_public(read_bounded(path, 4096, "ops public key"), str(path))


def _read_adjudication(path: Path) -> HpkePublicKey:
    return load_hpke_public(read_bounded(path, 16384, "adjudication public key"), str(path))


def rotate_trust(
    authority_dir: Path,
    *,
    ops_public: list[Path],
    threshold: int,
    signers: list[Path],
    out: Path,
    adjudication_public: Path | None = None,
) -> Rotation:
    authority = Authority.load(authority_dir)
    keys = [_read_public(Path(p)) for p in ops_public]
    if len({key_id(k) for k in keys}) != len(keys):
        raise UsageError("an ops public key is given twice")
    if not 1 <= threshold <= len(keys):
        raise UsageError(f"--threshold {threshold} must be between 1 and {len(keys)} (new keys)")
    policy = TrustPolicy.of(keys, threshold)
    adjudication = (
        authority.adjudication_key
        if adjudication_public is None
        else _read_adjudication(Path(adjudication_public))
    )
    signed = [load_ops_signer(Path(p)) for p in signers]
    pinned = {kid for _, kid in signed if kid in authority.policy.ops_keys}
    if len(pinned) < authority.policy.threshold:
        raise UsageError(
            f"{len(pinned)} of the currently pinned ops keys signed, "
            f"{authority.policy.threshold} required: devices would refuse this rotation"
        )
    serial = authority.trust_serial + 1
    rotated = replace(authority, policy=policy, adjudication_key=adjudication, trust_serial=serial)
    registry = authority.registry()
    bundles = []
    for record in registry.devices.values():
        if record.status != "active":
            continue
        issued = authority.issued_cert_path(record.device_id)
        cert = x509.load_pem_x509_certificate(read_bounded(issued, 65536, "issued certificate"))
        bundle = Path(out) / record.device_id
        write_install_bundle(rotated, record, cert, bundle, authority.broker())
        trust = DeviceTrust(record.device_id, record.site, policy, adjudication, serial)
        atomic_write(bundle / TRUST_JWS, sign_rotation(trust, signed) + b"\n", 0o644)
        bundles.append(bundle)
    _save(rotated, {key_id(k): Path(p).name for k, p in zip(keys, ops_public, strict=True)})
    log.warning(
        "trust rotated to serial %d: %d ops keys, threshold %d", serial, len(keys), threshold
    )
    return Rotation(serial, policy, tuple(bundles))


def _save(authority: Authority, files: dict[str, str]) -> None:
    """authority.json with the new trust; the previous one is kept as authority.json.N."""
    path = authority.root / "authority.json"
    atomic_write(
        authority.root / f"authority.json.{authority.trust_serial - 1}", path.read_bytes(), 0o644
    )
    doc = {
        "format": FORMAT,
        "ops_keys": [
            {"kid": kid, "file": files[kid], "public_key": public_pem(key).decode("ascii")}
            for kid, key in authority.policy.ops_keys.items()
        ],
        "threshold": authority.policy.threshold,
        "adjudication": {
            "suite": hpke.suite_of(authority.adjudication_key),
            "public_key": public_pem(authority.adjudication_key).decode("ascii"),
        },
        "trust_serial": authority.trust_serial,
    }
    atomic_write(path, canonical_json(doc) + b"\n", 0o644)


def push_rotations(
    rotation_dir: Path,
    settings: MqttSettings,
    devices: list[str] | None = None,
) -> list[tuple[str, int]]:
    """Publish each device's ``trust.jws`` (from ``rotate-trust --out``) on its command topic,
    QoS 1; returns ``(device, PUBACK reason code)`` per device. The node verifies it against
    the keys it pins and restarts to apply it; ``device-install`` of the same bundle remains
    the way for a node that was offline (commands are not retained)."""
    from lfrkit.mqtt import MqttLink

    bundles = sorted(p.parent for p in Path(rotation_dir).glob(f"*/{TRUST_JWS}"))
    if devices:
        bundles = [b for b in bundles if b.name in devices]
    if not bundles:
        raise UsageError(f"no DEVICE/{TRUST_JWS} in {rotation_dir}")
    link = MqttLink(settings)
    try:
        link.connect()
    except MqttError as exc:
        raise UsageError(str(exc)) from None
    results = []
    try:
        for bundle in bundles:
            trust = parse_device_trust(
                read_bounded(bundle / "trust.json", MAX_TRUST_BYTES, "trust.json")
            )
            topic = DeviceTopics(trust.site, trust.device_id).command
            data = read_bounded(bundle / TRUST_JWS, MAX_TRUST_BYTES, TRUST_JWS)
            results.append((trust.device_id, link.wait_ack(link.publish(topic, data, qos=1))))
    finally:
        link.close()
    return results
