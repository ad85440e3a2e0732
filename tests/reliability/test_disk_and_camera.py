"""Disk full under the outbox, and a network camera that stalls and goes away: the agent
keeps running, its status says what is wrong, and no event is silently dropped."""

from __future__ import annotations

import contextlib
import errno
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.reliability.camera_server import CameraServer
from tests.reliability.conftest import Recorder, sized
from tests.reliability.procs import crowd_clip, set_section, stored_ids
from tests.reliability.status_watch import StatusWatch, alarm
from tools.processes import Rig, wait_until
from tools.synthetic import make_clip

DROPPED = re.compile(r"event ([0-9a-f-]{36}) dropped")


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a ballast file until the file system says ENOSPC."""
    ballast = disk / "ballast"
    with open(ballast, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return ballast


@pytest.fixture
def rig(tmp_path: Path, artefacts: Path) -> Iterator[Rig]:
    rig = Rig.create(tmp_path / "fleet", devices=1, logs=artefacts / "disk-and-camera")
    yield rig
    rig.close()


def test_disk_full_under_the_outbox(rig: Rig, tmp_path: Path, record: Recorder) -> None:
    device = rig.device_ids[0]
    config = Path(rig.device(device)["config"])
    held_max = 8
    with small_disk(tmp_path / "disk", "4m") as disk:
        # The device's whole state (keys, watchlist, outbox) on a small disk we can fill.
        old_state = Path(rig.device(device)["state_dir"])
        shutil.copytree(old_state, disk / "state")
        config.write_text(config.read_text().replace(str(old_state), str(disk / "state")))
        set_section(config, "matching", window_seconds=0.2, cooldown_seconds=0.1)
        set_section(config, "events", held_max=held_max)
        set_section(config, "status", interval_seconds=1.0)
        rig.push_watchlist(device, list(range(6)), 1, timedelta(hours=2))
        db = tmp_path / "alerts.db"
        listener = rig.listener(
            "disk-listener", rig.index["clients"]["alerts"]["cert"], f"sqlite:///{db}"
        ).start()
        status = StatusWatch(rig.client("ops"), rig.topic(device, "status"), record)
        crowd = crowd_clip(tmp_path / "crowd.gif", people=6)
        agent = rig.agent(device, "--source", str(crowd), name="disk-agent").start()
        wait_until(lambda: len(stored_ids(db)) >= 3, 60, "the first alerts")

        ballast = fill(disk)
        doc = status.wait(device, lambda d: alarm(d, "outbox not writable"), 30, "the disk alarm")
        # A new watchlist arriving now cannot be written: the old one stays in force.
        rig.push_watchlist(device, list(range(3)), 2, timedelta(hours=2))
        doc = status.wait(
            device,
            lambda d: alarm(d, "state not writable") and alarm(d, "events dropped (disk full)"),
            60,
            "the watchlist-write alarm and drops beyond the memory bound",
        )
        assert doc["watchlist_version"] == 1 and agent.alive
        time.sleep(sized(3, 20))
        held_during = status.wait(
            device, lambda d: d["events_held"] == held_max, 30, "a full bound"
        )
        ballast.unlink()
        doc = status.wait(
            device,
            lambda d: (
                not alarm(d, "not writable")
                and d["events_held"] == 0
                and d["watchlist_version"] == 2
            ),
            60,
            "recovery: held events written, the pending watchlist installed",
        )
        assert agent.terminate() == 0
        # The agent drains what is still queued on its next start, as after any restart.
        blank = make_clip(tmp_path / "blank.gif", 5, [])
        drain = rig.agent(device, "--source", str(blank), "--until-end", name="disk-drain")
        assert drain.start().wait(120) == 0, drain.text()[-2000:]
        produced = set(agent.queued_ids())
        dropped = set(DROPPED.findall(agent.text()))
        wait_until(lambda: produced <= set(stored_ids(db)), 60, "every queued event stored")
        listener.terminate()
        status.close()
    stored = set(stored_ids(db))
    assert stored == produced, f"lost {len(produced - stored)}"
    assert dropped and not dropped & stored
    assert doc["events_dropped"] == len(dropped), "every drop is counted in the status"
    record(
        "figures",
        f"disk full (4 MB tmpfs, memory bound {held_max}): agent kept running; alarms "
        f"'outbox not writable', 'state not writable', 'events dropped (disk full)'; watchlist "
        f"v1 stayed in force and v2 was installed after space returned; {len(produced)} events "
        f"stored = produced, {len(dropped)} dropped beyond the bound, each counted and logged "
        f"(status at the bound: {held_during['events_held']} held)",
    )


def test_camera_stalls_and_goes_away(rig: Rig, tmp_path: Path, record: Recorder) -> None:
    device = rig.device_ids[0]
    config = Path(rig.device(device)["config"])
    set_section(config, "camera", stall_seconds=3.0)
    set_section(config, "matching", window_seconds=0.2, cooldown_seconds=0.1)
    set_section(config, "status", interval_seconds=1.0)
    rig.push_watchlist(device, [0, 1, 2], 1, timedelta(hours=2))
    status = StatusWatch(rig.client("ops"), rig.topic(device, "status"), record)
    with CameraServer(crowd_clip(tmp_path / "crowd.gif", people=3)) as camera:
        agent = rig.agent(device, "--source", camera.url, name="camera-agent").start()
        try:
            doc = status.wait(device, lambda d: d.get("frames", 0) > 20, 60, "frames flowing")
            camera.mode = "stall"  # connection open, no bytes: a hung camera
            doc = status.wait(device, lambda d: alarm(d, "camera stalled"), 30, "the stall alarm")
            doc = status.wait(device, lambda d: d["camera_errors"] >= 1, 30, "the read timeout")
            camera.mode = "down"  # refuses connections: a camera rebooting
            doc = status.wait(device, lambda d: d["camera_errors"] >= 2, 60, "reconnect attempts")
            assert agent.alive
            frames_before = doc["frames"]
            camera.mode = "play"
            doc = status.wait(
                device,
                lambda d: d["frames"] > frames_before + 20 and not alarm(d, "camera stalled"),
                90,
                "frames flowing again after the camera came back",
            )
            assert agent.alive and doc["camera_restarts"] >= 1
        finally:
            code = agent.terminate()
            status.close()
    assert code == 0
    assert "camera error" in agent.text()
    record(
        "figures",
        f"camera stall + outage: stall alarm raised, {doc['camera_errors']} camera errors and "
        f"{doc['camera_restarts']} restarts with back-off, frames resumed, agent never exited",
    )
