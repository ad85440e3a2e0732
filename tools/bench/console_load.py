"""``make bench-console``: the control-room console under load, on PostgreSQL (issue 19).

50 simulated devices (the reliability load generator, tools/load) publish alerts through a real
TLS Mosquitto to two ``lfr-alerts listen`` in one shared-subscription group, into a PostgreSQL
store that already holds 10,000 alerts; two ``lfr-alerts serve`` instances on that database
serve three officers (each in headless Chromium when Playwright and Chromium are here, else an
HTTP client; ``--browsers`` says how many: log in, poll the queue every second, open an alert
with its probe, decide) and a queue watcher. Measured: every alert stored exactly once; device ->
store and device -> shown in the queue; page loads at 10,000 stored alerts, quiet and under
load; the migration from schema 4 to the latest at 100,000 alerts. Writes
``reports/console-load.json`` and ``reports/console-load.md``. Not a test: nothing asserts a
time here (tests/bench/test_console_load.py runs a small size and checks the counts).

    python -m tools.bench.console_load [--devices 50 --rate 10 --seconds 120]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central.store import AlertStore
from tools.bench.console_browser import available as browser_available
from tools.bench.console_browser import browser_officer
from tools.bench.console_officers import Desk, officer, watcher
from tools.bench.console_report import render
from tools.bench.console_seed import migration_figures, seed_alerts
from tools.bench.console_ui import DEFAULT_QUEUE, OfficerClient, Timing
from tools.load.procstats import cpu_seconds
from tools.load.results import percentile
from tools.load.rig import LoadRig
from tools.processes import BIN, Proc, wait_until
from tools.report import REPORTS
from tools.report import cpu_seconds as own_cpu_seconds

log = logging.getLogger(__name__)
WATCHER = "queue-watcher"


def _run(*argv: str, stdin: str = "") -> None:
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {done.stderr.strip()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values, default=math.nan),
    }


def _timings(timings: list[Timing], start: float, end: float) -> dict[str, dict[str, float]]:
    """Milliseconds by kind of request, of the requests started in [start, end]."""
    kinds: dict[str, list[float]] = {}
    for t in timings:
        if start <= t.at <= end:
            kinds.setdefault(t.kind, []).append(t.seconds * 1000)
    return {kind: summary(values) for kind, values in kinds.items()}


class ConsoleBench:
    """The load rig plus officers' pages, their accounts and the people using them."""

    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args, self.root = args, root
        self.rig = LoadRig(
            root / "fleet",
            args.devices,
            root / "logs",
            db="postgresql",
            workers=args.workers,
            nice=args.nice,
        )
        self.passwords = {
            name: f"load-test password {number}"
            for number, name in enumerate([*self.officer_names, WATCHER])
        }
        self.ports: list[int] = []
        self.servers: list[Proc] = []
        self.tls: ssl.SSLContext | None = None
        self.browser = args.browser == "on" or (args.browser == "auto" and browser_available())

    @property
    def officer_names(self) -> list[str]:
        return [f"PC {n} Load" for n in range(1, self.args.officers + 1)]

    def start_pages(self) -> None:
        index, url = self.rig.fleet.index, self.rig.db_url
        page = self.root / "page"
        _run(
            "lfr-provision", "page-cert", "--authority", index["authority_dir"], "--host",
            "localhost", "--out", str(page),
        )  # fmt: skip
        for name, password in self.passwords.items():
            _run("lfr-alerts", "officers", "add", "--db", url, name, "--password-stdin",
                 stdin=password + "\n")  # fmt: skip
        self.tls = ssl.create_default_context(cafile=str(page / "ca.crt"))
        for number in range(1, self.args.instances + 1):
            port = _free_port()
            proc = Proc(
                [
                    str(BIN / "lfr-alerts"), "serve", "--db", url, "--adjudication-key",
                    index["adjudication_key"], "--tls-cert", str(page / "page.crt"),
                    "--port", str(port),
                ],
                self.root / "logs" / f"console-{number}.log",
            ).start()  # fmt: skip
            self.rig.fleet.procs.append(proc)  # stopped with the rig
            self.servers.append(proc)
            self.ports.append(port)
        for port in self.ports:
            wait_until(lambda p=port: self._accepts(p), 30, f"the console on port {port}")

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    def client(self, number: int) -> OfficerClient:
        """A client of instance ``number`` (round robin), reading the queue the chosen way."""
        port = self.ports[number % len(self.ports)]
        return OfficerClient("localhost", port, self.tls, queue_kind=self.args.queue)

    def quiet_page_loads(self, seeded: list[str]) -> dict[str, dict[str, float]]:
        """Queue and alert view, one at a time, before the load: ``--page-loads`` each."""
        client = self.client(0)
        client.login(WATCHER, self.passwords[WATCHER])
        rng = random.Random(7)  # noqa: S311 - which seeded alerts to open, reproducibly
        start = time.time()
        for _ in range(self.args.page_loads):
            client.queue()
            client.open(rng.choice(seeded))
        client.close()
        return _timings(client.timings, start, time.time())


def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    if args.migration_alerts:
        log.warning("migration: %d alerts at schema 4, then to the latest", args.migration_alerts)
        doc["migration"] = migration_figures(args.migration_alerts, datetime.now(UTC))
    bench = ConsoleBench(args, root)
    with bench.rig:
        seeded = seed_alerts(bench.rig.db_url, args.seed_alerts, datetime.now(UTC))
        bench.start_pages()
        doc["quiet"] = bench.quiet_page_loads(seeded)
        desk, seen, stop = Desk(), dict[str, float](), threading.Event()
        clients = [bench.client(n) for n in range(args.officers + 1)]
        threads = [
            threading.Thread(
                target=officer,
                args=(clients[n], name, bench.passwords[name], desk, stop),
                kwargs={"poll": args.poll, "think": args.think, "seed": n},
                name=name,
            )
            for n, name in enumerate(bench.officer_names)
        ]
        browser_timings: list[Timing] = []
        browsers = min(args.browsers, args.officers) if bench.browser else 0
        for n in range(browsers):
            # These officers work in Chromium (same instance, same account as the HTTP ones).
            name = bench.officer_names[n]
            threads[n] = threading.Thread(
                target=browser_officer,
                args=(f"https://localhost:{clients[n].port}", name, bench.passwords[name]),
                kwargs={
                    "desk": desk,
                    "stop": stop,
                    "timings": browser_timings,
                    "poll": args.poll,
                    "think": args.think,
                    "seed": n,
                },
                name=name,
            )
        threads.append(
            threading.Thread(
                target=watcher,
                args=(clients[-1], WATCHER, bench.passwords[WATCHER], desk, stop),
                kwargs={"poll": args.poll, "seen": seen},
                name=WATCHER,
            )
        )
        servers0 = {p.pid: cpu_seconds(p.pid) for p in bench.servers}
        start = time.time()
        for thread in threads:
            thread.start()
        try:
            step = bench.rig.step(args.rate, args.seconds, settle=args.settle)
        finally:
            time.sleep(min(3.0, args.poll * 2))  # the last alerts reach the watcher's queue
            stop.set()
            for thread in threads:
                thread.join(60)
        end = time.time()
        servers_cpu = [
            (cpu_seconds(pid) - c0) / (end - start) * 100 for pid, c0 in servers0.items()
        ]
        store_seen = bench.rig.watcher.snapshot() if bench.rig.watcher else {}
        produced = _produced(bench.rig.root / "step-1")
        doc["load"] = _load_figures(
            bench,
            step,
            produced=produced,
            store_seen=store_seen,
            queue_seen=seen,
            desk=desk,
            seeded=seeded,
        )
        # Under load: from the first alert produced (before it, the workers were starting).
        first = min(produced.values(), default=start)
        doc["load"]["pages"] = _timings(
            [t for c in clients for t in c.timings] + browser_timings, first, end
        )
        doc["load"]["browser"] = browsers
        doc["load"]["console_cpu_percent"] = servers_cpu
    doc["load"]["listener_totals"] = bench.rig.listener_totals  # what close() collected
    doc["cpu_seconds"] = own_cpu_seconds()
    return doc


def _produced(run: Path) -> dict[str, float]:
    """Event id: the wall-clock time the simulated device created it."""
    created = {}
    for records in sorted(run.glob("records-*.csv")):
        for line in records.read_text().splitlines():
            event_id, _, _, made, _ = line.split(",")
            created[event_id] = float(made)
    return created


def _load_figures(
    bench: ConsoleBench,
    step: Any,
    *,
    produced: dict[str, float],
    store_seen: dict[str, float],
    queue_seen: dict[str, float],
    desk: Desk,
    seeded: list[str],
) -> dict[str, Any]:
    rows = bench.rig.stored_ids()
    live = [e for e in rows if e in produced]
    to_store = [store_seen[e] - produced[e] for e in produced if e in store_seen]
    to_queue = [queue_seen[e] - produced[e] for e in produced if e in queue_seen]
    store = AlertStore(bench.rig.db_url)
    try:
        twice = store.rows(
            "SELECT COUNT(*) FROM (SELECT event_id FROM adjudications GROUP BY event_id "
            "HAVING COUNT(*) > 1) x"
        )[0][0]
    finally:
        store.close()
    step_doc = asdict(step)
    step_doc.pop("ids", None)
    return {
        "produced": len(produced),
        "rows": len(rows),
        "distinct_rows": len(set(rows)),
        "seeded": len(seeded),
        "live_rows": len(live),
        "live_distinct": len(set(live)),
        "missing": len(set(produced) - set(live)),
        "device_to_store_s": summary(to_store),
        "device_to_queue_s": summary(to_queue),
        "not_seen_in_queue": len(set(produced) - set(queue_seen)),
        "decided_by_officers": len(desk.decided),
        "per_officer": {n: list(desk.decided.values()).count(n) for n in bench.officer_names},
        "refused_decisions": desk.refused,
        "decided_twice": int(twice),
        "errors": desk.errors[:20],
        "error_count": len(desk.errors),
        "step": step_doc,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.bench.console_load", description=__doc__)
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--workers", type=int, default=4, help="device worker processes")
    p.add_argument("--rate", type=float, default=10.0, help="alerts/s across the fleet")
    p.add_argument("--seconds", type=float, default=120.0, help="seconds of load")
    p.add_argument("--settle", type=float, default=60.0, help="at most this long to drain")
    p.add_argument("--seed-alerts", type=int, default=10_000, help="alerts stored beforehand")
    p.add_argument("--migration-alerts", type=int, default=100_000, help="0: skip")
    p.add_argument("--officers", type=int, default=3)
    p.add_argument("--instances", type=int, default=2, help="lfr-alerts serve processes")
    p.add_argument("--queue", choices=("page", "api"), default=DEFAULT_QUEUE)
    p.add_argument("--poll", type=float, default=1.0, help="queue polling period, s")
    p.add_argument("--think", type=float, default=2.0, help="an officer's look at an alert, s")
    p.add_argument(
        "--browser",
        choices=("auto", "on", "off"),
        default="auto",
        help="officers in Chromium (auto: when Playwright and Chromium are here)",
    )
    p.add_argument(
        "--browsers",
        type=int,
        default=3,
        help="how many of the officers work in Chromium when --browser allows (default 3: all)",
    )
    p.add_argument("--page-loads", type=int, default=50, help="quiet loads of each page")
    p.add_argument("--nice", type=int, default=10, help="niceness of the device workers")
    p.add_argument("--out", type=Path, default=REPORTS)
    p.add_argument("--keep", action="store_true", help="keep the working directory")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    root = Path(tempfile.mkdtemp(prefix="lfr-console-load-"))
    try:
        doc = measure(args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "console-load.json").write_text(json.dumps(doc, indent=1) + "\n")
    text = render(doc)
    (args.out / "console-load.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
