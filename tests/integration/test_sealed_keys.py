"""Keys at rest (review finding 5): a node's private keys sealed with the real systemd-creds.

What runs for real here: ``lfr-provision seal-keys`` calling ``systemd-creds encrypt`` (the
host key; this machine has no TPM2 and its PID 1 is not systemd), the credentials decrypted
with ``systemd-creds decrypt`` into a directory exactly as ``LoadCredentialEncrypted=`` does
for the service, and ``lfr-agent check`` reading the keys from ``$CREDENTIALS_DIRECTORY``
and connecting to the real TLS broker with the sealed TLS key. What cannot run here: systemd
starting the unit with the drop-in (no systemd as PID 1 in this container).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.check import run_checks
from agent.cli import main as agent_main
from agent.io.identity import load_identity
from protocol.enrolment import parse_request
from protocol.keys import public_pem
from provisioning.cli import main as provision_main
from tests.fakes import use_fake_picamera2
from tools.broker import Broker

pytestmark = pytest.mark.integration


def _systemd_creds_unusable(tmp: Path) -> str | None:
    tool = shutil.which("systemd-creds")
    if tool is None:
        return "systemd-creds is not installed"
    done = subprocess.run(
        [tool, "encrypt", "--name=probe", "--with-key=host", "-", str(tmp / "probe.cred")],
        input=b"probe",
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return f"systemd-creds cannot encrypt here: {done.stderr.decode().strip()}"
    return None


def _load_credentials(dropin: Path, into: Path) -> Path:
    """What systemd does for each ``LoadCredentialEncrypted=NAME:PATH`` at service start."""
    into.mkdir(mode=0o700)
    for line in dropin.read_text().splitlines():
        if line.startswith("LoadCredentialEncrypted="):
            name, path = line.removeprefix("LoadCredentialEncrypted=").split(":", 1)
            subprocess.run(
                ["systemd-creds", "decrypt", f"--name={name}", path, str(into / name)],
                check=True,
                capture_output=True,
            )
            (into / name).chmod(0o400)
    into.chmod(0o500)
    return into


def test_sealed_keys_are_read_from_the_credentials_directory(
    index: dict[str, Any],
    broker: Broker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reason = _systemd_creds_unusable(tmp_path)
    if reason is not None:
        pytest.skip(reason)
    device = index["devices"][0]
    config, state = Path(device["config"]), Path(device["state_dir"])
    rows = {r.name: r for r in run_checks(config, broker=False)}
    assert rows["keys"].ok and rows["keys"].detail.startswith("UNSEALED: ")
    assert "signing.key" in rows["keys"].detail

    dropin = tmp_path / "lfr-agent.service.d" / "credentials.conf"
    argv = ["seal-keys", "--state", str(state), "--out", str(tmp_path / "store")]
    argv += ["--dropin", str(dropin), "--with-key", "host", "--remove-plain"]
    assert provision_main(argv) == 0
    assert sorted(p.name for p in (state / "keys").iterdir()) == ["sealed.json"]
    sealed = sorted((tmp_path / "store").iterdir())
    assert [p.name for p in sealed] == [
        "hpke-mlkem768x25519.key.cred",
        "hpke-x25519.key.cred",
        "signing.key.cred",
        "tls.key.cred",
    ]
    assert all(b"PRIVATE KEY" not in p.read_bytes() for p in sealed)
    credentials = _load_credentials(dropin, tmp_path / "credentials")

    # The agent's own identity loader finds every key in the credentials directory.
    identity = load_identity(state, credentials)
    request = parse_request((state / "request.json").read_bytes())
    assert public_pem(identity.signing_key.public_key()) == public_pem(request.signing_key)
    assert set(identity.hpke_keys) == set(request.hpke_keys)

    # `lfr-agent check` as the unit's ExecStartPre runs it: keys sealed, the TLS key from
    # the credentials accepted by the real broker; the camera (picamera2:0) not opened.
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    use_fake_picamera2(monkeypatch)
    capsys.readouterr()
    assert agent_main(["check", "--config", str(config), "--no-camera"]) == 0
    out = capsys.readouterr().out
    assert "sealed: 4 keys from systemd credentials" in out and "check passed" in out
    assert "TLS + client certificate accepted" in out

    # Outside the service the keys are nowhere to be read, and check says why.
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    rows = {r.name: r for r in run_checks(config, broker=False)}
    assert not rows["keys"].ok and "keys are sealed" in rows["keys"].detail
    # device-init must not take the missing plain keys for a missing identity.
    site, name = device["site"], device["id"]
    assert provision_main(["device-init", "--id", name, "--site", site, "--state", str(state)]) == 0
    assert not (state / "keys" / "signing.key").exists()
    # A renewal installs on the sealed node: the certificate is matched to the TLS key
    # through the CSR in the node's own request.json; another node's certificate is not.
    renewal = tmp_path / "renewal"
    authority = index["authority_dir"]
    assert provision_main(["renew", name, "--authority", authority, "--out", str(renewal)]) == 0
    assert provision_main(["device-install", str(renewal), "--state", str(state)]) == 0
    assert (state / "device.crt").read_bytes() == (renewal / "device.crt").read_bytes()
    other = index["devices"][1]
    (renewal / "device.crt").write_bytes(Path(other["cert"]).read_bytes())
    capsys.readouterr()
    assert provision_main(["device-install", str(renewal), "--state", str(state)]) == 2
    assert "not issued for this device's TLS key" in capsys.readouterr().err
