"""The authority directory on the ops side: CA, ops signing keys, adjudication key, registry.

Layout (``init-authority --out DIR``)::

    ca.key ca.crt                 TLS CA (ca.key: 0600; may be moved offline)
    ops-1.key ops-1.pub ...       Ed25519 watchlist/command signing keys (two-person rule)
    adjudication.key .pub         HPKE key of the control room: opens probe crops
    authority.json                public keys, threshold, trust serial (what devices pin)
    registry.json                 the fleet
    issued/DEVICE.crt             each device's last certificate (approve, renew)
    broker.json                   broker address and files, from broker-config (broker_info)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from lfrkit import tls
from lfrkit.console import UsageError
from lfrkit.files import archive, atomic_write, ensure_private_dir, read_bounded, read_private
from protocol import hpke
from protocol.encoding import Fields, canonical_json, parse_json_object
from protocol.errors import BadEncoding
from protocol.keys import (
    HpkePublicKey,
    key_id,
    load_hpke_public,
    load_signing_private,
    load_signing_public,
    private_pem,
    public_pem,
)
from protocol.trust import TrustPolicy
from provisioning import ca
from provisioning.broker_info import BROKER_JSON, BrokerInfo, read_broker_info
from provisioning.registry import Registry

FORMAT = "lfr-authority/1"


@dataclass(frozen=True)
class Authority:
    root: Path
    policy: TrustPolicy
    adjudication_key: HpkePublicKey
    # Raised by each trust rotation (provisioning.rotation); devices refuse a lower one.
    trust_serial: int = 0

    @property
    def registry_path(self) -> Path:
        return self.root / "registry.json"

    @property
    def ca_cert_path(self) -> Path:
        return self.root / "ca.crt"

    def issued_cert_path(self, device_id: str) -> Path:
        """The device certificate last issued (approve, renew): re-approval reuses it."""
        return self.root / "issued" / f"{device_id}.crt"

    def ca_cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(read_bounded(self.ca_cert_path, 65536, "CA cert"))

    def ca_key(self) -> ec.EllipticCurvePrivateKey:
        return tls.load_tls_key(read_private(self.root / "ca.key", "CA key"))

    def registry(self) -> Registry:
        return Registry.load(self.registry_path)

    @property
    def broker_path(self) -> Path:
        return self.root / BROKER_JSON

    def broker_info(self) -> BrokerInfo | None:
        """What ``broker-config`` recorded, if it ran."""
        return read_broker_info(self.broker_path)

    def broker(self) -> tuple[str, int] | None:
        """Where devices reach the broker, as recorded by ``broker-config``."""
        info = self.broker_info()
        return None if info is None else info.address

    def broker_dir(self) -> Path | None:
        """Where ``broker-config`` last wrote the broker's files, if it ran."""
        info = self.broker_info()
        return None if info is None else info.dir

    @classmethod
    def load(cls, root: Path) -> Authority:
        path = Path(root) / "authority.json"
        if not path.exists():
            raise UsageError(
                f"{root} is not an authority directory (no authority.json); "
                "create one with lfr-provision init-authority"
            )
        what = str(path)
        fields = Fields(
            parse_json_object(read_bounded(path, 1 << 20, "authority.json"), what, 1 << 20),
            what,
            allowed=frozenset({"format", "ops_keys", "threshold", "adjudication", "trust_serial"}),
        )
        if fields.text("format", max_len=32) != FORMAT:
            raise BadEncoding(f"{what}: format is not {FORMAT!r}")
        keys = []
        for index, item in enumerate(fields.items("ops_keys", 64, min_items=1)):
            entry = Fields(
                item, f"{what}: ops_keys[{index}]", allowed=frozenset({"kid", "file", "public_key"})
            )
            keys.append(
                load_signing_public(
                    entry.text("public_key", max_len=1024).encode(), f"{what}: ops_keys[{index}]"
                )
            )
        threshold = fields.integer("threshold", 1, len(keys))
        adjudication = fields.sub("adjudication", allowed=frozenset({"suite", "public_key"}))
        return cls(
            Path(root),
            TrustPolicy.of(keys, threshold),
            load_hpke_public(
                adjudication.text("public_key", max_len=8192).encode(), f"{what}: adjudication"
            ),
            fields.integer("trust_serial", 0, 2**53 - 1) if fields.has("trust_serial") else 0,
        )


def load_ops_signer(path: Path) -> tuple[ed25519.Ed25519PrivateKey, str]:
    key = load_signing_private(read_private(path, "ops signing key"), f"ops signing key {path}")
    return key, key_id(key.public_key())


def init_authority(
    out: Path,
    ops_keys: int,
    threshold: int,
    now: datetime,
    *,
    name: str = "lfr-edge fleet CA",
    force: bool = False,
) -> Authority:
    if not 1 <= threshold <= ops_keys:
        raise UsageError(f"--threshold {threshold} must be between 1 and --ops-keys {ops_keys}")
    out = Path(out)
    if (out / "authority.json").exists():
        if not force:
            raise UsageError(
                f"an authority already exists in {out}; refusing to overwrite it (--force "
                "archives it; every device must then be enrolled again)"
            )

        archive([p for p in out.iterdir() if p.name != "archive"], out, now)
    ensure_private_dir(out)
    ca_key, ca_cert = ca.create_ca(name, now)
    atomic_write(out / "ca.key", tls.tls_key_pem(ca_key), 0o600)
    atomic_write(out / "ca.crt", ca.cert_pem(ca_cert), 0o644)
    listed: list[dict[str, Any]] = []
    for index in range(1, ops_keys + 1):
        key = ed25519.Ed25519PrivateKey.generate()
        atomic_write(out / f"ops-{index}.key", private_pem(key), 0o600)
        atomic_write(out / f"ops-{index}.pub", public_pem(key.public_key()), 0o644)
        listed.append(
            {
                "kid": key_id(key.public_key()),
                "file": f"ops-{index}.pub",
                "public_key": public_pem(key.public_key()).decode("ascii"),
            }
        )
    adjudication = hpke.generate_key(hpke.DEFAULT_SUITE)
    atomic_write(out / "adjudication.key", private_pem(adjudication), 0o600)
    atomic_write(out / "adjudication.pub", public_pem(adjudication.public_key()), 0o644)
    doc = {
        "format": FORMAT,
        "ops_keys": listed,
        "threshold": threshold,
        "adjudication": {
            "suite": hpke.DEFAULT_SUITE,
            "public_key": public_pem(adjudication.public_key()).decode("ascii"),
        },
    }
    Registry.empty().save(out / "registry.json")
    # authority.json last: its presence marks a complete authority directory.
    atomic_write(out / "authority.json", canonical_json(doc) + b"\n", 0o644)
    return Authority.load(out)
