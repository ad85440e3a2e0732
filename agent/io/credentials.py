"""Where the node's private keys come from: systemd credentials, or plain files in state.

With the service's keys sealed (``lfr-provision seal-keys``: ``systemd-creds encrypt``, bound
to the TPM2 where there is one, to the host key otherwise), systemd decrypts them at start
into a private, non-swappable ``$CREDENTIALS_DIRECTORY`` that only this service sees
(``LoadCredentialEncrypted=``). A credential is named like the key file it replaces
(``signing.key``, ``tls.key``, ``hpke-x25519.key`` ...). Without credentials the keys are
read from ``<state>/keys`` as before, and ``lfr-agent check`` says they are unsealed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lfrkit.layout import DeviceLayout
from protocol import hpke

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory systemd handed the service its credentials in, if any."""
    value = (os.environ if environ is None else environ).get(CREDENTIALS_ENV, "")
    return Path(value) if value else None


def key_files(layout: DeviceLayout) -> tuple[Path, ...]:
    """Every private key a node may hold (the hybrid HPKE key is optional)."""
    return (
        layout.signing_key,
        layout.tls_key,
        *(layout.hpke_key(suite) for suite in hpke.SUITES),
    )


@dataclass(frozen=True)
class KeySource:
    """Resolves each key file to its sealed credential when systemd provided one."""

    layout: DeviceLayout
    credentials: Path | None = None

    def path(self, plain: Path) -> Path:
        if self.credentials is not None:
            sealed = self.credentials / plain.name
            if sealed.exists():
                return sealed
        return plain

    def is_sealed(self, plain: Path) -> bool:
        return self.path(plain) != plain

    def present(self) -> tuple[Path, ...]:
        """The key files this node has, sealed or not (by their plain path)."""
        return tuple(p for p in key_files(self.layout) if self.path(p).exists())

    def sealed(self) -> tuple[Path, ...]:
        return tuple(p for p in self.present() if self.is_sealed(p))

    def unsealed(self) -> tuple[Path, ...]:
        return tuple(p for p in self.present() if not self.is_sealed(p))
