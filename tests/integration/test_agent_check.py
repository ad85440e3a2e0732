"""`lfr-agent check` against a real broker: passes on a fresh node, names what is wrong."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.check import run_checks
from agent.cli import main as agent_main
from tests.fakes import use_fake_picamera2
from tools.broker import Broker

pytestmark = pytest.mark.integration


def test_check_passes_on_a_provisioned_node(
    index: dict[str, Any],
    broker: Broker,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_fake_picamera2(monkeypatch)  # camera.source is picamera2:0: check reads a frame
    config = index["devices"][0]["config"]
    assert agent_main(["check", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "check passed" in out
    assert {line.split()[0] for line in out.splitlines()[:-1]} == {
        "config",
        "identity",
        "keys",
        "certificate",
        "clock",
        "watchlist",
        "detector",
        "camera",
        "broker",
        "disk",
        "clock-sync",
        "models",
    }


def test_check_fails_and_names_the_problem(
    index: dict[str, Any], broker: Broker, tmp_path: Path
) -> None:
    device = index["devices"][1]
    os.chmod(device["key"], 0o644)
    try:
        rows = {r.name: r for r in run_checks(Path(device["config"]))}
    finally:
        os.chmod(device["key"], 0o600)
    assert not rows["keys"].ok and "chmod 600" in rows["keys"].detail
    broker.stop()
    try:
        rows = {r.name: r for r in run_checks(Path(device["config"]))}
        assert not rows["broker"].ok and "Connection refused" in rows["broker"].detail
    finally:
        broker.start()
    bad = tmp_path / "agent.toml"
    bad.write_text(Path(device["config"]).read_text().replace("[broker]", "[broker]\nprot = 1"))
    rows = {r.name: r for r in run_checks(bad)}
    assert not rows["config"].ok and "broker.prot: unknown key" in rows["config"].detail
