"""The daemon under real conditions: systemd notify, broker outage, kill -9, commands,
expiry, and what stays behind after a clip full of strangers."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.config import MatchingSection
from agent.core.template import Template
from agent.io.identity import load_identity
from agent.io.watchlist_store import WatchlistStore
from agent.synthetic_vision import PALETTE, PROFILE_ID, colour_embedding
from protocol.command import Action, Command, sign_command
from protocol.topics import DEFAULT_SHARE_GROUP, shared
from provisioning.authority import load_ops_signer
from tests.integration.agent_helpers import collect, run_agent, start_agent, verified
from tools.broker import Broker, client, status_json
from tools.synthetic import Appearance, make_clip, seal_for, use_synthetic

pytestmark = pytest.mark.integration
QUEUED = re.compile(r"event ([0-9a-f-]{36}) queued")


@pytest.fixture(scope="module")
def node(index: dict[str, Any]) -> dict[str, Any]:
    dev: dict[str, Any] = index["devices"][1]
    config = Path(dev["config"])
    use_synthetic(config, stall_seconds=1.0, loop=True)
    config.write_text(
        config.read_text() + "\n[matching]\ncooldown_seconds = 0\n[status]\ninterval_seconds = 1\n"
    )
    return dev


def install(
    index: dict[str, Any],
    node: dict[str, Any],
    version: int,
    lifetime: timedelta = timedelta(hours=1),
) -> None:
    store = WatchlistStore(load_identity(Path(node["state_dir"])), PROFILE_ID)
    store.install(seal_for(index, node["id"], [0], version, lifetime), datetime.now(UTC))


def clip(tmp_path: Path, people: list[Appearance], frames: int = 100) -> str:
    return str(make_clip(tmp_path / "clip.gif", frames, people))


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, as systemd sends it: the agent must be gone within 5 s."""
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    assert time.monotonic() - sent < 5.0
    return process.returncode, out


def test_systemd_ready_then_watchdog_only_while_frames_flow(
    index: dict[str, Any],
    broker: Broker,
    node: dict[str, Any],
    tmp_path: Path,
    notify_socket: tuple[str, list[tuple[float, str]]],
) -> None:
    address, seen = notify_socket
    source = clip(tmp_path, [Appearance(1, 0, 40)], frames=60)  # 2.4 s of video
    started = time.monotonic()
    # Played live and not looped: frames flow for 2.4 s, then the "camera" stalls.
    once = tmp_path / "agent.toml"
    once.write_text(Path(node["config"]).read_text().replace("loop = true", "loop = false"))
    process = start_agent(str(once), "--source", source, env={"NOTIFY_SOCKET": address})
    time.sleep(7)
    code, output = stop(process)
    stopped = time.monotonic()
    assert code == 0, output
    messages = [m for _, m in seen]
    assert "READY=1" in messages[0].splitlines()
    watchdogs = [t - started for t, m in seen if m == "WATCHDOG=1"]
    assert len(watchdogs) >= 2
    # The clip ends at ~2.4 s (+ start-up); stall_seconds is 1: no WATCHDOG after ~6 s.
    assert max(watchdogs) < 6.0, watchdogs
    assert any(m.startswith("STATUS=") for m in messages)
    assert "STOPPING=1" in messages[-1]
    assert stopped - started < 7 + 5


def test_broker_outage_loses_nothing(
    index: dict[str, Any], broker: Broker, node: dict[str, Any], tmp_path: Path
) -> None:
    install(index, node, 1)
    source = clip(tmp_path, [Appearance(0, 0, 15), Appearance(0, 45, 60), Appearance(0, 85, 99)])
    broker.stop()
    process = start_agent(node["config"], "--source", source, "--until-end")
    time.sleep(30)  # the broker is down for 30 s while the agent works
    assert process.poll() is None  # still waiting to deliver its events
    broker.start()
    alerts = client(index, "alerts")
    alerts.subscribe([(shared(DEFAULT_SHARE_GROUP, "lfr/v1/+/+/events"), 1)])
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    produced = set(QUEUED.findall(out))
    events = verified(index, collect(alerts, 20))
    alerts.close()
    assert len(produced) == 3
    assert {e.event_id for e in events} == produced  # all of them; duplicates are harmless


def test_kill_9_with_events_in_the_outbox(
    index: dict[str, Any], broker: Broker, node: dict[str, Any], tmp_path: Path
) -> None:
    install(index, node, 2)
    outbox = Path(node["state_dir"]) / "outbox.sqlite"
    broker.stop()
    process = start_agent(
        node["config"], "--source", clip(tmp_path, [Appearance(0, 0, 12)], frames=40)
    )
    queued: list[str] = []
    deadline = time.monotonic() + 60
    while len(queued) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True) as db:
            queued = [r[0] for r in db.execute("SELECT event_id FROM outbox")]
    process.kill()  # SIGKILL: no shutdown code runs
    process.communicate(timeout=10)
    assert len(queued) >= 2
    with sqlite3.connect(outbox) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    broker.start()
    alerts = client(index, "alerts")
    alerts.subscribe([(shared(DEFAULT_SHARE_GROUP, "lfr/v1/+/+/events"), 1)])
    empty = str(make_clip(tmp_path / "empty.gif", 5, []))
    result = run_agent(node["config"], "--source", empty, "--until-end")
    assert result.returncode == 0, result.stdout + result.stderr
    delivered = {e.event_id for e in verified(index, collect(alerts, 10))}
    alerts.close()
    assert set(queued) <= delivered


def _status_watch(index: dict[str, Any], node: dict[str, Any]) -> Any:
    ops = client(index, "ops")
    ops.subscribe([(f"lfr/v1/demo/{node['id']}/status", 1)])
    return ops


def _latest(link: Any, predicate: Any, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = link.receive(0.2)
        if message is not None:
            doc: dict[str, Any] = status_json(message.payload)
            if predicate(doc):
                return doc
    raise AssertionError("no status matched in time")


def _command(
    index: dict[str, Any], node: dict[str, Any], action: Action, counter: int, keys: int = 2
) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    signers = [load_ops_signer(Path(k)) for k in index["ops_keys"][:keys]]
    return sign_command(
        Command(node["id"], "demo", action, counter, now, now + timedelta(minutes=5)), signers
    )


def test_commands_pause_resume_wipe_and_refusals(
    index: dict[str, Any], broker: Broker, node: dict[str, Any], tmp_path: Path
) -> None:
    install(index, node, 3)
    status = _status_watch(index, node)
    ops = client(index, "ops")
    topic = f"lfr/v1/demo/{node['id']}/command"
    process = start_agent(
        node["config"], "--source", clip(tmp_path, [Appearance(0, 0, 10)], frames=30)
    )
    try:
        _latest(status, lambda d: d["state"] == "online" and d["watchlist_version"] == 3)
        pause = _command(index, node, Action.PAUSE, 100)
        ops.wait_ack(ops.publish(topic, pause))
        paused = _latest(status, lambda d: d["state"] == "paused")
        matches = paused["matches"]
        time.sleep(2.5)  # the looping clip shows the watchlisted person again
        still = _latest(status, lambda d: d["state"] == "paused")
        assert still["matches"] == matches and still["frames"] > paused["frames"]
        ops.wait_ack(ops.publish(topic, pause))  # the same command again: already done
        forged = _command(index, node, Action.RESUME, 101, keys=1)
        ops.wait_ack(ops.publish(topic, forged))
        refused = _latest(
            status, lambda d: (d["last_rejection"] or {}).get("reason") == "too_few_signatures"
        )
        assert refused["state"] == "paused"
        ops.wait_ack(ops.publish(topic, _command(index, node, Action.RESUME, 102)))
        # Matching resumes. Compared with the count at the pause, not with the first online
        # status: the person's new track is embedded at once and then, once alerted, costs
        # detection only (the clip loops faster than a track ends), so that status may
        # already hold the only new match.
        _latest(status, lambda d: d["state"] == "online" and d["matches"] > matches, timeout=15)
        ops.wait_ack(ops.publish(topic, pause))  # an older command replayed: refused
        replay = _latest(status, lambda d: (d["last_rejection"] or {}).get("reason") == "rollback")
        assert replay["state"] == "online"
        ops.wait_ack(ops.publish(topic, _command(index, node, Action.WIPE, 103)))
        wiped = _latest(status, lambda d: d["watchlist"] == "wiped by command")
        assert wiped["watchlist_version"] is None
        assert not (Path(node["state_dir"]) / "watchlist.jws").exists()
    finally:
        code, out = stop(process)
        status.close()
        ops.close()
    assert code == 0, out


def test_expiry_wipes_within_a_second(
    index: dict[str, Any], broker: Broker, node: dict[str, Any], tmp_path: Path
) -> None:
    # Long enough that the agent is in its frame loop at expiry: what is measured is the
    # wipe, not model loading and the TLS connect at start (1.04 s once under load at 6 s).
    install(index, node, 4, lifetime=timedelta(seconds=10))
    bundle = Path(node["state_dir"]) / "watchlist.jws"
    store = WatchlistStore(load_identity(Path(node["state_dir"])), PROFILE_ID)
    header = store.load(datetime.now(UTC))
    assert header is not None
    expires = header.header.expires_at
    status = _status_watch(index, node)
    process = start_agent(
        node["config"], "--source", clip(tmp_path, [Appearance(1, 0, 10)], frames=30)
    )
    try:
        while bundle.exists() and datetime.now(UTC) < expires + timedelta(seconds=5):
            time.sleep(0.05)
        gone = datetime.now(UTC)
        assert not bundle.exists()
        assert gone - expires < timedelta(seconds=1), gone - expires
        doc = _latest(status, lambda d: d["watchlist"] == "expired and wiped")
        assert doc["watchlist_version"] is None
    finally:
        code, out = stop(process)
        status.close()
    assert code == 0, out


def test_strangers_leave_no_trace(
    index: dict[str, Any], broker: Broker, node: dict[str, Any], tmp_path: Path
) -> None:
    install(index, node, 5)
    strangers = [Appearance(c, 5 * c, 60 + 5 * c, row=c % 3) for c in (1, 2, 3)]
    # A control room is listening (events earlier tests left queued on this node go to it).
    alerts = client(index, "alerts")
    alerts.subscribe([(shared(DEFAULT_SHARE_GROUP, "lfr/v1/+/+/events"), 1)])
    try:
        result = run_agent(node["config"], "--source", clip(tmp_path, strangers), "--until-end")
    finally:
        alerts.close()
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stdout + result.stderr
    assert not QUEUED.findall(log)
    counts = dict(re.findall(r"(\w+)=(\d+)", log.split("stopped: ")[-1]))
    assert int(counts["faces_detected"]) > 100  # three strangers in ~60 frames each
    assert counts["faces_discarded"] == counts["faces_detected"]
    assert counts["matches"] == "0"
    # Each stranger's track filled its template (K faces) before it ended: the track decision
    # held their embeddings and best crop in memory, which must not reach disk, log or broker.
    faces = MatchingSection().template_faces
    assert int(counts["faces_embedded"]) >= 3 * faces
    needles = []
    for colour in (1, 2, 3):
        vector = colour_embedding(colour)
        template: Template[None] = Template(faces)
        for _ in range(faces):
            template.add(vector, 0.5)
        for held in (vector, template.vector()):  # a face's embedding, the track's template
            needles += [
                held.tobytes(),
                held.astype(np.float16).tobytes(),
                held.astype(">f4").tobytes(),
            ]
        r, g, b = PALETTE[colour]
        needles.append(bytes([r, g, b] * 4))  # four pixels of the face texture
    haystacks = {str(p): p.read_bytes() for p in Path(node["state_dir"]).rglob("*") if p.is_file()}
    haystacks["agent output"] = (result.stdout + result.stderr).encode()
    haystacks["broker log"] = broker.log.read_bytes()
    for name, data in haystacks.items():
        for needle in needles:
            assert needle not in data, f"face data found in {name}"
        assert b"\xff\xd8\xff" not in data, f"a JPEG in {name}"
    with sqlite3.connect(Path(node["state_dir"]) / "outbox.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)


def test_a_pause_survives_kill_9(
    index: dict[str, Any], broker: Broker, node: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 17 finding 3: pause, kill -9 the agent, restart: still paused, no matches (the
    retained pause comes back with the saved counter and is already applied)."""
    install(index, node, 6)
    status = _status_watch(index, node)
    ops = client(index, "ops")
    topic = f"lfr/v1/demo/{node['id']}/command"
    source = clip(tmp_path, [Appearance(0, 0, 10)], frames=30)  # looped: a match each pass
    process = start_agent(node["config"], "--source", source)
    try:
        _latest(status, lambda d: d["state"] == "online" and d["watchlist_version"] == 6, 30)
        counter = WatchlistStore(load_identity(Path(node["state_dir"])), PROFILE_ID)
        pause = _command(index, node, Action.PAUSE, counter.floors().command_counter + 1)
        ops.wait_ack(ops.publish(topic, pause, retain=True))
        _latest(status, lambda d: d["state"] == "paused")
    finally:
        process.kill()  # SIGKILL: no shutdown code runs
        process.communicate(timeout=10)
    _latest(status, lambda d: d["state"] == "offline")  # the last will: the old run is over
    process = start_agent(node["config"], "--source", source)
    try:
        # Every status of the new run, from the first one: paused, and no match although the
        # looping clip shows the watchlisted person again and again.
        seen = [_latest(status, lambda d: d["state"] != "offline", timeout=20)]
        while seen[-1]["frames"] < 60:
            seen.append(_latest(status, lambda d: True))
        assert {(d["state"], d["matches"]) for d in seen} == {("paused", 0)}
    finally:
        code, out = stop(process)
        ops.wait_ack(ops.publish(topic, b"", retain=True))  # clear the retained pause
        status.close()
        ops.close()
    assert code == 0, out
