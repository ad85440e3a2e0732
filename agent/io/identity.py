"""The installed device identity: who this device is, what it trusts, and its private keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.io.credentials import KeySource
from lfrkit.console import UsageError
from lfrkit.files import read_bounded, read_private
from lfrkit.layout import DeviceLayout
from protocol import hpke
from protocol.keys import HpkePrivateKey, load_hpke_private, load_signing_private
from protocol.trust import DeviceTrust, parse_device_trust


@dataclass(frozen=True)
class DeviceIdentity:
    layout: DeviceLayout
    trust: DeviceTrust
    signing_key: ed25519.Ed25519PrivateKey
    hpke_keys: dict[str, HpkePrivateKey]
    # Where the keys were read from (sealed systemd credentials or plain files).
    keys: KeySource

    @property
    def device_id(self) -> str:
        return self.trust.device_id

    @property
    def site(self) -> str:
        return self.trust.site


def load_identity(state: Path, credentials: Path | None = None) -> DeviceIdentity:
    """The identity in ``state``; private keys from ``credentials`` (a systemd
    ``$CREDENTIALS_DIRECTORY``) where it holds them, from ``state/keys`` otherwise."""
    layout = DeviceLayout(Path(state))
    source = KeySource(layout, credentials)
    if not layout.trust.exists():
        raise UsageError(
            f"{state} has no installed identity (trust.json); run "
            "lfr-provision device-init, approve and device-install first"
        )
    trust = parse_device_trust(read_bounded(layout.trust, 256 * 1024, "trust.json"))
    signing = load_signing_private(read_private(source.path(layout.signing_key), "signing key"))
    keys = {}
    for suite in hpke.SUITES:
        path = source.path(layout.hpke_key(suite))
        if path.exists():
            keys[suite] = load_hpke_private(read_private(path, "HPKE key"), str(path))
    return DeviceIdentity(layout, trust, signing, keys, source)
