"""Files on disk: atomic writes, bounded reads, and private keys that stay private.

Used by the device, the authority and the ops tools alike; nothing here parses content.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from datetime import datetime
from pathlib import Path

from protocol.errors import Oversize

log = logging.getLogger(__name__)


class InsecureKeyFile(RuntimeError):
    """A private key file that others can read: refused, the operator must fix its mode."""


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` so that ``path`` holds either the old or the new content, never a mix.

    Temp file in the same directory (created with ``mode`` from the start, so a secret is
    never briefly world-readable), fsync, rename over, fsync the directory.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it; never widens beyond `mode`
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def remove_stale_temps(path: Path) -> int:
    """Delete temp files an interrupted :func:`atomic_write` of ``path`` left (power cut, kill).

    Only those whose writer process is gone: another process may be writing right now.
    """
    path = Path(path)
    removed = 0
    for temp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = temp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
            removed += 1
    if removed:
        _fsync_dir(path.parent)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def remove(path: Path) -> bool:
    """Delete ``path`` durably; True if it existed."""
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return False
    _fsync_dir(Path(path).parent)
    return True


def read_bounded(path: Path, max_bytes: int, what: str) -> bytes:
    """Read at most ``max_bytes``; a larger file is :class:`Oversize` before it is read."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise Oversize(f"{what} {path}: {size} bytes exceeds the limit of {max_bytes}")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Oversize(f"{what} {path}: exceeds the limit of {max_bytes} bytes")
    return data


def read_private(path: Path, what: str = "private key", max_bytes: int = 64 * 1024) -> bytes:
    """Read a private key file, refusing one that group or others may read or write."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise InsecureKeyFile(f"{what} {path} is not a regular file")
    if info.st_mode & 0o077:
        raise InsecureKeyFile(
            f"{what} {path} has mode {stat.S_IMODE(info.st_mode):04o}; "
            f"it must not be readable by group or others (chmod 600 {path})"
        )
    return read_bounded(path, max_bytes, what)


def ensure_private_dir(path: Path) -> Path:
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def archive(paths: list[Path], root: Path, now: datetime) -> Path | None:
    """Move existing ``paths`` into ``root/archive/<time>/`` (keeping modes); returns it."""
    existing = [p for p in paths if p.exists()]
    if not existing:
        return None
    target = ensure_private_dir(root / "archive" / now.strftime("%Y%m%dT%H%M%S.%fZ"))
    for path in existing:
        relative = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        (target / relative).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.move(str(path), target / relative)
    log.warning("archived %d file(s) to %s", len(existing), target)
    return target
