"""The fuzzing campaign (tools/fuzz) at CI size, and its harness.

CI size: 3,000 inputs per target (a few seconds each). Full size (docs/reliability.md):
``LFR_RELIABILITY_SCALE=full`` runs 100,000 per target here, or from the command line
``python -m tools.fuzz --target all --inputs 100000 --seed S``.
``LFR_FUZZ_SEED`` picks another seed (the default one is fixed, so CI is reproducible).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol.errors import REASONS, BadEncoding
from tests.reliability.conftest import Recorder, sized
from tools.fuzz.campaign import replay, run_campaign
from tools.fuzz.targets import Target, make_target
from tools.fuzz.world import World

SEED = int(os.environ.get("LFR_FUZZ_SEED", "20261128"))
INPUTS = sized(3_000, 100_000)

# What a campaign must reach at CI size with the default seed, to show it parses deep: every
# reason each parser can give (an event's wrong_device is the listener's topic check).
EXPECTED = {
    "watchlist": {
        "open_bundle": set(REASONS) - {"bad_signature", "unknown_signer"},
    },
    "event": {
        "verify_event": {
            "oversize",
            "bad_json",
            "unsupported_algorithm",
            "bad_signature",
            "unknown_signer",
            "decryption_failed",
        },
        "parse_stored_event": {"oversize", "bad_json", "unsupported_algorithm"},
    },
    "command": {
        "open_command": {
            "oversize",
            "bad_json",
            "unsupported_algorithm",
            "too_few_signatures",
            "wrong_device",
            "rollback",
            "expired",
            "not_yet_valid",
        },
    },
    # Unsigned, so it has only the encoding's reasons: size, then structure and values.
    "status": {"parse_status": {"oversize", "bad_json"}},
}


@pytest.mark.parametrize("target", ["watchlist", "event", "command", "status"])
def test_campaign_finds_no_crash(
    target: str, artefacts: Path, record: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_campaign(target, INPUTS, SEED, artefacts / "fuzz-crashes")
    with capsys.disabled():
        print("\n" + "\n".join(report.lines()))
    for reason, message in sorted(report.samples.items()):
        record("fuzz-refusals", f"{target} {reason}: {message}")
    assert report.inputs == INPUTS
    assert not report.crashes, "\n".join(report.lines())
    for check, reasons in EXPECTED[target].items():
        if INPUTS >= 3_000 and SEED == 20261128:
            assert reasons <= set(report.reasons[check]), (check, report.reasons[check])
        assert report.accepted[check] > 0, f"no valid input got through {check}"
    # Hostile structures behind valid signatures are most of what reaches the deep checks.
    assert report.mutators["structure"] > INPUTS // 3


def test_campaign_is_reproducible_from_its_seed() -> None:
    first = run_campaign("command", 300, 7)
    second = run_campaign("command", 300, 7)
    third = run_campaign("command", 300, 8)
    assert first.trace == second.trace and first.reasons == second.reasons
    assert first.trace != third.trace


def test_a_crash_is_saved_and_replays(tmp_path: Path) -> None:
    """A parser that breaks the contract on some inputs (a test double of a parser, to check
    the harness): the campaign counts the crash, writes it down, and replay reproduces it."""
    world = World.create(3)
    real = make_target("command", world)

    def fragile(data: bytes) -> object:
        if len(data) % 5 == 0:
            raise KeyError("one input in five")
        raise BadEncoding("refused")

    target = Target("command", real.limit, real.seeds, [("open_command", fragile)], real.generate)
    report = run_campaign("command", 200, 3, tmp_path, target=target)
    assert report.crashes and all(c.signature.startswith("KeyError") for c in report.crashes)
    saved = next(c.file for c in report.crashes if c.file is not None)
    doc = json.loads(saved.read_text())
    assert doc["seed"] == 3 and doc["target"] == "command" and "KeyError" in doc["traceback"]
    # Replayed against the real parser, the same bytes are refused (or parse): no crash.
    outcome, _ = replay(saved)
    assert outcome != "crash"


def test_a_hang_is_a_crash(tmp_path: Path) -> None:
    world = World.create(4)
    real = make_target("event", world)
    calls = {"n": 0}

    def spins_once(data: bytes) -> object:
        calls["n"] += 1
        if calls["n"] == 5:
            while True:  # interrupted by the campaign's timer after 0.3 s of CPU time
                pass
        return None

    def blocks_once(data: bytes) -> object:
        calls["n"] += 1
        if calls["n"] == 13:
            time.sleep(60)  # interrupted by the wall-clock backstop (10 x 0.3 s)
        return None

    for check in (spins_once, blocks_once):
        target = Target("event", real.limit, real.seeds, [("verify_event", check)], real.generate)
        started = time.monotonic()
        report = run_campaign("event", 10, 4, tmp_path, hang_seconds=0.3, target=target)
        assert time.monotonic() - started < 30
        assert [c.index for c in report.crashes] == [4 if check is spins_once else 2]
        assert report.crashes[0].signature.startswith("Hang")


def test_atheris_engine_when_installed(tmp_path: Path) -> None:
    """The optional coverage-guided engine (libFuzzer through atheris), briefly."""
    pytest.importorskip("atheris")
    command = [sys.executable, "-m", "tools.fuzz", "--engine", "atheris"]
    command += ["--target", "command", "--inputs", "500", "--seed", str(SEED)]
    command += ["--crash-dir", str(tmp_path / "crashes")]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Done 500 runs" in result.stderr, result.stderr[-3000:]
    assert "open_command: accepted" in result.stdout
    assert not list((tmp_path / "crashes").iterdir())
