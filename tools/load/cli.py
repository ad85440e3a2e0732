"""Load: a fleet of simulated devices on the agent's real publishing path, one real broker,
two real ``lfr-alerts listen`` in one shared-subscription group, and what reaches the store.

``run`` measures one step at one offered rate; ``search`` offers rising rates until a step
fails (an event missing or unexpected, or p99 latency over 1 s), then bisects between the last
rate that held and the first that broke. ``worker`` is one worker process of simulated devices
(the rig starts those).

    python -m tools.load run --devices 50 --rate 200 --seconds 300
    python -m tools.load search --devices 50 --rates 100,200,300,400 --seconds 60
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from protocol.topics import DEFAULT_SHARE_GROUP
from tools.load.results import StepResult, details, markdown
from tools.load.workers import worker_main

if TYPE_CHECKING:
    from tools.load.rig import LoadRig


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
    shm = Path("/dev/shm")  # noqa: S108 - tmpfs on purpose; mkdtemp makes a private directory
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) and not on_disk else None
    return Path(tempfile.mkdtemp(prefix="lfr-load-", dir=base))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.load", description=__doc__.split("\n\n")[0]
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
    return parser


def _search(rig: LoadRig, rates: list[float], seconds: float, refine: int) -> list[StepResult]:
    """Rising rates until a step fails, then ``refine`` bisection steps between the last rate
    that held and the first that broke; each step's row printed as it comes."""
    cores = os.cpu_count() or 1
    results: list[StepResult] = []
    good: float | None = None
    bad: float | None = None
    for rate in rates:
        result = rig.step(rate, seconds)
        results.append(result)
        print(markdown(results[-1:], cores).splitlines()[-1], flush=True)
        if not result.ok:
            bad = rate
            break
        good = rate
    for _ in range(refine if good is not None and bad is not None else 0):
        assert good is not None and bad is not None
        rate = round((good + bad) / 2)
        result = rig.step(rate, seconds)
        results.append(result)
        print(markdown(results[-1:], cores).splitlines()[-1], flush=True)
        good, bad = (rate, bad) if result.ok else (good, rate)
    if bad is None:
        print("no break point up to the highest rate offered")
    else:
        print(f"break point: held {good} ev/s, broke at {bad} ev/s")
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "worker":
        return worker_main(args.spec)
    # Here, not at the top: the worker processes import this module and need none of the rig.
    from tools.load.rig import LoadRig

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    root = _workdir(args.root, args.devices_on_disk)
    db_dir = args.db_dir or Path(tempfile.mkdtemp(prefix="lfr-load-db-", dir="/var/tmp"))
    header = (
        f"{args.devices} simulated devices in {args.workers} worker processes, 2 listeners "
        f"(group {DEFAULT_SHARE_GROUP!r}), store {args.db}; machine: {_machine()}; fleet in {root}"
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
            results = _search(rig, rates, args.seconds, args.refine)
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
