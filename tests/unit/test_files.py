from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lfrkit.files import InsecureKeyFile, atomic_write, read_bounded, read_private
from protocol.errors import Oversize


def test_atomic_write_creates_with_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "secret.key"
    atomic_write(target, b"one", 0o600)
    atomic_write(target, b"two", 0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, b"old")

    with pytest.raises(TypeError):
        atomic_write(target, "not bytes", 0o600)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_group_or_world_readable_private_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "ops-1.key"
    atomic_write(key, b"-----BEGIN PRIVATE KEY-----", 0o600)
    assert read_private(key).startswith(b"-----BEGIN")
    for mode in (0o640, 0o604, 0o660):
        os.chmod(key, mode)
        with pytest.raises(InsecureKeyFile, match=f"mode {mode:04o}"):
            read_private(key)


def test_read_bounded_refuses_big_files_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(Oversize):
        read_bounded(big, 1000, "bundle")
    assert read_bounded(big, 1001, "bundle") == b"x" * 1001
