"""Facts the board reports about itself: model, CPU temperature, throttling, clock sync, disk.

Only reading happens here (files under /sys and /proc, ``vcgencmd``, ``timedatectl``,
``chronyc``, ``statvfs``); what the facts mean for the node is decided by ``lfr-agent bench``
(:mod:`agent.bench`) and ``lfr-agent check`` (:mod:`agent.node_checks`). Anything a board does
not report is ``None`` or ``"unknown"``, never an error: an x86 VM or a container has no
thermal zone, no ``vcgencmd`` and often no systemd.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
CPUINFO = Path("/proc/cpuinfo")
COMMAND_TIMEOUT_S = 5.0

# Runs a command, returns (exit code, stdout); raises OSError when it cannot be run at all.
Runner = Callable[[Sequence[str]], tuple[int, str]]


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """The exit code and stdout of ``argv`` (bounded by a timeout: a hung D-Bus must not hang
    the check). A missing program raises FileNotFoundError, an OSError."""
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(2, "not installed", argv[0])
    try:
        done = subprocess.run(  # noqa: S603 - fixed tools, arguments we built
            list(argv),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, ""
    return done.returncode, done.stdout


@dataclass(frozen=True)
class Board:
    machine: str  # platform.machine(): aarch64, x86_64, ...
    model: str  # "Raspberry Pi 5 Model B Rev 1.0", or the CPU's model name
    cores: int
    temperature_c: float | None  # thermal_zone0; None when the board has none
    throttled: int | None  # `vcgencmd get_throttled` bits; None without vcgencmd


def _small_text(path: Path, limit: int = 1 << 20) -> str | None:
    try:
        with path.open("rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def board_model(device_tree: Path = DEVICE_TREE_MODEL, cpuinfo: Path = CPUINFO) -> str:
    """The device tree's model (Raspberry Pi, Jetson), else /proc/cpuinfo's CPU name."""
    text = _small_text(device_tree, 4096)
    if text and text.strip("\0\n "):
        return text.strip("\0\n ")
    for line in (_small_text(cpuinfo) or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return "unknown"


def cpu_temperature(path: Path = THERMAL_ZONE) -> float | None:
    """Degrees Celsius from a thermal zone (millidegrees in the file), None if not reported."""
    text = _small_text(path, 64)
    try:
        return int((text or "").strip()) / 1000.0
    except ValueError:
        return None


def throttled(run: Runner = run_command) -> int | None:
    """The Raspberry Pi firmware's throttling bits (``throttled=0x50005``), None without
    ``vcgencmd`` or when it says nothing readable."""
    try:
        code, out = run(["vcgencmd", "get_throttled"])
    except OSError:
        return None
    _, _, value = out.strip().partition("=")
    if code != 0 or not re.fullmatch(r"0x[0-9a-fA-F]{1,8}", value):
        return None
    return int(value, 16)


def read_board(run: Runner = run_command) -> Board:
    return Board(
        machine=platform.machine() or "unknown",
        model=board_model(),
        cores=os.cpu_count() or 1,
        temperature_c=cpu_temperature(),
        throttled=throttled(run),
    )


@dataclass(frozen=True)
class ClockSync:
    state: str  # "yes", "no" or "unknown"
    source: str  # what said so, for the row's detail


def clock_sync(run: Runner = run_command) -> ClockSync:
    """Whether the system clock is synchronised: systemd (timesyncd or chrony through
    timedated) first, then ``chronyc tracking``; "unknown" when neither answers (a container
    without systemd, a board without either)."""
    said = []
    try:
        code, out = run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
        if code == 0 and out.strip() in ("yes", "no"):
            return ClockSync(out.strip(), "timedatectl NTPSynchronized")
        said.append(f"timedatectl exit {code} (no systemd?)")
    except OSError:
        said.append("no timedatectl")
    try:
        code, out = run(["chronyc", "tracking"])
    except OSError:
        return ClockSync("unknown", ", ".join([*said, "no chronyc"]))
    if code == 0:
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Leap status":
                synced = value.strip() != "Not synchronised"
                return ClockSync("yes" if synced else "no", f"chronyc: {value.strip()}")
    return ClockSync("unknown", ", ".join([*said, f"chronyc exit {code} (chronyd down?)"]))


@dataclass(frozen=True)
class Disk:
    free_bytes: int  # available to an unprivileged user (the service is one)
    total_bytes: int


def disk(path: Path, statvfs: Callable[[Path], os.statvfs_result] = os.statvfs) -> Disk:
    """Space on the filesystem holding ``path`` (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    st = statvfs(probe)
    return Disk(st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)
