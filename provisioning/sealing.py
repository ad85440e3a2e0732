"""Keys at rest, technician side: seal a node's private keys with ``systemd-creds``.

``seal_keys`` encrypts each private key in ``<state>/keys`` with ``systemd-creds encrypt``
(``--with-key=auto``: the TPM2 and the host key where a TPM2 is present, the host key
``/var/lib/systemd/credential.secret`` otherwise), checks each credential decrypts to the
same bytes, and writes a drop-in for ``lfr-agent.service`` with one
``LoadCredentialEncrypted=`` line per key. systemd then decrypts them at start into the
service's private ``$CREDENTIALS_DIRECTORY`` (``agent.io.credentials``). The plain key files
are removed only when asked (``remove_plain``), after every credential decrypted correctly.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lfrkit.console import UsageError
from lfrkit.files import atomic_write, ensure_private_dir, read_private
from lfrkit.layout import DeviceLayout
from protocol import hpke
from protocol.encoding import canonical_json

log = logging.getLogger(__name__)
WITH_KEY = ("auto", "host", "tpm2", "host+tpm2")
CREDSTORE = Path("/etc/credstore.encrypted/lfr-agent")
DROPIN = Path("/etc/systemd/system/lfr-agent.service.d/credentials.conf")


@dataclass(frozen=True)
class Sealed:
    credentials: tuple[Path, ...]
    dropin: Path
    removed: tuple[Path, ...]


def _plain_keys(layout: DeviceLayout) -> list[Path]:
    keys = [layout.signing_key, layout.tls_key, *(layout.hpke_key(s) for s in hpke.SUITES)]
    return [k for k in keys if k.exists()]


def _creds(*args: str, data: bytes | None = None) -> bytes:
    tool = shutil.which("systemd-creds")
    if tool is None:
        raise UsageError("systemd-creds not found: keys can be sealed only on a systemd host")
    done = subprocess.run(  # noqa: S603 - fixed tool, arguments we built
        [tool, *args], input=data, capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"systemd-creds {args[0]} failed: {reason[-1] if reason else '?'}")
    return done.stdout


def seal_keys(
    state: Path,
    out: Path,
    *,
    dropin: Path = DROPIN,
    with_key: str = "auto",
    remove_plain: bool = False,
) -> Sealed:
    if with_key not in WITH_KEY:
        raise UsageError(f"--with-key must be one of {', '.join(WITH_KEY)}")
    layout = DeviceLayout(Path(state))
    plain = _plain_keys(layout)
    if not plain:
        raise UsageError(f"no private keys in {layout.keys_dir} to seal")
    out = ensure_private_dir(Path(out))
    written = []
    for key in plain:
        secret = read_private(key, "private key")
        target = out / f"{key.name}.cred"
        # The credential name is the key's file name: systemd checks it on decryption, so a
        # credential cannot be passed off under another key's name.
        sealed = _creds(
            "encrypt", f"--name={key.name}", f"--with-key={with_key}", "-", "-", data=secret
        )
        if _creds("decrypt", f"--name={key.name}", "-", "-", data=sealed) != secret:
            raise UsageError(f"{key.name}: the sealed credential does not decrypt to the key")
        atomic_write(target, sealed, 0o600)
        written.append(target)
    lines = [
        "# Written by lfr-provision seal-keys: the node's private keys, sealed with",
        "# systemd-creds, decrypted by systemd into $CREDENTIALS_DIRECTORY at start.",
        "[Service]",
        *(f"LoadCredentialEncrypted={c.name.removesuffix('.cred')}:{c}" for c in written),
    ]
    dropin = Path(dropin)
    dropin.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dropin, ("\n".join(lines) + "\n").encode(), 0o644)
    removed = []
    if remove_plain:
        # The marker first: device-init must still see an identity here and not make a new one.
        marker = {"sealed": [k.name for k in plain], "credentials": str(out)}
        atomic_write(layout.sealed_marker, canonical_json(marker) + b"\n", 0o600)
        for key in plain:
            key.unlink()
            removed.append(key)
        log.warning(
            "plain key files removed from %s; the keys now exist only sealed", layout.keys_dir
        )
    return Sealed(tuple(written), dropin, tuple(removed))
