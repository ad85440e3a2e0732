"""`lfr-agent check`'s node rows (agent/node_checks.py) with fake statvfs and fake commands."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.check import render
from agent.config import AgentConfig, parse_config
from agent.node_checks import EVENT_BYTES, Row, clock_sync_row, disk_row, models_row, node_rows

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def config(tmp_path: Path, extra: str = "") -> AgentConfig:
    text = (
        f'[device]\nid = "n1"\nsite = "lab"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[broker]\nhost = "localhost"\n[events]\noutbox_max = 1000\n{extra}'
    )
    return parse_config(text, tmp_path / "agent.toml")


def fake_statvfs(free: int, total: int, block: int = 4096) -> Callable[[Path], os.statvfs_result]:
    def statvfs(path: Path) -> os.statvfs_result:
        assert Path(path).exists()  # the nearest existing parent of the state folder
        return os.statvfs_result(
            (block, block, total // block, free // block, free // block, 1000, 1000, 1000, 0, 255)
        )

    return statvfs


NEED = 1000 * EVENT_BYTES  # a full outbox of outbox_max = 1000 events


@pytest.mark.parametrize(
    ("free", "total", "ok", "warn", "says"),
    [
        (100 * NEED, 200 * NEED, True, False, "free of"),
        (3 * NEED, 200 * NEED, True, True, "(low)"),  # above 2x a full outbox, below 10 %
        (int(1.5 * NEED), 2 * NEED, True, True, "(low)"),  # below twice a full outbox
        (NEED // 2, 200 * NEED, False, False, "lower events.outbox_max"),
    ],
)
def test_disk_row_thresholds(
    tmp_path: Path, free: int, total: int, ok: bool, warn: bool, says: str
) -> None:
    row = disk_row(config(tmp_path), fake_statvfs(free, total))
    assert (row.name, row.ok, row.warn) == ("disk", ok, warn)
    assert says in row.detail and "1,000 events" in row.detail


class Commands:
    """A fake of the commands: argv[0] -> (exit code, stdout); absent: not installed."""

    def __init__(self, **answers: tuple[int, str]) -> None:
        self.answers = answers
        self.ran: list[str] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.ran.append(argv[0])
        if argv[0] not in self.answers:
            raise FileNotFoundError(2, "not installed", argv[0])
        return self.answers[argv[0]]


CHRONY_OK = "Reference ID    : C0A80001 (gw)\nStratum         : 3\nLeap status     : Normal\n"
CHRONY_NO = "Reference ID    : 00000000 ()\nLeap status     : Not synchronised\n"


@pytest.mark.parametrize(
    ("commands", "online", "ok", "warn", "says"),
    [
        (Commands(timedatectl=(0, "yes\n")), True, True, False, "synchronised (timedatectl"),
        (Commands(timedatectl=(0, "no\n")), True, False, False, "NOT synchronised"),
        (Commands(timedatectl=(0, "no\n")), False, True, True, "NOT synchronised"),
        # A container: timedatectl cannot reach systemd; chrony answers.
        (Commands(timedatectl=(1, ""), chronyc=(0, CHRONY_OK)), True, True, False, "Normal"),
        (Commands(chronyc=(0, CHRONY_NO)), True, False, False, "Not synchronised"),
        (Commands(timedatectl=(1, "")), True, True, True, "unknown"),
        (
            Commands(timedatectl=(1, ""), chronyc=(1, "506 Cannot talk to daemon")),
            True,
            True,
            True,
            "unknown",
        ),
        (Commands(), False, True, True, "unknown"),
    ],
)
def test_clock_sync_row(commands: Commands, online: bool, ok: bool, warn: bool, says: str) -> None:
    row = clock_sync_row(online=online, run=commands)
    assert (row.name, row.ok, row.warn) == ("clock-sync", ok, warn)
    assert says in row.detail


def test_models_row_passes_on_the_shipped_models(tmp_path: Path) -> None:
    row = models_row(config(tmp_path))
    assert row.ok and not row.warn and "match MANIFEST sha256" in row.detail


def models_copy(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(REPO / "models" / "MANIFEST.json", models)
    for f in (REPO / "models").glob("*.tflite"):
        (models / f.name).symlink_to(f)
    return models


def test_models_row_names_a_changed_and_a_missing_model(tmp_path: Path) -> None:
    models = models_copy(tmp_path)
    (models / "sface_int8.tflite").unlink()
    (models / "sface_int8.tflite").write_bytes(b"not the model")
    cfg = config(tmp_path, f'[vision]\nmodels_dir = "{models}"\n')
    row = models_row(cfg)
    assert not row.ok and "sha256 differs from MANIFEST: sface_int8.tflite" in row.detail
    (models / "yunet_float32.tflite").unlink()  # detector auto loads YuNet
    row = models_row(cfg)
    assert not row.ok and "missing yunet_float32.tflite" in row.detail


def test_models_row_ignores_an_unused_model_that_is_absent(tmp_path: Path) -> None:
    models = models_copy(tmp_path)
    (models / "blazeface_full_float32.tflite").unlink()  # no profile or detector loads it
    row = models_row(config(tmp_path, f'[vision]\nmodels_dir = "{models}"\n'))
    assert row.ok, row.detail


def test_an_error_in_one_row_fails_that_row_only(tmp_path: Path) -> None:
    def broken(argv: Sequence[str]) -> tuple[int, str]:
        raise RuntimeError("boom")

    rows = {r.name: r for r in node_rows(config(tmp_path), online=False, run=broken)}
    assert set(rows) == {"disk", "clock-sync", "models"}
    assert not rows["clock-sync"].ok and "RuntimeError: boom" in rows["clock-sync"].detail
    assert rows["disk"].ok and rows["models"].ok


def test_render_marks_warnings() -> None:
    text = render(
        [
            Row("disk", True, "fine"),
            Row("clock-sync", True, "unknown", warn=True),
            Row("models", False, "bad"),
        ]
    )
    assert text.splitlines() == [
        "disk        ok    fine",
        "clock-sync  warn  unknown",
        "models      FAIL  bad",
    ]


@given(st.integers(-1, 255), st.text(max_size=300))
def test_command_output_never_breaks_the_clock_row(code: int, out: str) -> None:
    row = clock_sync_row(online=True, run=lambda argv: (code, out))
    assert row.name == "clock-sync" and (row.ok or not row.warn)
