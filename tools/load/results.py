"""One measured step at one offered rate: its figures, and how they read in Markdown (the
table a run prints, and the details per step)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tools.report import table


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values``; NaN for none."""
    return float(np.percentile(np.array(values), q)) if values else math.nan


@dataclass
class StepResult:
    rate: float  # offered, events/s across the fleet
    seconds: float
    devices: int
    produced: int
    stored: int  # of this step's events, in the store when the step ended
    missing: int  # produced, not stored once deliveries stopped (or after `settle` s)
    stuck: int  # of those, still not stored after the listeners reconnected (up to 5 times)
    reconnects: int  # listener restarts it took to get what did arrive
    unexpected: int  # stored, never produced by this step
    stored_in_window: int  # stored while the devices were producing
    latency: dict[str, float]  # p50, p90, p99, max (seconds), created -> visible in the store
    outbox_latency: dict[str, float]  # created -> committed to the device outbox
    lag_p99: float  # device loop behind schedule (the simulation saturating)
    drain: float  # end of production -> last event stored
    cpu: dict[str, float]  # percent of one core, per component, over the window
    states: dict[str, dict[str, float]]  # main-thread state fractions (R, S, D)
    rss_mb: dict[str, float]
    dropped: int  # events refused by a full outbox (counted by the devices)
    refused: int  # publishes the broker refused
    max_backlog: int  # largest per-device outbox backlog seen
    drained: bool
    token_bytes: float  # mean signed event size
    broker_dropped: int  # "messages are being dropped" lines in the broker log
    notes: list[str] = field(default_factory=list)
    ids: frozenset[str] = field(default=frozenset(), repr=False)  # what the devices produced

    @property
    def ok(self) -> bool:
        return (
            self.missing == 0
            and self.unexpected == 0
            and self.produced > 0
            and self.latency["p99"] <= 1.0
        )

    @property
    def produced_rate(self) -> float:
        return self.produced / self.seconds

    @property
    def stored_rate(self) -> float:
        return self.stored_in_window / self.seconds

    def saturation(self, cores: int) -> str:
        """What looked saturated in this step (a hint; the report says what it was)."""
        hints = []
        for name, pct in self.cpu.items():
            if name not in ("machine", "others", "devices") and pct >= 85:
                hints.append(f"{name} CPU {pct:.0f}%")
        for name, states in self.states.items():
            if states.get("D", 0) >= 0.25:
                hints.append(f"{name} waits on disk {states['D']:.0%}")
        if self.cpu.get("machine", 0) >= 90 * cores:
            hints.append(f"machine CPU {self.cpu['machine']:.0f}% of {cores * 100}%")
        if self.lag_p99 > 0.5:
            hints.append(f"devices behind schedule (p99 {self.lag_p99:.1f} s)")
        if self.broker_dropped:
            hints.append(f"broker dropped queued messages ({self.broker_dropped} log lines)")
        return "; ".join(hints) or "nothing"


def fmt_ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


HEADER = [
    "offered ev/s",
    "produced ev/s",
    "stored ev/s",
    "events",
    "stored = produced",
    "latency p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "outbox p99 ms",
    "drain s",
    "broker CPU %",
    "listener 1 CPU %",
    "listener 2 CPU %",
    "devices CPU %",
    "machine busy %",
    "of which other users %",
    "saturated",
]


def markdown(results: list[StepResult], cores: int) -> str:
    """One table row per step: rates, stored = produced, latencies, CPU per component."""
    rows = []
    for r in results:
        equal = (
            "yes"
            if r.missing == 0 and r.unexpected == 0
            else (
                f"NO ({r.missing} missing; {r.missing - r.stuck} came after {r.reconnects} "
                f"listener restarts, {r.stuck} did not; {r.unexpected} unexpected)"
            )
        )
        row = [
            f"{r.rate:g}",
            f"{r.produced_rate:.1f}",
            f"{r.stored_rate:.1f}",
            f"{r.produced}",
            equal,
            fmt_ms(r.latency["p50"]),
            fmt_ms(r.latency["p90"]),
            fmt_ms(r.latency["p99"]),
            fmt_ms(r.latency["max"]),
            fmt_ms(r.outbox_latency["p99"]),
            f"{max(0.0, r.drain):.1f}",
            f"{r.cpu.get('broker', math.nan):.1f}",
            f"{r.cpu.get('listener-1', math.nan):.1f}",
            f"{r.cpu.get('listener-2', math.nan):.1f}",
            f"{r.cpu.get('devices', math.nan):.1f}",
            f"{r.cpu.get('machine', math.nan):.0f}",
            f"{r.cpu.get('others', math.nan):.0f}",
            r.saturation(cores) if not r.ok else "-",
        ]
        rows.append(row)
    return table(HEADER, rows)


def details(results: list[StepResult]) -> str:
    """Per step: thread states, memory, device-side counters."""
    out = []
    for r in results:
        states = ", ".join(
            f"{name} " + "/".join(f"{k} {v:.0%}" for k, v in sorted(s.items()) if v >= 0.01)
            for name, s in r.states.items()
        )
        rss = ", ".join(f"{k} {v:.0f} MB" for k, v in r.rss_mb.items())
        out.append(
            f"- {r.rate:g} ev/s offered, {r.devices} devices, {r.seconds:.0f} s: "
            f"mean event {r.token_bytes / 1024:.1f} KiB; device lag p99 {r.lag_p99 * 1000:.0f} ms; "
            f"largest outbox backlog {r.max_backlog}; dropped {r.dropped}; refused {r.refused}; "
            f"all drained {r.drained}; main-thread states: {states}; peak RSS: {rss}"
            + "".join(f"; {n}" for n in r.notes)
        )
    return "\n".join(out)
