"""Ops push watchlists and commands to live devices; the control room listens and stores."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from central.store import AlertStore
from protocol.entries import dump_entries_file
from protocol.event import sign_event
from protocol.keys import load_signing_private
from provisioning.authority import Authority
from provisioning.broker import refresh
from provisioning.fleet import issue_client
from tests.conftest import Fleet
from tests.integration.agent_helpers import start_agent
from tests.postgres import postgres_url  # noqa: F401 - fixture
from tests.unit.test_event import make_event
from tools.broker import Broker, client
from tools.synthetic import Appearance, make_clip, synthetic_entries, use_synthetic

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def cli(tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / tool), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def ops_args(index: dict[str, Any]) -> list[str]:
    args = ["--authority", index["authority_dir"], "--client-cert", index["clients"]["ops"]["cert"]]
    for key in index["ops_keys"]:
        args += ["--sign-with", key]
    return args


@pytest.fixture(scope="module")
def live_agent(
    index: dict[str, Any], broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    device: dict[str, Any] = index["devices"][0]
    use_synthetic(Path(device["config"]), loop=True)
    Path(device["config"]).write_text(
        Path(device["config"]).read_text() + "\n[status]\ninterval_seconds = 1\n"
    )
    clip = make_clip(tmp_path_factory.mktemp("clip") / "c.gif", 30, [Appearance(1, 0, 10)])
    process = start_agent(device["config"], "--source", str(clip))
    time.sleep(2)
    yield device
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=10)


def test_publish_status_and_wipe(
    index: dict[str, Any], live_agent: dict[str, Any], tmp_path: Path
) -> None:
    entries = tmp_path / "entries.json"
    entries.write_bytes(dump_entries_file(synthetic_entries([0, 2])))
    result = cli(
        "lfr-watchlist",
        "publish",
        str(entries),
        "--devices",
        "cam-01,cam-02",
        *ops_args(index),
        "--expires",
        "2h",
        "--deployment",
        "kx-test",
        "--threshold",
        "0.9",
        "--timeout",
        "15",
    )
    assert result.returncode == 1, result.stdout + result.stderr  # cam-02 is not running
    assert re.search(r"cam-01\s+1\s+applied", result.stdout), result.stdout
    assert re.search(r"cam-02\s+1\s+offline", result.stdout), result.stdout
    again = cli(
        "lfr-watchlist",
        "publish",
        str(entries),
        "--devices",
        "cam-01",
        *ops_args(index),
        "--expires",
        "2h",
        "--deployment",
        "kx-test",
        "--threshold",
        "0.9",
    )
    assert again.returncode == 0 and re.search(r"cam-01\s+2\s+applied", again.stdout)
    wrong = replace(synthetic_entries([0]), embedder_sha256="f" * 64)
    entries.write_bytes(dump_entries_file(wrong))
    refused = cli(
        "lfr-watchlist",
        "publish",
        str(entries),
        "--devices",
        "cam-01",
        *ops_args(index),
        "--expires",
        "2h",
        "--deployment",
        "kx-test",
        "--threshold",
        "0.9",
    )
    assert refused.returncode == 1
    assert re.search(r"cam-01\s+3\s+rejected \(embedder_mismatch\)", refused.stdout)
    status = cli(
        "lfr-watchlist",
        "status",
        "--authority",
        index["authority_dir"],
        "--client-cert",
        index["clients"]["ops"]["cert"],
    )
    assert status.returncode == 0
    assert re.search(r"cam-01\s+demo\s+online\s+v2", status.stdout), status.stdout
    wipe = cli("lfr-watchlist", "wipe", "--devices", "cam-01", *ops_args(index))
    assert wipe.returncode == 0 and re.search(r"cam-01\s+\d+\s+applied", wipe.stdout)
    assert not (Path(live_agent["state_dir"]) / "watchlist.jws").exists()
    after = cli(
        "lfr-watchlist",
        "status",
        "--authority",
        index["authority_dir"],
        "--client-cert",
        index["clients"]["ops"]["cert"],
        "--json",
    )
    assert '"watchlist": "wiped by command"' in after.stdout


def test_two_listeners_store_every_alert_once(
    index: dict[str, Any],
    broker: Broker,
    postgres_url: str,  # noqa: F811 - the fixture imported above
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    clients_dir = Path(index["clients"]["alerts"]["cert"]).parent
    from datetime import UTC, datetime

    issue_client(Path(index["authority_dir"]), "alerts", "alerts-2", clients_dir, datetime.now(UTC))
    # A new client needs its ACL lines: regenerate them and have the broker reload the ACL.
    assert refresh(Authority.load(Path(index["authority_dir"])), datetime.now(UTC))
    broker.reload()
    listeners = [
        subprocess.Popen(
            [
                str(BIN / "lfr-alerts"),
                "-v",
                "listen",
                "--registry",
                index["registry"],
                "--broker",
                f"{index['broker']['host']}:{index['broker']['port']}",
                "--client-cert",
                str(clients_dir / f"{name}.crt"),
                "--group",
                "cr",
                "--db",
                postgres_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("alerts", "alerts-2")
    ]
    time.sleep(3)  # both subscribed
    # cam-02 publishes 30 genuine events (each twice), and 3 it should not be able to pass off.
    device = index["devices"][1]
    key = load_signing_private(Path(device["state_dir"], "keys", "signing.key").read_bytes())
    link = client(index, device["id"])
    topic = f"lfr/v1/demo/{device['id']}/events"
    genuine = [make_event(fleet, device_id=device["id"], site="demo") for _ in range(30)]
    tokens = [sign_event(event, key) for event in genuine]
    # All 30, then all 30 again: the broker hands a shared group's messages out in turn, so
    # sending each event twice in a row would give every first copy to the same listener.
    for token in tokens + tokens:
        assert link.wait_ack(link.publish(topic, token)) in (0, 16)
    impostor = ed25519.Ed25519PrivateKey.generate()
    forged = [
        sign_event(make_event(fleet, device_id=device["id"], site="demo"), impostor),
        sign_event(make_event(fleet, device_id="cam-99", site="demo"), impostor),
        sign_event(make_event(fleet, device_id="cam-01", site="demo"), impostor),
    ]
    for token in forged:
        link.wait_ack(link.publish(topic, token))
    link.close()
    time.sleep(3)
    outputs = []
    for process in listeners:
        process.send_signal(signal.SIGTERM)
        outputs.append(process.communicate(timeout=10)[0])
    store = AlertStore(postgres_url)
    assert store.count() == 30, outputs
    assert {a.event_id for a in store.recent(100)} == {e.event_id for e in genuine}
    assert sum(store.rejections().values()) == 3, (store.rejections(), outputs)
    assert set(store.rejections()) <= {"bad_signature", "unknown_signer"}
    stored = [
        int(re.search(r"stopped: (\d+) alerts stored", o).group(1))  # type: ignore[union-attr]
        for o in outputs
    ]
    assert sum(stored) == 30 and min(stored) > 0, outputs  # the group shared the work
    store.close()
