"""`make deb` (tools/deb/build.sh): the amd64 package built once, then read back with dpkg-deb.

Building downloads the target's wheels from the registry (about 30 s here); skipped with the
reason where dpkg-deb or the registry is absent. lintian runs inside the build when installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "opt/lfr-edge"

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="dpkg-deb is absent (not a Debian system)"
)


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    env = {
        **os.environ,
        "ARCH": "amd64",
        "OUT": str(out),
        "PYTHON": sys.executable,
        # Its own staging area, so that a concurrent `make deb` is not disturbed.
        "DEB_WORK": str(out / "work"),
    }
    built = subprocess.run(
        [str(ROOT / "tools/deb/build.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode == 3:  # tools/deb/build.sh: pip download failed
        pytest.skip(f"the registry is not reachable: {built.stderr.strip()[-200:]}")
    assert built.returncode == 0, built.stderr[-3000:]
    if shutil.which("lintian"):
        assert "lintian: no errors" in built.stderr
    return Path(built.stdout.strip().splitlines()[-1])


def test_name_and_sha256_beside_it(deb: Path) -> None:
    assert re.fullmatch(r"lfr-edge_\d+\.\d+\.\d+_amd64\.deb", deb.name)
    line = deb.with_name(deb.name + ".sha256").read_text()
    assert line == f"{hashlib.sha256(deb.read_bytes()).hexdigest()}  {deb.name}\n"


def test_control_fields(deb: Path) -> None:
    control = run("dpkg-deb", "-f", str(deb))
    assert "Package: lfr-edge\n" in control
    assert "Architecture: amd64\n" in control
    depends = re.search(r"^Depends: (.*)$", control, re.M)
    assert depends is not None
    assert depends.group(1) == "python3 (>= 3.11), python3 (<< 3.12), python3-venv, systemd"
    assert "Recommends: python3-picamera2\n" in control
    info = run("dpkg-deb", "-I", str(deb))
    for script in ("postinst", "prerm", "postrm", "md5sums"):
        assert re.search(rf"^\s+\d+ bytes,\s+\d+ lines\s+\*?\s+{script}\b", info, re.M), script


def test_contents(deb: Path) -> None:
    listing = run("dpkg-deb", "-c", str(deb))
    rows = [line.split() for line in listing.splitlines()]
    paths = {row[-1].removeprefix("./"): row for row in rows}
    assert all(row[1] == "root/root" for row in rows)
    for name in ("lfr-agent", "lfr-provision"):
        assert paths[f"usr/bin/{name}"][0] == "-rwxr-xr-x"
        assert f"usr/share/man/man1/{name}.1.gz" in paths
    for needed in (
        "lib/systemd/system/lfr-agent.service",
        "usr/lib/sysusers.d/lfr-agent.conf",
        "usr/lib/tmpfiles.d/lfr-agent.conf",
        "usr/share/doc/lfr-edge/copyright",
        "usr/share/doc/lfr-edge/changelog.gz",
        f"{PREFIX}/models/MANIFEST.json",
        f"{PREFIX}/wheels/requirements.txt",
    ):
        assert needed in paths, needed
    for model in (ROOT / "models").glob("*.tflite"):
        assert f"{PREFIX}/models/{model.name}" in paths
    wheels = [p for p in paths if p.startswith(f"{PREFIX}/wheels/") and p.endswith(".whl")]
    # Binary wheels for the target only, and the project itself.
    assert any("/lfr_edge-" in w for w in wheels)
    assert any("/numpy-1." in w for w in wheels), "numpy < 2 (apt's compiled modules)"
    assert not [w for w in wheels if "aarch64" in w or "win" in w or "macosx" in w]
    # Nothing that is a secret or state: keys are the node's own, made by lfr-provision.
    assert not [p for p in paths if p.startswith(("etc/", "var/")) or p.endswith(".key")]


def test_files_agree_with_the_tree(deb: Path, tmp_path: Path) -> None:
    run("dpkg-deb", "-x", str(deb), str(tmp_path))
    unit = (tmp_path / "lib/systemd/system/lfr-agent.service").read_text()
    assert "@PREFIX@" not in unit
    assert "ExecStart=/opt/lfr-edge/.venv/bin/lfr-agent run" in unit
    assert "Environment=LFR_MODELS_DIR=/opt/lfr-edge/models" in unit
    wrapper = (tmp_path / "usr/bin/lfr-agent").read_text()
    assert "LFR_MODELS_DIR=${LFR_MODELS_DIR:-/opt/lfr-edge/models}" in wrapper
    assert 'exec /opt/lfr-edge/.venv/bin/lfr-agent "$@"' in wrapper
    wheels = tmp_path / PREFIX / "wheels"
    lock = (wheels / "requirements.txt").read_text().splitlines()
    assert len(lock) == len(list(wheels.glob("*.whl")))
    for wheel in wheels.glob("*.whl"):
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert any(line.endswith(f"--hash=sha256:{digest}") for line in lock), wheel.name
    for model in (ROOT / "models").glob("*.tflite"):
        assert (tmp_path / PREFIX / "models" / model.name).read_bytes() == model.read_bytes()


def test_maintainer_scripts(deb: Path, tmp_path: Path) -> None:
    run("dpkg-deb", "-e", str(deb), str(tmp_path))
    text = (tmp_path / "postinst").read_text()
    # What runs, not what the comments say.
    postinst = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "python3 -m venv --system-site-packages" in postinst
    assert "--no-index" in postinst and "--require-hashes" in postinst
    assert "systemd-sysusers" in postinst and "systemd-tmpfiles --create" in postinst
    # Never keys, never enabled before provisioning.
    assert "device-init" not in postinst and "keygen" not in postinst
    assert "enable" not in postinst
    postrm = (tmp_path / "postrm").read_text()
    remove, purge = postrm.split("purge)", 1)
    assert "/var/lib/lfr-agent" not in remove.split("remove)", 1)[1]
    assert "/var/lib/lfr-agent /etc/lfr-agent" in purge
    for script in ("postinst", "prerm", "postrm"):
        assert subprocess.run(["sh", "-n", str(tmp_path / script)], check=False).returncode == 0
