"""Two people, two workstations, through the real CLIs, a real broker and a real agent:
seal with no key -> sign on workstation A -> send refused (1 of 2) -> sign on workstation B ->
send -> the agent installs it; the same for a pause command."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from protocol.entries import dump_entries_file
from protocol.watchlist import read_draft
from tests.integration.test_central_tools import cli
from tools.synthetic import synthetic_entries

pytestmark = pytest.mark.integration


def _sign_on(workstation: Path, carried: Path, key: str) -> Path:
    """Carry the file to another workstation (a copy), sign it there with its own audit log,
    and carry it back."""
    workstation.mkdir(exist_ok=True)
    there = workstation / carried.name
    shutil.copy(carried, there)
    result = cli(
        "lfr-watchlist", "sign", str(there), "--key", key, "--yes",
        "--audit", str(workstation / "audit.jsonl"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "device:      cam-01 at site demo" in result.stdout
    shutil.copy(there, carried)
    return workstation / "audit.jsonl"


def _send(index: dict[str, Any], path: Path) -> Any:
    return cli(
        "lfr-watchlist", "send", str(path), "--authority", index["authority_dir"],
        "--client-cert", index["clients"]["ops"]["cert"], "--timeout", "20",
    )  # fmt: skip


def test_sealed_unsigned_signed_on_two_workstations_then_installed(
    index: dict[str, Any], live_agent: dict[str, Any], tmp_path: Path
) -> None:
    entries = tmp_path / "entries.json"
    entries.write_bytes(dump_entries_file(synthetic_entries([0, 2])))
    bundle = tmp_path / "wl.jws"
    sealed = cli(
        "lfr-watchlist", "seal", str(entries), "--device", "cam-01",
        "--registry", str(Path(index["authority_dir"]) / "registry.json"),
        "--authority", index["authority_dir"], "--expires", "2h", "--deployment", "two-person",
        "--threshold", "0.9", "--out", str(bundle),
    )  # fmt: skip
    assert sealed.returncode == 0, sealed.stderr
    assert "0 of 2 signature(s)" in sealed.stdout
    ops1, ops2 = index["ops_keys"]
    audit_a = _sign_on(tmp_path / "workstation-a", bundle, ops1)
    refused = _send(index, bundle)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "not sent" in refused.stderr and "1 valid signature" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (Path(live_agent["state_dir"]) / "watchlist.jws").exists()
    audit_b = _sign_on(tmp_path / "workstation-b", bundle, ops2)
    sent = _send(index, bundle)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    version = read_draft(bundle.read_bytes()).header.version
    assert re.search(rf"cam-01\s+{version}\s+applied", sent.stdout), sent.stdout
    installed = Path(live_agent["state_dir"]) / "watchlist.jws"
    assert installed.read_bytes() == bundle.read_bytes()
    records = [json.loads(p.read_text()) for p in (audit_a, audit_b)]
    assert records[0]["payload_sha256"] == records[1]["payload_sha256"]
    assert records[0]["kid"] != records[1]["kid"]
    sent_log = Path(index["authority_dir"]) / "signing-audit.jsonl"
    assert json.loads(sent_log.read_text().splitlines()[-1])["event"] == "sent"

    # A pause command, made on one workstation and signed on two.
    pause = tmp_path / "pause.jws"
    made = cli(
        "lfr-watchlist", "command", "pause", "--device", "cam-01",
        "--authority", index["authority_dir"], "--out", str(pause),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    _sign_on(tmp_path / "workstation-a", pause, ops1)
    assert _send(index, pause).returncode == 2
    _sign_on(tmp_path / "workstation-b", pause, ops2)
    paused = _send(index, pause)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert re.search(r"cam-01\s+\d+\s+applied", paused.stdout), paused.stdout
