"""Load: a fleet of simulated devices on the agent's real publishing path, one real broker,
two real ``lfr-alerts listen`` in one shared-subscription group, and what reaches the store.

A simulated device is ``lfr-agent``'s own agent (:func:`agent.app.build_agent`), built from the
device's quickstart config (its identity, client certificate and keys), with its frame stage
replaced: :class:`ScheduledAlerts` releases alerts on a schedule instead of running camera,
detector, embedder and tracker. From there on everything is the agent's code: the watchlist
arrives over MQTT and is installed by the agent, each alert is a real match against it, the
agent's event sink signs the event (JPEG probe sealed to the control room with HPKE, Ed25519
JWS) into the spool and the SQLite outbox, and the agent's loop steps the publisher, handles
messages and publishes status. 50 real agents with their vision pipelines would need about
7 GB and the CPU of 50 pipelines, which would measure this 2-core machine, not the event path.
The devices run as threads in a few worker processes (``worker``), reniced (they stand for
remote machines), each releasing events at its share of the offered rate (evenly spaced,
random phase).

End-to-end latency is from the device creating the event (the alert's ``observed_at``, taken
from the same clock) to the row being visible in the alert store, found by polling the store
every 20 ms (so figures are upper bounds, up to one poll late): ``received_at`` in the store
has whole seconds only. When events are missing once deliveries stop, the listeners are
restarted (up to 5 times) to tell events stuck in the broker from events lost.

    python -m tests.reliability.loadgen run --devices 50 --rate 200 --seconds 300
    python -m tests.reliability.loadgen search --devices 50 --rates 100,200,300,400 --seconds 60

Both print a Markdown table (``--out FILE`` keeps it). Nothing here asserts a time; the
reliability tests assert what must hold (stored = produced, exactly once).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.core.matcher import Matcher
from agent.core.tracker import Alert
from agent.frames import Emit
from agent.loop import Agent
from agent.status import Part
from protocol.status import FramesReport

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("loadgen")
U8 = npt.NDArray[np.uint8]
STOPPED = re.compile(r"stopped: (\d+) alerts stored, (\d+) duplicates, (\d+) refused")
WATCHLIST_COLOURS = [1, 2, 3]  # each device's watchlist: three synthetic subjects
PROBE_COLOUR = 1  # the subject every simulated alert is about


# -- the simulated device (inside a worker process) ---------------------------------------


def probe_crop(rng: np.random.Generator, side: int = 150) -> U8:
    """A face-sized crop with camera-like noise: about 7 KB as JPEG at quality 85, the size of
    a real probe (a 90-120 px face grown by the 30% margin)."""
    from agent.synthetic_vision import draw_face

    y, x = np.mgrid[0:side, 0:side]
    base = np.stack([80 + x * 0.5, 70 + y * 0.6, 60 + (x + y) * 0.3], -1)
    noisy = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    draw_face(noisy, PROBE_COLOUR, side // 4, side // 4, side // 2)
    out: U8 = np.clip(noisy + rng.normal(0, 4, noisy.shape), 0, 255).astype(np.uint8)
    return out


@dataclass
class Schedule:
    """When a simulated device releases its alerts (wall-clock seconds, shared by all)."""

    period: float  # seconds between two alerts of this device
    phase: float  # first alert at start + phase
    start_at: float = math.inf  # set by the worker when the orchestrator says go
    end_at: float = math.inf
    drain: float = 180.0  # after end_at: how long to keep publishing what is queued
    tick: float = 0.04  # one loop turn per "frame": 25 fps


class ScheduledAlerts:
    """The frame stage of a simulated device: instead of camera, detector, embedder and
    tracker, it releases alerts on ``schedule``, each a real match of a noisy probe against
    the watchlist the agent installed, and hands them to the agent's own event sink."""

    def __init__(self, schedule: Schedule, seed: int) -> None:
        from agent.pipeline import Counters
        from agent.synthetic_vision import colour_embedding

        self.schedule = schedule
        self.rng = np.random.default_rng(seed)
        self.crop = probe_crop(self.rng)
        self.anchor = colour_embedding(PROBE_COLOUR)
        self.next_due = math.nan
        self.records: list[tuple[str, float, float, float]] = []  # id, due, created, queued
        self.counters = Counters()

    def _alert(self, matcher: Matcher | None, created: float) -> Alert[U8]:
        from agent.synthetic_vision import DIM

        probe = self.anchor + self.rng.normal(0, 0.01, DIM).astype(np.float32)
        match = None if matcher is None else matcher.match(probe)
        if match is None:
            raise RuntimeError("the probe matched nobody")
        self.counters.faces_detected += 1
        self.counters.matches += 1
        return Alert(self.counters.matches, match, self.crop, datetime.fromtimestamp(created, UTC))

    def start(self) -> None:
        pass

    def step(self, now: datetime, matcher: Matcher | None, emit: Emit) -> bool:
        plan = self.schedule
        if math.isnan(self.next_due) and plan.start_at < math.inf:
            self.next_due = plan.start_at + plan.phase
        while self.next_due <= time.time() and self.next_due < plan.end_at:
            created = time.time()
            (event_id,) = emit([self._alert(matcher, created)])
            self.records.append((event_id, self.next_due, created, time.time()))
            self.next_due += plan.period
        self.counters.frames += 1
        due = self.next_due - time.time() if self.next_due < plan.end_at else plan.tick
        time.sleep(max(0.0, min(plan.tick, due)))
        return True  # a "frame" per tick: the watchdog and status see a live camera

    def stop(self, now: datetime, emit: Emit) -> None:
        pass

    def watchlist_changed(self) -> None:
        pass

    @property
    def ended(self) -> bool:
        return False

    @property
    def fatal(self) -> str | None:
        return None

    def status(self) -> Part[FramesReport]:
        c = self.counters
        return Part(FramesReport(c.frames, c.faces_detected, 0, {}, c.matches, 0, 0, 0))


class UntilScheduleDone:
    """The simulated device's exit policy: once its schedule has ended, stop when everything
    it produced is published, or when the drain time is over (and say so)."""

    def __init__(self, stage: ScheduledAlerts) -> None:
        self.stage = stage
        self.max_backlog = 0
        self.drained = True

    def prepare(self, agent: Agent) -> None:
        pass

    def verdict(self, agent: Agent) -> int | None:
        plan, delivery = self.stage.schedule, agent.delivery
        backlog = len(self.stage.records) - delivery.publisher.stats.events_published
        self.max_backlog = max(self.max_backlog, backlog)
        wall = time.time()
        if wall < plan.end_at:
            return None
        if backlog <= 0 and delivery.publisher.inflight == 0 and len(delivery.outbox) == 0:
            return 0
        if wall >= plan.end_at + plan.drain:
            self.drained = False
            log.error("%d events still queued after the drain", backlog)
            return 0
        return None


@dataclass
class SimulatedDevice:
    """``lfr-agent``'s own agent (:func:`agent.app.build_agent`, from the device's own config)
    with :class:`ScheduledAlerts` as its frame stage: from the alert on, everything is the
    agent's code (sign, seal the probe, spool and outbox; the loop: messages, publisher step,
    status)."""

    agent: Agent
    stage: ScheduledAlerts
    policy: UntilScheduleDone

    @property
    def device_id(self) -> str:
        return self.agent.about.device_id

    @property
    def schedule(self) -> Schedule:
        return self.stage.schedule

    @property
    def records(self) -> list[tuple[str, float, float, float]]:
        return self.stage.records

    @property
    def ready(self) -> bool:
        return self.agent.link.is_connected and self.agent.control.matcher is not None

    def run(self) -> int:
        return self.agent.run()

    def summary(self) -> dict[str, Any]:
        lags = [created - due for _, due, created, _ in self.records]
        delivery = self.agent.delivery
        return {
            "device": self.device_id,
            "produced": len(self.records),
            "signed": len(self.records),
            "published": delivery.publisher.stats.events_published,
            "refused": delivery.publisher.stats.publish_refused,
            "dropped": sum(delivery.spool.dropped.values()),
            "held": delivery.spool.held,
            "max_backlog": self.policy.max_backlog,
            "drained": self.policy.drained,
            "max_lag": max(lags, default=0.0),
        }


def simulated_agent(config_path: Path, schedule: Schedule, seed: int) -> SimulatedDevice:
    """A simulated device: the agent built from ``config_path``, alerts on ``schedule``."""
    from agent.app import build_agent
    from agent.config import load_config

    stage = ScheduledAlerts(schedule, seed)
    policy = UntilScheduleDone(stage)
    agent = build_agent(load_config(config_path), frames=stage, policy=policy)
    return SimulatedDevice(agent, stage, policy)


def worker_main(spec_path: Path) -> int:
    """One worker process: its agents connect, say ready, wait for go, run, report."""
    spec = json.loads(spec_path.read_text())
    # The devices stand for 50 remote machines: they must not take CPU from the broker and
    # the listeners, which on a real deployment have their own.
    os.nice(spec["nice"])
    logging.basicConfig(
        level=getattr(logging, spec["log_level"]),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s %(message)s",
    )
    rng = np.random.default_rng(spec["seed"])
    period = 1.0 / spec["rate"] if spec["rate"] > 0 else math.inf
    agents = []
    for number, config in enumerate(spec["configs"]):
        phase = float(rng.random()) * period if spec["rate"] > 0 else 0.0
        schedule = Schedule(period, phase, drain=spec["drain"], tick=spec["tick"])
        agents.append(simulated_agent(Path(config), schedule, spec["seed"] * 1000 + number))
    threads = [threading.Thread(target=a.run, name=a.device_id, daemon=True) for a in agents]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while not all(a.ready for a in agents):
        if time.monotonic() > deadline or not all(t.is_alive() for t in threads):
            late = [a.device_id for a in agents if not a.ready]
            log.error("not connected with a watchlist after 60 s: %s", late)
            return 2
        time.sleep(0.05)
    log.warning("%d agents connected, watchlists installed", len(agents))
    Path(spec["ready"]).write_text(str(os.getpid()))
    go = Path(spec["go"])
    while not go.exists():
        time.sleep(0.02)
    start_at = float(go.read_text())
    for agent in agents:
        agent.schedule.start_at = start_at
        agent.schedule.end_at = start_at + spec["seconds"]
    for thread in threads:
        thread.join()
    lines = [
        f"{event_id},{a.device_id},{s:.6f},{c:.6f},{q:.6f}\n"
        for a in agents
        for event_id, s, c, q in a.records
    ]
    Path(spec["records"]).write_text("".join(lines))
    Path(spec["summary"]).write_text(json.dumps([a.summary() for a in agents]))
    produced = sum(len(a.records) for a in agents)
    log.warning("done: %d events produced by %d agents", produced, len(agents))
    return 0


# -- observing the store, the CPU and the processes ---------------------------------------


class StoreWatcher:
    """When each alert row became visible in the store, by ``event_id`` (polled)."""

    def __init__(self, db_url: str, interval: float = 0.02) -> None:
        self.db_url, self.interval = db_url, interval
        self.seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)
        self.polls = 0
        self.error: str | None = None

    def start(self) -> StoreWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.seen)

    def _note(self, ids: list[str], at: float) -> None:
        with self._lock:
            for event_id in ids:
                self.seen.setdefault(event_id, at)
        self.polls += 1

    def _run(self) -> None:
        try:
            if self.db_url.startswith("sqlite:"):
                self._run_sqlite(self.db_url[len("sqlite:///") :])
            else:
                self._run_postgresql()
        except Exception as exc:  # reported with the results, not lost in a thread
            self.error = f"{type(exc).__name__}: {exc}"
            raise

    def _run_sqlite(self, path: str) -> None:
        db = sqlite3.connect(path, timeout=30)
        last = 0
        try:
            while not self._stop.is_set():
                rows = db.execute(
                    "SELECT rowid, event_id FROM alerts WHERE rowid > ? ORDER BY rowid", (last,)
                ).fetchall()
                at = time.time()
                if rows:
                    last = int(rows[-1][0])
                self._note([str(r[1]) for r in rows], at)
                self._stop.wait(self.interval)
        finally:
            db.close()

    def _run_postgresql(self) -> None:
        # No rowid: a row not visible at the previous poll was written by a transaction that
        # was running then or began later, so its xmin is at least that snapshot's xmin.
        import psycopg

        from protocol.encoding import format_time

        snap = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296"
        with psycopg.connect(self.db_url, autocommit=True) as db:
            previous = 0
            while not self._stop.is_set():
                row = db.execute(snap).fetchone()
                current = int(row[0]) if row else 0
                since = format_time(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2))
                rows = db.execute(
                    "SELECT event_id FROM alerts WHERE received_at >= %s "
                    "AND xmin::text::bigint >= %s",
                    (since, previous),
                ).fetchall()
                self._note([str(r[0]) for r in rows], time.time())
                previous = current
                self._stop.wait(self.interval)


def cpu_seconds(pid: int) -> float:
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
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else math.nan


# -- one measured step --------------------------------------------------------------------


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
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in results:
        equal = (
            "yes"
            if r.missing == 0 and r.unexpected == 0
            else (
                f"NO ({r.missing} missing; {r.missing - r.stuck} came after {r.reconnects} "
                f"listener restarts, {r.stuck} did not; {r.unexpected} unexpected)"
            )
        )
        cells = [
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
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


# -- the rig: fleet, broker, listeners, store ---------------------------------------------


class LoadRig:
    """A quickstart fleet, its broker, two listeners in one group and their store."""

    def __init__(
        self,
        root: Path,
        devices: int,
        logs: Path,
        *,
        db: str = "sqlite",
        db_dir: Path | None = None,
        workers: int = 4,
        group: str = "load",
        tick: float = 0.04,
        log_level: str = "WARNING",
        nice: int = 10,
    ) -> None:
        self.root, self.devices, self.logs = Path(root), devices, Path(logs)
        self.db_kind, self.workers, self.group = db, max(1, min(workers, devices)), group
        self.db_dir = Path(db_dir) if db_dir else self.root
        self.tick, self.log_level, self.nice = tick, log_level, nice
        self.rig: Any = None
        self.listeners: list[Any] = []
        self.watcher: StoreWatcher | None = None
        self.db_url = ""
        self._pg_name: str | None = None
        self._steps = 0
        self.listener_totals: list[tuple[int, int, int]] = []
        self.all_produced: set[str] = set()

    # setup and teardown

    def start(self) -> LoadRig:
        from provisioning.authority import Authority
        from provisioning.broker import refresh
        from provisioning.fleet import issue_client
        from tools.processes import Rig

        self.logs.mkdir(parents=True, exist_ok=True)
        self.rig = Rig.create(self.root, self.devices, self.logs)
        auth = Path(self.rig.index["authority_dir"])
        clients = Path(self.rig.index["clients"]["alerts"]["cert"]).parent
        # A second consumer needs its own certificate: the CN is its client id.
        issue_client(auth, "alerts", "alerts-2", clients, datetime.now(UTC))
        refresh(Authority.load(auth), datetime.now(UTC))
        self.rig.broker.reload()
        self._push_watchlists()
        self.db_url = self._make_db()
        self._start_listeners()
        self.watcher = StoreWatcher(self.db_url).start()
        return self

    def _start_listeners(self) -> None:
        from tools.processes import wait_until

        clients = Path(self.rig.index["clients"]["alerts"]["cert"]).parent
        self.listeners = [
            self.rig.listener(
                f"load-listener-{number}", str(clients / f"{name}.crt"), self.db_url, self.group
            ).start()
            for number, name in ((1, "alerts"), (2, "alerts-2"))
        ]
        for proc in self.listeners:
            wait_until(lambda p=proc: "listening for events" in p.text(), 30, "a listener")

    def restart_listeners(self) -> None:
        """What a control room does after a stall: stop both consumers, start them again
        (their persistent sessions keep what the broker still holds for them)."""
        for proc in self.listeners:
            proc.terminate(20)
        self._start_listeners()

    def _push_watchlists(self) -> None:
        from tools.synthetic import seal_for

        ops = self.rig.client("ops")
        try:
            for device_id in self.rig.device_ids:
                bundle = seal_for(
                    self.rig.index, device_id, WATCHLIST_COLOURS, 1, timedelta(hours=12)
                )
                topic = self.rig.topic(device_id, "watchlist")
                code = ops.wait_ack(ops.publish(topic, bundle, retain=True))
                if code not in (0, 16):
                    raise RuntimeError(f"broker refused the watchlist for {device_id} ({code:#x})")
        finally:
            ops.close()

    def _make_db(self) -> str:
        if self.db_kind == "sqlite":
            self.db_dir.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{self.db_dir.resolve() / 'alerts.db'}"
        import psycopg

        from tools.postgres import ADMIN_URL

        self._pg_name = f"lfr_load_{secrets.token_hex(4)}"
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f"CREATE DATABASE {self._pg_name}")
        return ADMIN_URL.rsplit("/", 1)[0] + f"/{self._pg_name}"

    def close(self) -> None:
        """Stop everything; keeps what each listener said it stored (``listener_totals``)."""
        if self.watcher is not None:
            self.watcher.stop()
        for proc in self.listeners:
            if proc.alive:
                with contextlib.suppress(AssertionError):
                    proc.terminate(20)
            # One line per run of this listener (restarts append to the same log).
            for stored, dup, refused in STOPPED.findall(proc.text()):
                self.listener_totals.append((int(stored), int(dup), int(refused)))
        if self.rig is not None:
            broker_log = self.rig.broker.log
            self.rig.close()
            if broker_log.exists():
                shutil.copy(broker_log, self.logs / "load-mosquitto.log")
        if self._pg_name is not None:
            import psycopg

            from tools.postgres import ADMIN_URL

            with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {self._pg_name} WITH (FORCE)")

    def __enter__(self) -> LoadRig:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # the store as a whole

    def stored_ids(self) -> list[str]:
        """Every event id in the store, one per row (duplicates would show twice)."""
        from central.store import AlertStore

        store = AlertStore(self.db_url)
        try:
            return [str(r[0]) for r in store.rows("SELECT event_id FROM alerts")]
        finally:
            store.close()

    # one step at one offered rate

    def step(self, rate: float, seconds: float, settle: float = 120.0) -> StepResult:
        from tools.processes import BIN, Proc

        assert self.watcher is not None
        self._steps += 1
        run = self.root / f"step-{self._steps}"
        run.mkdir(parents=True, exist_ok=True)
        configs = [d["config"] for d in self.rig.index["devices"]]
        shares = [configs[i :: self.workers] for i in range(self.workers)]
        per_device = rate / self.devices
        procs: list[Any] = []
        for number, share in enumerate(shares, start=1):
            spec = {
                "configs": share,
                "rate": per_device,
                "seconds": seconds,
                "tick": self.tick,
                "log_level": self.log_level,
                "nice": self.nice,
                "drain": settle,
                "seed": self._steps * 100 + number,
                "ready": str(run / f"ready-{number}"),
                "go": str(run / "go"),
                "records": str(run / f"records-{number}.csv"),
                "summary": str(run / f"summary-{number}.json"),
            }
            spec_path = run / f"worker-{number}.json"
            spec_path.write_text(json.dumps(spec))
            proc = Proc(
                [str(BIN / "python"), "-m", "tests.reliability.loadgen", "worker", str(spec_path)],
                self.logs / f"load-worker-{number}.log",
                env={"PYTHONPATH": str(ROOT)},
            ).start()
            self.rig.procs.append(proc)
            procs.append(proc)
        deadline = time.monotonic() + 120
        while not all((run / f"ready-{n}").exists() for n in range(1, len(shares) + 1)):
            dead = [p for p in procs if not p.alive]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"workers did not get ready: see {self.logs}/load-worker-*.log")
            time.sleep(0.1)
        start_at = time.time() + 1.0
        (run / "go.tmp").write_text(f"{start_at:.6f}")
        (run / "go.tmp").rename(run / "go")
        components = {
            "broker": [self.rig.broker.process.pid],
            "listener-1": [self.listeners[0].pid],
            "listener-2": [self.listeners[1].pid],
            "devices": [p.pid for p in procs],
            "watcher": [os.getpid()],
        }
        states: dict[str, dict[str, int]] = {n: {} for n in ("broker", "listener-1", "listener-2")}
        time.sleep(max(0.0, start_at - time.time()))
        cpu0 = {n: sum(cpu_seconds(p) for p in pids) for n, pids in components.items()}
        machine0 = machine_times()
        wall0 = time.monotonic()
        end_at = start_at + seconds
        while time.time() < end_at:
            for name, counts in states.items():
                state = main_thread_state(components[name][0])
                counts[state] = counts.get(state, 0) + 1
            time.sleep(0.1)
        elapsed = time.monotonic() - wall0
        cpu1 = {n: sum(cpu_seconds(p) for p in pids) for n, pids in components.items()}
        machine1 = machine_times()
        rss = {
            "broker": peak_rss_mb(components["broker"][0]),
            "listener-1": peak_rss_mb(components["listener-1"][0]),
            "listener-2": peak_rss_mb(components["listener-2"][0]),
            f"worker (of {len(shares[0])} devices)": peak_rss_mb(procs[0].pid),
        }
        cpu = {n: (cpu1[n] - cpu0[n]) / elapsed * 100 for n in components}
        cpu["machine"] = (machine1[0] - machine0[0]) / elapsed * 100
        cpu["others"] = cpu["machine"] - sum(cpu[n] for n in components)
        for proc in procs:
            code = proc.wait(seconds + settle + 120)
            if code != 0:
                raise RuntimeError(f"worker exited with {code}: see {proc.log}")
        produced: dict[str, tuple[float, float, float]] = {}
        for number in range(1, len(shares) + 1):
            for line in (run / f"records-{number}.csv").read_text().splitlines():
                event_id, _, scheduled, created, queued = line.split(",")
                produced[event_id] = (float(scheduled), float(created), float(queued))
        summaries = [
            s
            for n in range(1, len(shares) + 1)
            for s in json.loads((run / f"summary-{n}.json").read_text())
        ]
        self.all_produced.update(produced)
        notes = []
        missing_at_settle = self._settle(produced, settle)
        stuck, reconnects = missing_at_settle, 0
        while stuck and reconnects < 5:
            # Stuck in the broker, or gone? Reconnect the consumers (their persistent
            # sessions keep what the broker holds for them) and look again.
            self.restart_listeners()
            reconnects += 1
            before, stuck = stuck, self._settle(produced, 60.0)
            if stuck == before:
                break
        if missing_at_settle:
            notes.append(
                f"{missing_at_settle} events not stored when deliveries stopped; "
                f"{missing_at_settle - stuck} arrived after {reconnects} listener restarts, "
                f"{stuck} did not"
            )
        time.sleep(1.0)  # anything beyond what was produced would show up now
        seen = self.watcher.snapshot()
        mine = {e: seen[e] for e in produced if e in seen}
        unexpected = sum(1 for e in seen if e not in self.all_produced)
        latencies = [mine[e] - produced[e][1] for e in mine]
        outbox = [q - c for _, c, q in produced.values()]
        lags = [c - s for s, c, _ in produced.values()]
        if self.watcher.error:
            notes.append(f"store watcher failed: {self.watcher.error}")
        broker_text = self.rig.broker.log_text()
        result = StepResult(
            rate=rate,
            seconds=seconds,
            devices=self.devices,
            produced=len(produced),
            stored=len(mine),
            missing=missing_at_settle,
            stuck=stuck,
            reconnects=reconnects,
            unexpected=unexpected,
            stored_in_window=sum(1 for t in mine.values() if t < end_at),
            latency={
                "p50": percentile(latencies, 50),
                "p90": percentile(latencies, 90),
                "p99": percentile(latencies, 99),
                "max": max(latencies, default=math.nan),
            },
            outbox_latency={"p50": percentile(outbox, 50), "p99": percentile(outbox, 99)},
            lag_p99=percentile(lags, 99),
            drain=max((t for t in mine.values()), default=end_at) - end_at,
            cpu=cpu,
            states={
                n: {k: v / max(1, sum(c.values())) for k, v in c.items()} for n, c in states.items()
            },
            rss_mb=rss,
            dropped=sum(int(s["dropped"]) for s in summaries),
            refused=sum(int(s["refused"]) for s in summaries),
            max_backlog=max(int(s["max_backlog"]) for s in summaries),
            drained=all(bool(s["drained"]) for s in summaries),
            token_bytes=self._mean_token_bytes(),
            broker_dropped=broker_text.count("being dropped"),
            notes=notes,
            ids=frozenset(produced),
        )
        log.info("step at %g ev/s: %s", rate, result)
        return result

    def _settle(self, produced: dict[str, Any], limit: float, quiet: float = 15.0) -> int:
        """Wait until every produced event is stored, or nothing new was stored for ``quiet``
        seconds, or ``limit`` seconds passed; how many are still missing."""
        assert self.watcher is not None
        deadline = time.monotonic() + limit
        last_count, last_change = -1, time.monotonic()
        while True:
            seen = self.watcher.snapshot()
            missing = sum(1 for event_id in produced if event_id not in seen)
            now = time.monotonic()
            if missing == 0 or now > deadline or now - last_change > quiet:
                return missing
            if len(seen) != last_count:
                last_count, last_change = len(seen), now
            time.sleep(0.25)

    def _mean_token_bytes(self) -> float:
        from central.store import AlertStore

        store = AlertStore(self.db_url)
        try:
            row = store.rows("SELECT AVG(LENGTH(token)) FROM alerts")[0]
        finally:
            store.close()
        return float(row[0] or 0.0)


# -- command line -------------------------------------------------------------------------


def _machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()
    return f"{os.cpu_count()} x {cpu}; load average at start {load[0]:.1f}"


def _workdir(root: str | None, on_disk: bool) -> Path:
    if root:
        return Path(root)
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) and not on_disk else None
    return Path(tempfile.mkdtemp(prefix="lfr-load-", dir=base))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.loadgen", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="internal: one worker process of simulated devices")
    worker.add_argument("spec", type=Path)
    for name in ("run", "search"):
        p = sub.add_parser(name)
        p.add_argument("--devices", type=int, default=50)
        p.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
        p.add_argument("--seconds", type=float, default=300 if name == "run" else 60)
        p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
        p.add_argument("--root", help="fleet directory (default: a new one under /dev/shm)")
        p.add_argument(
            "--devices-on-disk",
            action="store_true",
            help="fleet (device outboxes) on disk, not tmpfs: 50 outboxes then share one disk",
        )
        p.add_argument("--db-dir", type=Path, help="SQLite store directory (default: on disk)")
        p.add_argument("--keep", action="store_true", help="keep the fleet directory")
        p.add_argument(
            "--nice",
            type=int,
            default=10,
            help="niceness of the device workers (they stand for remote machines; default 10)",
        )
        p.add_argument("--out", type=Path, help="also write the Markdown here")
        p.add_argument(
            "--log-level",
            default="WARNING",
            choices=("INFO", "WARNING"),
            help="the simulated agents' log level (INFO logs every event queued)",
        )
        if name == "run":
            p.add_argument("--rate", type=float, default=50.0, help="events/s across the fleet")
        else:
            p.add_argument("--rates", default="50,100,200,400,800")
            p.add_argument("--refine", type=int, default=1, help="bisection steps at the break")
    args = parser.parse_args(argv)
    if args.command == "worker":
        return worker_main(args.spec)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    root = _workdir(args.root, args.devices_on_disk)
    db_dir = args.db_dir or Path(tempfile.mkdtemp(prefix="lfr-load-db-", dir="/var/tmp"))
    header = (
        f"{args.devices} simulated devices in {args.workers} worker processes, 2 listeners "
        f"(group 'load'), store {args.db}; machine: {_machine()}; fleet in {root}"
        + (f", SQLite store in {db_dir}" if args.db == "sqlite" else "")
    )
    print(header, flush=True)
    results: list[StepResult] = []
    rig = LoadRig(
        root,
        args.devices,
        root / "logs",
        db=args.db,
        db_dir=db_dir,
        workers=args.workers,
        log_level=args.log_level,
        nice=args.nice,
    )
    cores = os.cpu_count() or 1
    try:
        rig.start()
        if args.command == "run":
            results.append(rig.step(args.rate, args.seconds))
        else:
            rates = [float(r) for r in args.rates.split(",")]
            good: float | None = None
            bad: float | None = None
            for rate in rates:
                result = rig.step(rate, args.seconds)
                results.append(result)
                print(markdown(results[-1:], cores).splitlines()[-1], flush=True)
                if not result.ok:
                    bad = rate
                    break
                good = rate
            for _ in range(args.refine if good is not None and bad is not None else 0):
                assert good is not None and bad is not None
                rate = round((good + bad) / 2)
                result = rig.step(rate, args.seconds)
                results.append(result)
                print(markdown(results[-1:], cores).splitlines()[-1], flush=True)
                good, bad = (rate, bad) if result.ok else (good, rate)
            if bad is None:
                print("no break point up to the highest rate offered")
            else:
                print(f"break point: held {good} ev/s, broke at {bad} ev/s")
        stored = rig.stored_ids()
    finally:
        rig.close()
    produced = sum(r.produced for r in results)
    text = "\n\n".join(
        [
            header,
            markdown(results, cores),
            details(results),
            f"Store: {len(stored)} rows, {len(set(stored))} distinct event ids, "
            f"{produced} events produced over all steps; listeners said (stored, duplicates "
            f"redelivered, refused): {rig.listener_totals}",
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
        if args.db == "sqlite" and not args.db_dir:
            shutil.rmtree(db_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
