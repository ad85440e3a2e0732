"""The coverage-guided engine: the same targets, contract and mutators driven by libFuzzer
through atheris (an optional dependency, imported here only)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from protocol import errors
from tools.fuzz.campaign import Report
from tools.fuzz.contract import Leak
from tools.fuzz.mutators import byte_op, nest
from tools.fuzz.targets import make_target
from tools.fuzz.world import World


def _instrument_protocol(atheris: Any) -> None:
    """Coverage feedback from the parsers only (``instrument_all`` would take a minute over
    numpy and cryptography): every function and method of the ``protocol`` package."""
    for module_name, module in list(sys.modules.items()):
        if module_name != "protocol" and not module_name.startswith("protocol."):
            continue
        for obj in list(vars(module).values()):
            if getattr(obj, "__module__", None) != module_name:
                continue
            members = vars(obj).values() if isinstance(obj, type) else [obj]
            for member in members:
                function = getattr(member, "__func__", None) or getattr(member, "fget", member)
                if inspect.isfunction(function):
                    atheris.instrument_func(function)


def run_atheris(name: str, inputs: int, seed: int, crash_dir: Path) -> None:
    """The same target, contract and mutators, coverage-guided by libFuzzer through atheris
    (an optional dev dependency: ``pip install atheris``; x86_64 wheels for CPython 3.11).

    libFuzzer picks the input to mutate by the coverage it found; the mutator is this
    module's (structured inputs behind valid signatures, byte operations) or libFuzzer's own.
    A contract violation propagates, so libFuzzer stops and writes the input into
    ``crash_dir`` (``-timeout=1`` makes a hang a crash too). Does not return: libFuzzer exits
    the process when it is done.
    """
    atheris: Any = importlib.import_module("atheris")
    world = World.create(seed)
    target = make_target(name, world)
    report = Report(name, seed)
    report.reasons = {check: Counter() for check, _ in target.checks}
    report.accepted = {check: 0 for check, _ in target.checks}
    pool = list(target.seeds)
    started = time.perf_counter()

    def one_input(data: bytes) -> None:
        nonlocal started
        if not report.inputs:
            started = time.perf_counter()
        report.inputs += 1
        for check_name, check in target.checks:
            try:
                check(data)
                report.accepted[check_name] += 1
            except errors.RejectedInput as exc:
                if exc.reason not in errors.REASONS or not str(exc):
                    raise AssertionError(f"refusal without a known reason: {exc!r}") from exc
                if any(word in str(exc) for word in target.secrets):
                    raise Leak(f"sealed content in the message: {exc}") from exc
                report.reasons[check_name][exc.reason] += 1
        if report.inputs % 10_000 == 0 or report.inputs == inputs:
            report.seconds = time.perf_counter() - started
            rate = report.inputs / report.seconds if report.seconds else 0.0
            lines = [
                f"target {name} (atheris): {report.inputs} inputs, seed {seed}, "
                f"{report.seconds:.1f} s ({rate:.0f}/s), no crash so far",
                *report.lines()[1:],
            ]
            print("\n".join(line for line in lines if "by mutator" not in line), flush=True)

    def mutate(data: bytes, max_size: int, mutation_seed: int) -> bytes:
        rng = random.Random(mutation_seed)  # noqa: S311 - libFuzzer's seed, not a secret
        roll = rng.random()
        if roll < 0.45:
            out = target.generate(rng)
            pool[len(target.seeds) + rng.randrange(256) :] = [out]
        elif roll < 0.75:
            out = bytes(atheris.Mutate(data, max_size))
        elif roll < 0.78:
            out = nest(data, rng)
        else:
            out = byte_op(data, rng, pool)[0]
        return out[:max_size]

    corpus = Path(tempfile.mkdtemp(prefix=f"lfr-fuzz-{name}-"))
    for index, seed_input in enumerate(target.seeds):
        (corpus / f"seed-{index}").write_bytes(seed_input)
    crash_dir.mkdir(parents=True, exist_ok=True)
    print(f"atheris {name}: seed {seed}, corpus {corpus}, crashes into {crash_dir}/", flush=True)
    _instrument_protocol(atheris)
    atheris.Setup(
        [
            sys.argv[0],
            f"-runs={inputs}",
            f"-seed={seed % 2**32 or 1}",
            "-timeout=1",
            "-max_len=1048576",
            "-rss_limit_mb=4096",
            "-print_final_stats=1",
            f"-artifact_prefix={crash_dir}/",
            str(corpus),
        ],
        one_input,
        custom_mutator=mutate,
    )
    atheris.Fuzz()
