"""The demo's pictures: pinned files from registry packages, fetched once and checked against
their sha256 (official portraits in the ``face_recognition`` 1.3.0 sdist's test images, public
domain; NASA's astronaut photo in scikit-image 0.24.0). The bench uses them too when
../shared is absent.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("DEMO_DIR", ROOT / ".demo"))
CACHE = Path(os.environ.get("DEMO_CACHE", WORK / "cache"))
# (pip requirement, extra pip args, file, sha256, {member in archive: local name})
ASSETS = [
    (
        "face_recognition==1.3.0",
        ["--no-binary", ":all:"],
        "face_recognition-1.3.0.tar.gz",
        "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
        {
            "face_recognition-1.3.0/tests/test_images/obama.jpg": "obama-1.jpg",
            "face_recognition-1.3.0/tests/test_images/obama2.jpg": "obama-2.jpg",
            "face_recognition-1.3.0/tests/test_images/obama3.jpg": "obama-3.jpg",
            "face_recognition-1.3.0/tests/test_images/biden.jpg": "biden.jpg",
        },
    ),
    # A fixed platform tag: the wheel is only unpacked for its data, never installed.
    (
        "scikit-image==0.24.0",
        [
            "--only-binary",
            ":all:",
            "--platform",
            "manylinux_2_17_x86_64",
            "--python-version",
            "3.11",
        ],
        "scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c",
        {"skimage/data/astronaut.png": "astronaut.png"},
    ),
]


def fetch_assets(
    cache: Path, assets: list[tuple[str, list[str], str, str, dict[str, str]]] | None = None
) -> dict[str, Path]:
    """The pictures of ``assets`` (default: the demo's) in ``cache``, fetched once."""
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for requirement, args, filename, sha256, members in ASSETS if assets is None else assets:
        archive = cache / filename
        if not all((cache / name).exists() for name in members.values()):
            if not archive.exists():
                print(f"fetching {requirement} from the package registry (once) ...", flush=True)
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--no-deps",
                        *args,
                        requirement,
                        "-d",
                        str(cache),
                    ],
                    check=True,
                )
            digest = hashlib.sha256(archive.read_bytes()).hexdigest()
            if digest != sha256:
                archive.unlink()
                raise SystemExit(f"demo: {filename}: sha256 {digest} is not the pinned {sha256}")
            if filename.endswith(".tar.gz"):
                with tarfile.open(archive) as tar:
                    for member, name in members.items():
                        data = tar.extractfile(member)
                        if data is None:
                            raise SystemExit(f"demo: {filename} has no {member}")
                        (cache / name).write_bytes(data.read())
            else:
                with zipfile.ZipFile(archive) as wheel:
                    for member, name in members.items():
                        (cache / name).write_bytes(wheel.read(member))
            archive.unlink()  # keep only the pictures
        out.update({name: cache / name for name in members.values()})
    return out
