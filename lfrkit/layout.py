"""Where a device keeps its identity and state (``/var/lib/lfr-agent`` in production)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from protocol import hpke

_HPKE_FILES = {hpke.X25519_CHACHA: "hpke-x25519.key", hpke.HYBRID_CHACHA: "hpke-mlkem768x25519.key"}


@dataclass(frozen=True)
class DeviceLayout:
    root: Path

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def signing_key(self) -> Path:
        return self.keys_dir / "signing.key"

    def hpke_key(self, suite: str) -> Path:
        return self.keys_dir / _HPKE_FILES[suite]

    @property
    def tls_key(self) -> Path:
        return self.keys_dir / "tls.key"

    @property
    def sealed_marker(self) -> Path:
        """Written by ``lfr-provision seal-keys --remove-plain``: the keys exist only sealed."""
        return self.keys_dir / "sealed.json"

    def has_identity(self) -> bool:
        """Whether device-init completed here (keys plain, or sealed and removed)."""
        return self.signing_key.exists() or self.sealed_marker.exists()

    @property
    def identity(self) -> Path:
        """``{"device_id", "site"}`` written by device-init."""
        return self.root / "identity.json"

    @property
    def request(self) -> Path:
        return self.root / "request.json"

    @property
    def cert(self) -> Path:
        return self.root / "device.crt"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def trust(self) -> Path:
        return self.root / "trust.json"

    @property
    def watchlist(self) -> Path:
        """The installed bundle exactly as received (sealed to this device)."""
        return self.root / "watchlist.jws"

    @property
    def counters(self) -> Path:
        """Anti-rollback floors: highest watchlist version and command counter accepted."""
        return self.root / "counters.json"
