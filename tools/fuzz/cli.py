"""The command line of the fuzzing campaign (``python -m tools.fuzz``; ``make fuzz``, ``make
fuzz-atheris``)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import subprocess
import sys
import time
import traceback
from pathlib import Path

from tools.fuzz.atheris_engine import run_atheris
from tools.fuzz.campaign import replay, run_campaign
from tools.fuzz.targets import TARGETS

DESCRIPTION = (
    "A structure-aware mutation fuzzing campaign on the watchlist, event, command and status "
    "parsers."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fuzz", description=DESCRIPTION)
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=None, help="default: from the clock")
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    parser.add_argument("--hang-seconds", type=float, default=1.0)
    parser.add_argument("--replay", type=Path, metavar="CRASH_JSON")
    parser.add_argument(
        "--engine",
        choices=["mutation", "atheris"],
        default="mutation",
        help="atheris: coverage-guided by libFuzzer (optional: pip install atheris)",
    )
    args = parser.parse_args(argv)
    if args.replay is not None:
        outcome, exc = replay(args.replay)
        print(f"replay {args.replay}: {outcome}" + (f" ({exc!r})" if exc else ""))
        if outcome == "crash" and exc is not None:
            traceback.print_exception(exc)
        return 1 if outcome == "crash" else 0
    seed = args.seed if args.seed is not None else int(time.time())
    print(f"fuzzing seed {seed} (replay a crash: --replay FILE)", flush=True)
    targets = TARGETS if args.target == "all" else (args.target,)
    if args.engine == "atheris":
        if importlib.util.find_spec("atheris") is None:
            print("atheris is not installed (pip install atheris); use --engine mutation")
            return 2
        if len(targets) == 1:
            run_atheris(targets[0], args.inputs, seed, args.crash_dir)
        failed = 0
        for name in targets:  # libFuzzer exits its process: one process per target
            command = [sys.executable, "-m", "tools.fuzz", "--engine", "atheris"]
            command += ["--target", name, "--inputs", str(args.inputs), "--seed", str(seed)]
            command += ["--crash-dir", str(args.crash_dir)]
            failed += subprocess.run(command, check=False).returncode != 0  # noqa: S603 - this module
        return 1 if failed else 0
    crashes = 0
    for name in targets:
        report = run_campaign(
            name,
            args.inputs,
            seed,
            args.crash_dir,
            hang_seconds=args.hang_seconds,
            progress=lambda r: print(
                f"  {r.target}: {r.inputs} inputs, {r.seconds:.0f} s, crashes {len(r.crashes)}",
                flush=True,
            ),
        )
        print("\n".join(report.lines()), flush=True)
        crashes += len(report.crashes)
    print(f"total crashes: {crashes}")
    return 1 if crashes else 0
