"""The campaign: N inputs from a seed against one target, crashes counted and saved as JSON,
and a saved crash replayed with the keys of its seed."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.fuzz.contract import Timer, run_one
from tools.fuzz.mutators import byte_op, nest
from tools.fuzz.targets import Target, make_target
from tools.fuzz.world import World


@dataclass
class Crash:
    target: str
    check: str
    index: int
    signature: str
    error: str
    file: Path | None


@dataclass
class Report:
    target: str
    seed: int
    inputs: int = 0
    accepted: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, Counter[str]] = field(default_factory=dict)
    mutators: Counter[str] = field(default_factory=Counter)
    crashes: list[Crash] = field(default_factory=list)
    samples: dict[str, str] = field(default_factory=dict)  # one refusal message per reason
    warnings: Counter[str] = field(default_factory=Counter)  # distinct warnings (not crashes)
    seconds: float = 0.0
    slowest: float = 0.0
    trace: str = ""

    @property
    def distinct_reasons(self) -> set[str]:
        return {reason for counter in self.reasons.values() for reason in counter}

    def lines(self) -> list[str]:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        out = [
            f"target {self.target}: {self.inputs} inputs, seed {self.seed}, "
            f"{self.seconds:.1f} s ({rate:.0f}/s), slowest input {self.slowest * 1000:.1f} ms CPU, "
            f"crashes {len(self.crashes)}, trace {self.trace[:16]}"
        ]
        for check, counter in self.reasons.items():
            reasons = ", ".join(f"{k}={v}" for k, v in sorted(counter.items()))
            out.append(
                f"  {check}: accepted {self.accepted.get(check, 0)}, "
                f"{len(counter)} distinct reasons: {reasons}"
            )
        out.append(
            "  inputs by mutator: " + ", ".join(f"{k}={v}" for k, v in self.mutators.items())
        )
        for crash in self.crashes[:20]:
            out.append(f"  CRASH #{crash.index} {crash.check}: {crash.signature} -> {crash.file}")
        return out


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def _save_crash(
    crash_dir: Path, report: Report, *, check: str, index: int, data: bytes, exc: BaseException
) -> Path:
    crash_dir.mkdir(parents=True, exist_ok=True)
    path = crash_dir / f"crash-{report.target}-{check}-seed{report.seed}-{index}.json"
    doc = {
        "target": report.target,
        "check": check,
        "seed": report.seed,
        "index": index,
        "signature": _signature(exc),
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc)),
        "input_b64": base64.b64encode(data).decode("ascii"),
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def next_input(target: Target, rng: random.Random, pool: list[bytes]) -> tuple[bytes, str]:
    roll = rng.random()
    if roll < 0.04:
        return rng.choice(target.seeds), "seed"
    if roll < 0.042:
        data = rng.choice(target.seeds)
        return data + b" " * (target.limit + 1 - len(data)), "oversize"
    if roll < 0.05:
        return nest(rng.choice(pool), rng), "nest"
    if roll < 0.50:
        data, names = rng.choice(pool), []
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
            data, name = byte_op(data, rng, pool)
            names.append(name)
        return data, "bytes:" + names[0]
    return target.generate(rng), "structure"


def run_campaign(
    name: str,
    inputs: int,
    seed: int,
    crash_dir: Path | None = None,
    *,
    hang_seconds: float = 1.0,
    target: Target | None = None,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Run ``inputs`` inputs against target ``name``; never raises for a crash (see report)."""
    world = World.create(seed)
    target = target or make_target(name, world)
    rng = random.Random(f"lfr-fuzz/{seed}/{name}")  # noqa: S311 - reproducible, not secret
    report = Report(name, seed)
    report.reasons = {check: Counter() for check, _ in target.checks}
    report.accepted = {check: 0 for check, _ in target.checks}
    pool = list(target.seeds)  # seeds, then the latest structured inputs (bounded)
    trace = hashlib.sha256()
    seen_crashes: Counter[str] = Counter()
    started = time.perf_counter()
    with Timer(hang_seconds) as timer, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # each distinct warning once
        for index in range(inputs):
            data, mutator = next_input(target, rng, pool)
            report.mutators[mutator.split(":")[0]] += 1
            trace.update(f"{mutator}:{len(data)};".encode())
            if mutator == "structure":
                if len(pool) < len(target.seeds) + 256:
                    pool.append(data)
                else:
                    pool[len(target.seeds) + index % 256] = data
            for check_name, check in target.checks:
                outcome, exc, elapsed = run_one(check, data, timer, target.secrets)
                report.slowest = max(report.slowest, elapsed)
                if outcome == "ok":
                    report.accepted[check_name] += 1
                elif outcome != "crash":
                    report.reasons[check_name][outcome] += 1
                    report.samples.setdefault(outcome, str(exc))
                else:
                    assert exc is not None
                    signature = _signature(exc)
                    seen_crashes[signature] += 1
                    path = None
                    if crash_dir is not None and seen_crashes[signature] <= 3:
                        path = _save_crash(
                            crash_dir, report, check=check_name, index=index, data=data, exc=exc
                        )
                    report.crashes.append(
                        Crash(name, check_name, index, signature, f"{exc!r}"[:300], path)
                    )
            report.inputs = index + 1
            if progress is not None and (index + 1) % 10_000 == 0:
                report.seconds = time.perf_counter() - started
                progress(report)
    report.seconds = time.perf_counter() - started
    report.trace = trace.hexdigest()
    for warning in caught:
        where = f"{Path(warning.filename).name}:{warning.lineno}"
        report.warnings[f"{warning.category.__name__} at {where}: {warning.message}"] += 1
    return report


def replay(path: Path) -> tuple[str, BaseException | None]:
    """Run a saved crash input again, with the keys of its seed."""
    doc = json.loads(path.read_text())
    world = World.create(int(doc["seed"]))
    target = make_target(str(doc["target"]), world)
    data = base64.b64decode(doc["input_b64"])
    check = dict(target.checks)[str(doc["check"])]
    with Timer(1.0) as timer:
        outcome, exc, _ = run_one(check, data, timer, target.secrets)
    return outcome, exc
