"""The rig: a quickstart fleet, its broker, two ``lfr-alerts listen`` in one shared-subscription
group and their store; and one measured step at one offered rate."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central.store import AlertStore
from protocol.topics import DEFAULT_SHARE_GROUP
from provisioning.authority import Authority
from provisioning.broker import refresh
from provisioning.broker_admin import sync
from provisioning.fleet import issue_client
from tools.load.device import WATCHLIST_COLOURS
from tools.load.procstats import Usage, measure, peak_rss_mb
from tools.load.results import StepResult, percentile
from tools.load.watch import StoreWatcher
from tools.load.workers import Produced, Workers
from tools.postgres import create_database, drop_database
from tools.processes import Proc, Rig, wait_until
from tools.synthetic import seal_for

log = logging.getLogger(__name__)
STOPPED = re.compile(r"stopped: (\d+) alerts stored, (\d+) duplicates, (\d+) refused")
LISTENERS = ["listener-1", "listener-2"]


@dataclass
class Settled:
    """What was missing once deliveries stopped, and what the listener restarts brought."""

    missing: int  # not stored when nothing more arrived (or after `settle` s)
    stuck: int  # of those, still not stored after the restarts
    reconnects: int  # listener restarts made


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
        group: str = DEFAULT_SHARE_GROUP,
        tick: float = 0.04,
        log_level: str = "WARNING",
        nice: int = 10,
    ) -> None:
        self.root, self.devices, self.logs = Path(root), devices, Path(logs)
        self.db_kind, self.workers, self.group = db, max(1, min(workers, devices)), group
        self.db_dir = Path(db_dir) if db_dir else self.root
        self.tick, self.log_level, self.nice = tick, log_level, nice
        self.rig: Rig | None = None
        self.listeners: list[Proc] = []
        self.watcher: StoreWatcher | None = None
        self.db_url = ""
        self._pg_url: str | None = None
        self._steps = 0
        self.listener_totals: list[tuple[int, int, int]] = []
        self.all_produced: set[str] = set()

    # setup and teardown

    def start(self) -> LoadRig:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.rig = Rig.create(self.root, self.devices, self.logs)
        auth = Path(self.rig.index["authority_dir"])
        # A second consumer needs its own certificate: the CN is its client id.
        issue_client(auth, "alerts", "alerts-2", self._clients, datetime.now(UTC))
        refresh(Authority.load(auth), datetime.now(UTC))
        sync(Authority.load(auth))  # live: the dynamic-security plugin ignores SIGHUP
        self._push_watchlists()
        self.db_url = self._make_db()
        self._start_listeners()
        self.watcher = StoreWatcher(self.db_url).start()
        return self

    @property
    def fleet(self) -> Rig:
        if self.rig is None:
            raise RuntimeError("the load rig is not started")
        return self.rig

    @property
    def _clients(self) -> Path:
        return Path(self.fleet.index["clients"]["alerts"]["cert"]).parent

    def _start_listeners(self) -> None:
        self.listeners = [
            self.fleet.listener(
                f"load-listener-{number}",
                str(self._clients / f"{name}.crt"),
                self.db_url,
                self.group,
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
        ops = self.fleet.client("ops")
        try:
            for device_id in self.fleet.device_ids:
                bundle = seal_for(
                    self.fleet.index, device_id, WATCHLIST_COLOURS, 1, timedelta(hours=12)
                )
                topic = self.fleet.topic(device_id, "watchlist")
                code = ops.wait_ack(ops.publish(topic, bundle, retain=True))
                if code not in (0, 16):
                    raise RuntimeError(f"broker refused the watchlist for {device_id} ({code:#x})")
        finally:
            ops.close()

    def _make_db(self) -> str:
        if self.db_kind == "sqlite":
            self.db_dir.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{self.db_dir.resolve() / 'alerts.db'}"
        self._pg_url = create_database("lfr_load")
        return self._pg_url

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
        if self._pg_url is not None:
            drop_database(self._pg_url)

    def __enter__(self) -> LoadRig:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # the store as a whole

    def stored_ids(self) -> list[str]:
        """Every event id in the store, one per row (duplicates would show twice)."""
        store = AlertStore(self.db_url)
        try:
            return [str(r[0]) for r in store.rows("SELECT event_id FROM alerts")]
        finally:
            store.close()

    def _mean_token_bytes(self) -> float:
        store = AlertStore(self.db_url)
        try:
            row = store.rows("SELECT AVG(LENGTH(token)) FROM alerts")[0]
        finally:
            store.close()
        return float(row[0] or 0.0)

    # one step at one offered rate

    def step(self, rate: float, seconds: float, settle: float = 120.0) -> StepResult:
        """Offer ``rate`` events/s across the fleet for ``seconds``; give deliveries up to
        ``settle`` seconds to finish; measure."""
        self._steps += 1
        run = self.root / f"step-{self._steps}"
        run.mkdir(parents=True, exist_ok=True)
        workers = self._start_workers(run, rate / self.devices, seconds, settle)
        workers.wait_ready(120)
        start_at = workers.go(1.0)
        broker = self.fleet.broker.process
        assert broker is not None
        components = {
            "broker": [broker.pid],
            "listener-1": [self.listeners[0].pid],
            "listener-2": [self.listeners[1].pid],
            "devices": [p.pid for p in workers.procs],
            "watcher": [os.getpid()],
        }
        end_at = start_at + seconds
        usage = measure(components, ["broker", *LISTENERS], start_at, end_at)
        rss = {name: peak_rss_mb(components[name][0]) for name in ("broker", *LISTENERS)}
        rss[f"worker (of {len(workers.shares[0])} devices)"] = peak_rss_mb(workers.procs[0].pid)
        workers.wait(seconds + settle + 120)
        produced = workers.produced()
        self.all_produced.update(produced)
        settled = self._settle_or_restart(produced, settle)
        time.sleep(1.0)  # anything beyond what was produced would show up now
        result = self._result(
            rate,
            seconds,
            end_at=end_at,
            produced=produced,
            summaries=workers.summaries(),
            usage=usage,
            rss=rss,
            settled=settled,
        )
        log.info("step at %g ev/s: %s", rate, result)
        return result

    def _start_workers(self, run: Path, per_device: float, seconds: float, drain: float) -> Workers:
        configs = [d["config"] for d in self.fleet.index["devices"]]
        settings = {
            "rate": per_device,
            "seconds": seconds,
            "tick": self.tick,
            "log_level": self.log_level,
            "nice": self.nice,
            "drain": drain,
        }
        shares = [configs[i :: self.workers] for i in range(self.workers)]
        return Workers.start(
            run, self.logs, shares, settings, seed=self._steps * 100, started=self.fleet.procs
        )

    def _settle_or_restart(self, produced: Produced, settle: float) -> Settled:
        missing = self._settle(produced, settle)
        stuck, reconnects = missing, 0
        while stuck and reconnects < 5:
            # Stuck in the broker, or gone? Reconnect the consumers (their persistent
            # sessions keep what the broker holds for them) and look again.
            self.restart_listeners()
            reconnects += 1
            before, stuck = stuck, self._settle(produced, 60.0)
            if stuck == before:
                break
        return Settled(missing, stuck, reconnects)

    def _settle(self, produced: Produced, limit: float, quiet: float = 15.0) -> int:
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

    def _result(
        self,
        rate: float,
        seconds: float,
        *,
        end_at: float,
        produced: Produced,
        summaries: list[dict[str, Any]],
        usage: Usage,
        rss: dict[str, float],
        settled: Settled,
    ) -> StepResult:
        assert self.watcher is not None
        notes = []
        if settled.missing:
            notes.append(
                f"{settled.missing} events not stored when deliveries stopped; "
                f"{settled.missing - settled.stuck} arrived after {settled.reconnects} listener "
                f"restarts, {settled.stuck} did not"
            )
        if self.watcher.error:
            notes.append(f"store watcher failed: {self.watcher.error}")
        seen = self.watcher.snapshot()
        mine = {e: seen[e] for e in produced if e in seen}
        latencies = [mine[e] - produced[e][1] for e in mine]
        outbox = [q - c for _, c, q in produced.values()]
        lags = [c - s for s, c, _ in produced.values()]
        return StepResult(
            rate=rate,
            seconds=seconds,
            devices=self.devices,
            produced=len(produced),
            stored=len(mine),
            missing=settled.missing,
            stuck=settled.stuck,
            reconnects=settled.reconnects,
            unexpected=sum(1 for e in seen if e not in self.all_produced),
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
            cpu=usage.cpu,
            states=usage.states,
            rss_mb=rss,
            dropped=sum(int(s["dropped"]) for s in summaries),
            refused=sum(int(s["refused"]) for s in summaries),
            max_backlog=max(int(s["max_backlog"]) for s in summaries),
            drained=all(bool(s["drained"]) for s in summaries),
            token_bytes=self._mean_token_bytes(),
            broker_dropped=self.fleet.broker.log_text().count("being dropped"),
            notes=notes,
            ids=frozenset(produced),
        )
