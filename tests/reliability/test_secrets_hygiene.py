"""Runs last: nothing the reliability suite made processes say — logs, status documents,
refusal messages, broker logs — contains key material, embeddings or subject data.

Keys are every private key file the suite created (all of them, found by content); embeddings
are those of every watchlist the suite sealed; subject references are those of its entries.
Subject references are legitimately printed by the control room's own console (an ALERT line
names the watchlist reference an officer must adjudicate), so they are looked for on the
device side only: agent log records, status documents, refusals, the broker's log.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from agent.synthetic_vision import PALETTE, colour_embedding
from tests.conftest import make_entries
from tests.reliability.secrets_scan import Finding, Secrets, private_key_files, scan

DEVICE_LINE = re.compile(
    rb"^.*\b(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) (?:agent|protocol)\..*$", re.M
)


def collect_secrets(root: Path) -> Secrets:
    secrets = Secrets()
    for path in private_key_files(root):
        secrets.add_private_key_file(path)
    for colour in range(len(PALETTE)):
        secrets.add_embedding(colour_embedding(colour), f"synthetic embedding {colour}")
        secrets.add_word(f"WL-{colour:04d}", "subject reference")
    for entry in make_entries().entries:
        for row in np.asarray(entry.embeddings, np.float32):
            secrets.add_embedding(row, f"test embedding of {entry.subject_ref}")
    return secrets


def test_scanner_finds_planted_leaks(tmp_path: Path) -> None:
    """The scan is not vacuous: each kind of leak, planted, is found."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "k.key").write_bytes(pem)
    secrets = collect_secrets(tmp_path)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    vector = colour_embedding(3)
    leaks = {
        "pem": b"ERROR agent.x: cannot load " + pem.splitlines()[1][5:40] + b" ...",
        "raw": b"WARNING agent.x: key=" + raw.hex().encode(),
        "numpy": b"INFO agent.x: probe " + np.array2string(vector[:6], precision=6).encode(),
        "subject": b"INFO agent.app: matched WL-0003",
    }
    for name, text in leaks.items():
        assert scan(text, name, secrets, words=True), f"planted {name} leak not found"
    assert not scan(b"INFO agent.app: event 1b4e queued", "clean", secrets, words=True)


def test_no_secrets_in_what_the_suite_produced(
    artefacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.getbasetemp()
    texts = [p for p in artefacts.rglob("*") if p.is_file()]
    texts += [p for p in root.rglob("mosquitto.log")]
    produced = sum(p.stat().st_size for p in texts)
    if not any(p.suffix == ".log" and p.parent != artefacts for p in texts):
        pytest.skip(
            "no process logs to scan: run it with the reliability suite "
            "(make test-reliability), it scans what the other tests produced"
        )
    secrets = collect_secrets(root)
    assert secrets.keys > 0, "no private keys found under the suite's temp directory"
    findings: list[Finding] = []
    for path in texts:
        data = path.read_bytes()
        name = str(path.relative_to(root))
        findings += scan(data, name, secrets, words=False)
        device_side = b"\n".join(DEVICE_LINE.findall(data))
        if path.name.startswith("status-documents") or path.name == "mosquitto.log":
            device_side = data
        elif path.suffix == ".txt" and path.name != "figures.txt":
            device_side = data  # refusal messages the tests observed
        findings += scan(device_side, name, secrets, words=True)
    assert not findings, "\n".join(f"{f.file}: {f.what} at {f.excerpt}" for f in findings[:20])
    with open(artefacts / "figures.txt", "a", encoding="utf-8") as figures:
        figures.write(
            f"secrets hygiene: {len(texts)} files, {produced / 1e6:.1f} MB of logs, status "
            f"documents and refusal messages scanned for {secrets.keys} private keys, "
            f"{secrets.embeddings} embeddings and {len(secrets.words)} subject references: "
            "0 findings\n"
        )
