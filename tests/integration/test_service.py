"""`make install-service` / `uninstall-service`, staged under DESTDIR (no systemd PID 1 here)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/opt/lfr-edge"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="install-service needs root"),
    pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd tools"),
]


def test_install_verify_and_uninstall_with_wipe(tmp_path: Path) -> None:
    env = {**os.environ, "DESTDIR": str(tmp_path)}
    done = subprocess.run(
        ["make", "-s", "install-service", f"PREFIX={PREFIX}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    unit = (tmp_path / "etc/systemd/system/lfr-agent.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateNetwork=no",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "DevicePolicy=closed",
        "MemoryMax=",
        "StateDirectory=lfr-agent",
        "ConfigurationDirectory=lfr-agent",
        "User=lfr-agent",
    ):
        assert line in unit, line
    assert "@PREFIX@" not in unit
    # systemd's own checker, on the unit pointed at the staged binaries.
    staged = tmp_path / "verify" / "lfr-agent.service"
    staged.parent.mkdir()
    staged.write_text(unit.replace(PREFIX, f"{tmp_path}{PREFIX}"))
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(staged)], capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(staged)],
        capture_output=True,
        text=True,
        check=False,
    )
    score = re.search(r"Overall exposure level for lfr-agent.service: ([0-9.]+)", security.stdout)
    assert score is not None, security.stdout + security.stderr
    assert float(score.group(1)) <= 2.0, security.stdout
    agent = tmp_path / PREFIX.lstrip("/") / ".venv/bin/lfr-agent"
    # apt's python3-picamera2 (the default camera) is importable only with system site packages.
    venv_cfg = (agent.parent.parent / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in venv_cfg
    assert (
        subprocess.run(
            [str(agent), "--help"],
            capture_output=True,
            check=False,
            env={"LFR_MODELS_DIR": f"{tmp_path}{PREFIX}/models"},
        ).returncode
        == 0
    )
    assert "lfr-agent:x:" in (tmp_path / "etc/passwd").read_text()
    state = tmp_path / "var/lib/lfr-agent"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "keys").stat().st_mode) == 0o700
    (state / "keys" / "signing.key").write_text("secret")
    keep = subprocess.run(
        ["make", "-s", "uninstall-service", f"PREFIX={PREFIX}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert keep.returncode == 0, keep.stderr
    assert not (tmp_path / "etc/systemd/system/lfr-agent.service").exists()
    assert (state / "keys" / "signing.key").exists()  # kept for a reinstall
    wipe = subprocess.run(
        ["make", "-s", "uninstall-service", f"PREFIX={PREFIX}", "WIPE=1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert wipe.returncode == 0, wipe.stderr
    assert not state.exists()
