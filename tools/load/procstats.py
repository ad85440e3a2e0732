"""What a process costs, read from /proc: CPU seconds, the machine's busy time, the main
thread's state, peak RSS; and the CPU and thread states of a set of processes over a window."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (NaN once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_times() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / ticks, sum(values[:8]) / ticks


def main_thread_state(pid: int) -> str:
    """R running, S sleeping, D waiting on disk (fsync), ... of the process's main thread."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MiB (NaN once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


@dataclass
class Usage:
    """What a set of processes used over a window."""

    cpu: dict[str, float]  # percent of one core per component; "machine" and "others" too
    states: dict[str, dict[str, float]]  # main-thread state fractions (R, S, D) per component


def measure(
    components: dict[str, list[int]], sampled: list[str], start_at: float, end_at: float
) -> Usage:
    """CPU per component (the sum over its pids) and of the whole machine from wall-clock
    ``start_at`` to ``end_at``, and the state of the first pid's main thread of each
    component in ``sampled`` (every 100 ms). Returns at ``end_at``."""
    counts: dict[str, dict[str, int]] = {n: {} for n in sampled}
    time.sleep(max(0.0, start_at - time.time()))
    cpu0 = {n: sum(cpu_seconds(p) for p in pids) for n, pids in components.items()}
    machine0 = machine_times()
    wall0 = time.monotonic()
    while time.time() < end_at:
        for name, seen in counts.items():
            state = main_thread_state(components[name][0])
            seen[state] = seen.get(state, 0) + 1
        time.sleep(0.1)
    elapsed = time.monotonic() - wall0
    cpu1 = {n: sum(cpu_seconds(p) for p in pids) for n, pids in components.items()}
    machine1 = machine_times()
    cpu = {n: (cpu1[n] - cpu0[n]) / elapsed * 100 for n in components}
    cpu["machine"] = (machine1[0] - machine0[0]) / elapsed * 100
    cpu["others"] = cpu["machine"] - sum(cpu[n] for n in components)
    states = {n: {k: v / max(1, sum(c.values())) for k, v in c.items()} for n, c in counts.items()}
    return Usage(cpu, states)
