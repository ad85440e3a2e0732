"""The worker processes of one step: each runs a share of the fleet's simulated devices as
threads. The rig and a worker talk through files in the step's directory: the worker's spec
(JSON), ``ready-<n>`` (its agents are connected with their watchlists), ``go`` (the start time,
written once for all), then ``records-<n>.csv`` (one line per event produced) and
``summary-<n>.json`` (each device's counters)."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tools.load.device import Schedule, simulated_agent

if TYPE_CHECKING:
    from tools.processes import Proc

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)
Produced = dict[str, tuple[float, float, float]]  # event id: scheduled, created, queued


@dataclass
class Workers:
    """The rig's side: start the workers, wait until all are ready, say go, collect."""

    run: Path
    logs: Path
    shares: list[list[str]]  # device configs, by worker
    procs: list[Proc]

    @classmethod
    def start(
        cls,
        run: Path,
        logs: Path,
        shares: list[list[str]],
        settings: dict[str, Any],
        *,
        seed: int,
        started: list[Proc],
    ) -> Workers:
        """One worker per share of device configs; ``settings`` go into every spec, the seed
        is ``seed`` plus the worker's number; each process is added to ``started`` as it
        starts (whoever owns that list stops them)."""
        # Here, not at the top: a worker process imports this module, and needs none of it.
        from tools.processes import BIN, Proc

        procs = []
        for number, share in enumerate(shares, start=1):
            spec = {
                "configs": share,
                **settings,
                "seed": seed + number,
                "ready": str(run / f"ready-{number}"),
                "go": str(run / "go"),
                "records": str(run / f"records-{number}.csv"),
                "summary": str(run / f"summary-{number}.json"),
            }
            spec_path = run / f"worker-{number}.json"
            spec_path.write_text(json.dumps(spec))
            proc = Proc(
                [str(BIN / "python"), "-m", "tools.load", "worker", str(spec_path)],
                logs / f"load-worker-{number}.log",
                env={"PYTHONPATH": str(ROOT)},
            ).start()
            started.append(proc)
            procs.append(proc)
        return cls(run, logs, shares, procs)

    @property
    def numbers(self) -> range:
        return range(1, len(self.procs) + 1)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all((self.run / f"ready-{n}").exists() for n in self.numbers):
            dead = [p for p in self.procs if not p.alive]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"workers did not get ready: see {self.logs}/load-worker-*.log")
            time.sleep(0.1)

    def go(self, delay: float) -> float:
        """Tell every worker to start ``delay`` seconds from now; that wall-clock time."""
        start_at = time.time() + delay
        (self.run / "go.tmp").write_text(f"{start_at:.6f}")
        (self.run / "go.tmp").rename(self.run / "go")
        return start_at

    def wait(self, timeout: float) -> None:
        for proc in self.procs:
            code = proc.wait(timeout)
            if code != 0:
                raise RuntimeError(f"worker exited with {code}: see {proc.log}")

    def produced(self) -> Produced:
        produced: Produced = {}
        for number in self.numbers:
            for line in (self.run / f"records-{number}.csv").read_text().splitlines():
                event_id, _, scheduled, created, queued = line.split(",")
                produced[event_id] = (float(scheduled), float(created), float(queued))
        return produced

    def summaries(self) -> list[dict[str, Any]]:
        return [
            s
            for n in self.numbers
            for s in json.loads((self.run / f"summary-{n}.json").read_text())
        ]


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
