"""``make demo``: the system end to end on one machine, in a temporary directory.

Today it runs what exists: authority with two-person rule, a node enrolled, a watchlist sealed
by two ops keys and installed on the node (and a forged one refused), a signed match event
verified by the control room and its probe crop opened. The camera loop, the TLS broker and
the alert listener join it as they land (issues 3-7); each step prints what it shows.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from agent.cli import main as agent_main
from central.alerts_cli import main as alerts_main
from central.watchlist_cli import main as watchlist_main
from protocol import hpke
from protocol.encoding import b64url_decode
from protocol.entries import Entries, Entry, dump_entries_file
from protocol.event import MatchEvent, new_event_id, seal_probe, sign_event
from protocol.keys import load_hpke_public, load_signing_private
from provisioning.cli import main as provision_main

# A demo profile id; real ones come from models/MANIFEST.json.
DEMO_EMBEDDER = "0" * 63 + "1"


def _step(title: str, code: int, expect: int = 0) -> None:
    if code != expect:
        raise SystemExit(f"demo: step failed: {title} (exit {code}, expected {expect})")


def _entries(path: Path) -> None:
    rng = np.random.default_rng(2026)
    rows = rng.normal(size=(3, 2, 128)).astype(np.float32)
    entries = Entries(
        DEMO_EMBEDDER,
        128,
        tuple(Entry(f"WL-{i + 1:04d}", "wanted", None, rows[i]) for i in range(3)),
    )
    path.write_bytes(dump_entries_file(entries))


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    with tempfile.TemporaryDirectory(prefix="lfr-demo-") as tmp:
        root = Path(tmp)
        auth, dev, bundle = str(root / "authority"), str(root / "node"), str(root / "bundle")
        print("== 1. ops: authority with 3 ops keys, two-person rule")
        _step(
            "init-authority",
            provision_main(
                ["init-authority", "--out", auth, "--ops-keys", "3", "--threshold", "2"]
            ),
        )
        print("== 2. technician + ops: enrol node cam-01 at kings-cross")
        _step(
            "device-init",
            provision_main(
                ["device-init", "--id", "cam-01", "--site", "kings-cross", "--state", dev]
            ),
        )
        _step(
            "approve",
            provision_main(
                ["approve", f"{dev}/request.json", "--authority", auth, "--out", bundle]
            ),
        )
        _step("device-install", provision_main(["device-install", bundle, "--state", dev]))
        print("== 3. ops: seal a 3-person watchlist to cam-01, signed by ops-1 and ops-2")
        _entries(root / "entries.json")
        seal = [
            "seal",
            str(root / "entries.json"),
            "--device",
            "cam-01",
            "--registry",
            f"{auth}/registry.json",
            "--authority",
            auth,
            "--expires",
            "12h",
            "--deployment",
            "kx-demo",
        ]
        _step(
            "seal",
            watchlist_main(
                [
                    *seal,
                    "--version",
                    "1",
                    "--sign-with",
                    f"{auth}/ops-1.key",
                    "--sign-with",
                    f"{auth}/ops-2.key",
                    "--out",
                    str(root / "wl1.jws"),
                ]
            ),
        )
        print("== 4. node: install it; then a replay of the same bundle is refused")
        install = ["watchlist", "install", "--state", dev, "--embedder", DEMO_EMBEDDER]
        _step("install", agent_main([*install[:2], str(root / "wl1.jws"), *install[2:]]))
        _step("replay", agent_main([*install[:2], str(root / "wl1.jws"), *install[2:]]), 2)
        _step(
            "show", agent_main(["watchlist", "show", "--state", dev, "--embedder", DEMO_EMBEDDER])
        )
        print("== 5. node: a signed match event with the probe sealed to the control room")
        event_id = new_event_id()
        jpeg = b"\xff\xd8 demo face crop \xff\xd9"
        adjudication = load_hpke_public(Path(f"{auth}/adjudication.pub").read_bytes())
        event = MatchEvent(
            event_id=event_id,
            device_id="cam-01",
            site="kings-cross",
            deployment_id="kx-demo",
            watchlist_version=1,
            subject_ref="WL-0002",
            category="wanted",
            score=0.68,
            threshold=0.6,
            margin=0.31,
            observed_at=datetime.now(UTC),
            track_id=1,
            embedder_sha256=DEMO_EMBEDDER,
            probe_suite=hpke.DEFAULT_SUITE,
            probe=seal_probe(jpeg, adjudication, event_id=event_id, device_id="cam-01"),
        )
        token = sign_event(
            event, load_signing_private(Path(f"{dev}/keys/signing.key").read_bytes())
        )
        (root / "event.jws").write_bytes(token)
        claims = json.loads(b64url_decode(token.split(b".")[1], "event payload"))
        print(
            f"   event on the wire: {len(token)} bytes, probe sealed "
            f"({len(claims['probe'])} base64url chars)"
        )
        print("== 6. control room: verify the event against the registry, open the probe")
        _step(
            "verify",
            alerts_main(
                [
                    "verify",
                    str(root / "event.jws"),
                    "--registry",
                    f"{auth}/registry.json",
                    "--adjudication-key",
                    f"{auth}/adjudication.key",
                    "--probe-out",
                    str(root / "probe.jpg"),
                ]
            ),
        )
        print("demo finished: nothing left running; temporary files removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
