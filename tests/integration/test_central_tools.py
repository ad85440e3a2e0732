"""Ops push watchlists and commands to live devices; the control room listens and stores."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from central.store import AlertStore
from protocol.encoding import canonical_json
from protocol.entries import dump_entries_file
from protocol.event import sign_event
from protocol.jws import sign_compact
from protocol.keys import load_signing_private
from protocol.status import TYP as STATUS_TYP
from protocol.topics import DEFAULT_SHARE_GROUP
from provisioning.authority import Authority
from provisioning.broker import refresh
from provisioning.broker_admin import sync
from provisioning.fleet import issue_client
from tests.conftest import Fleet
from tests.integration.agent_helpers import forget_session, start_listener
from tests.postgres import postgres_url  # noqa: F401 - fixture
from tests.unit.test_event import make_event
from tests.unit.test_status import AGENT_DOCUMENT
from tools.broker import Broker, client
from tools.synthetic import synthetic_entries

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
    sync(Authority.load(Path(index["authority_dir"])))  # live: the plugin ignores SIGHUP
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
                DEFAULT_SHARE_GROUP,
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


def _hostile_statuses(device: str, key: ed25519.Ed25519PrivateKey) -> list[bytes]:
    """Issue 17 finding 1's reproductions, each signed with the device's own key (what a
    device with a shell can do), and the ones the review sent unsigned."""
    genuine = json.loads(AGENT_DOCUMENT) | {"device_id": device, "site": "demo"}

    def signed(payload: bytes) -> bytes:
        return sign_compact(payload, key, device, STATUS_TYP)

    def altered(**changes: Any) -> bytes:
        return canonical_json(genuine | changes)

    floor = altered(version_floor=1).replace(b'"version_floor":1', b'"version_floor":Infinity')
    return [
        signed(b"[" * 3000 + b"]" * 3000),  # ~6 KB of nesting: RecursionError before
        b"[" * 3000 + b"]" * 3000,
        signed(floor),
        signed(altered(command_counter=2**63 + 5)),  # OverflowError before
        signed(altered(command_counter="not-a-number")),
        signed(altered(device_id="cam-01")),  # stored under cam-01's name before
        altered(),  # a well-formed but unsigned document
    ]


def test_hostile_status_documents_do_not_stop_the_control_room(
    index: dict[str, Any], broker: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    device = index["devices"][1]  # cam-02: not running in this module
    key = load_signing_private(Path(device["state_dir"], "keys", "signing.key").read_bytes())
    status_topic = f"lfr/v1/demo/{device['id']}/status"
    # A listener of its own (a fresh session, no other test's subscriptions in it).
    clients_dir = Path(index["clients"]["alerts"]["cert"]).parent
    issue_client(Path(index["authority_dir"]), "alerts", "alerts-3", clients_dir, datetime.now(UTC))
    assert refresh(Authority.load(Path(index["authority_dir"])), datetime.now(UTC))
    sync(Authority.load(Path(index["authority_dir"])))  # live: the plugin ignores SIGHUP
    cert = clients_dir / "alerts-3.crt"
    db = f"sqlite:///{tmp_path / 'alerts.db'}"
    # The stopped listeners of the other tests keep their place in the one allowed group
    # (persistent sessions) and would each take a share of this test's event.
    for name in ("alerts", "alerts-2"):
        if (clients_dir / f"{name}.crt").exists():
            forget_session(index, clients_dir / f"{name}.crt")
    listener = start_listener(index, cert, db, DEFAULT_SHARE_GROUP)
    link = client(index, device["id"])
    try:
        time.sleep(2)  # subscribed
        for payload in _hostile_statuses(device["id"], key):
            assert link.wait_ack(link.publish(status_topic, payload, retain=True)) in (0, 16)
        event = make_event(fleet, device_id=device["id"], site="demo")
        link.wait_ack(link.publish(f"lfr/v1/demo/{device['id']}/events", sign_event(event, key)))
        time.sleep(2)
        assert listener.poll() is None, "the listener died"
        listener.send_signal(signal.SIGTERM)
        out = listener.communicate(timeout=10)[0]
        store = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")
        assert [a.event_id for a in store.recent(10)] == [event.event_id], out
        refused = {k: v for k, v in store.rejections().items() if k.startswith("status:")}
        assert sum(refused.values()) == 7, (refused, out)
        # Only the live agent's own documents (cam-01's); nothing under cam-02, and not the
        # one that cam-02 signed in cam-01's name (AGENT_DOCUMENT's time).
        rows = store.rows("SELECT device_id, at FROM status_snapshots")
        assert {r[0] for r in rows} <= {"cam-01"}
        assert json.loads(AGENT_DOCUMENT)["at"] not in {r[1] for r in rows}
        store.close()
        # A restart (persistent session, the last hostile status retained) starts cleanly.
        listener = start_listener(index, cert, db, DEFAULT_SHARE_GROUP)
        time.sleep(2)
        assert listener.poll() is None, listener.communicate(timeout=10)[0]
        # Ops see the refusal and exit 1; the retained status is not taken as cam-02's.
        ops = cli(
            "lfr-watchlist",
            "status",
            "--authority",
            index["authority_dir"],
            "--client-cert",
            index["clients"]["ops"]["cert"],
            "--site",
            "demo",
        )
        assert ops.returncode == 1, ops.stdout + ops.stderr
        assert f"status on {status_topic} refused (bad_json)" in ops.stderr
        assert device["id"] not in ops.stdout
    finally:
        listener.send_signal(signal.SIGTERM)
        listener.communicate(timeout=10)
        link.wait_ack(link.publish(status_topic, b"", retain=True))  # clear the retained one
        link.close()


def test_a_wipe_reaches_every_device_when_one_fails(
    index: dict[str, Any], live_agent: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 17 finding 2: counters come from ops' state alone; a device whose status claims a
    huge or bogus floor raises an alarm and cannot stop the fan-out; a device that fails is
    named and the others are wiped (exit 1)."""
    cam_02 = index["devices"][1]
    key = load_signing_private(Path(cam_02["state_dir"], "keys", "signing.key").read_bytes())
    claims = json.loads(AGENT_DOCUMENT) | {
        "device_id": "cam-02",
        "site": "demo",
        "command_counter": 2**53 - 2,
    }
    status_topic = "lfr/v1/demo/cam-02/status"
    link = client(index, "cam-02")
    state = tmp_path / "ops-state.json"
    try:
        signed = sign_compact(canonical_json(claims), key, "cam-02", STATUS_TYP)
        assert link.wait_ack(link.publish(status_topic, signed, retain=True)) in (0, 16)
        status = cli(
            "lfr-watchlist",
            "status",
            "--authority",
            index["authority_dir"],
            "--client-cert",
            index["clients"]["ops"]["cert"],
            "--state",
            str(state),
        )
        assert status.returncode == 1, status.stdout + status.stderr
        assert "cam-02: ALARM command_counter floor 9007199254740990 above the 0" in status.stderr
        # cam-02's own counter in ops' state is exhausted: its command cannot be signed.
        state.write_text('{"devices":{"cam-02":{"command_counter":9007199254740991}}}')
        wipe = cli(
            "lfr-watchlist",
            "wipe",
            "--devices",
            "cam-02,cam-01",
            *ops_args(index),
            "--state",
            str(state),
            "--timeout",
            "15",
        )
        assert wipe.returncode == 1, wipe.stdout + wipe.stderr
        assert re.search(r"cam-02\s+0\s+failed: cam-02: command_counter is exhausted", wipe.stdout)
        assert re.search(r"cam-01\s+1\s+applied", wipe.stdout), wipe.stdout + wipe.stderr
        assert not (Path(live_agent["state_dir"]) / "watchlist.jws").exists()
        assert json.loads(state.read_text())["devices"]["cam-01"] == {"command_counter": 1}
    finally:
        link.wait_ack(link.publish(status_topic, b"", retain=True))
        link.close()
