"""Cameras as a technician meets them (issue 18 §4): ``lfr-agent check`` opens the camera and
reads a frame, names an absent, busy or uninstalled picamera2; the daemon with no camera
backs off, reports it down, keeps the watchdog fed, and does not flood the log."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import fake_env
from tests.integration.agent_helpers import start_agent
from tools.broker import Broker, client, status_json
from tools.synthetic import use_synthetic

pytestmark = pytest.mark.integration
LFR_AGENT = str(Path(sys.executable).parent / "lfr-agent")


def check(config: str, *args: str, env: dict[str, str]) -> tuple[int, dict[str, str]]:
    done = subprocess.run(
        [LFR_AGENT, "check", "--offline", "--config", config, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    return done.returncode, rows


@pytest.fixture(scope="module")
def config(index: dict[str, Any]) -> str:
    path: str = index["devices"][0]["config"]  # camera.source is the default, picamera2:0
    return path


def test_check_reads_one_frame_from_the_camera(config: str) -> None:
    code, rows = check(config, env=fake_env())
    assert code == 0, rows
    assert "ok" in rows["camera"] and "picamera2:0: read one 1280x720 frame" in rows["camera"]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"cameras": "0"}, "picamera2 camera 0 is absent: libcamera sees no camera"),
        ({"busy": "1"}, "is busy: another process holds it"),
        ({"fail_after": "0"}, "Camera frontend has timed out"),
    ],
)
def test_check_names_a_camera_that_cannot_deliver(
    config: str, settings: dict[str, str], expected: str
) -> None:
    code, rows = check(config, env=fake_env(**settings))
    assert code == 1 and "FAIL" in rows["camera"] and expected in rows["camera"], rows
    assert "camera" in rows["check"]  # "check FAILED: camera"


def test_no_camera_leaves_a_busy_camera_alone_but_checks_picamera2_is_installed(
    config: str,
) -> None:
    code, rows = check(config, "--no-camera", env=fake_env(busy="1"))
    assert code == 0, rows
    assert "not opened (--no-camera); picamera2 importable" in rows["camera"]


@pytest.mark.parametrize("args", [(), ("--no-camera",)])
def test_check_says_what_to_install_when_picamera2_is_missing(
    config: str, args: tuple[str, ...]
) -> None:
    env = {k: v for k, v in fake_env().items() if k != "PYTHONPATH"}
    code, rows = check(config, *args, env=env)
    assert code == 1
    line = rows["camera"]
    assert "FAIL" in line and "sudo apt install python3-picamera2" in line
    assert "--system-site-packages" in line
    if "include-system-site-packages = false" in (Path(sys.prefix) / "pyvenv.cfg").read_text():
        assert f"this venv ({sys.prefix}) was made without --system-site-packages" in line


def test_an_absent_camera_is_retried_reported_and_keeps_the_watchdog_fed(
    index: dict[str, Any],
    broker: Broker,
    tmp_path: Path,
    notify_socket: tuple[str, list[tuple[float, str]]],
) -> None:
    address, seen = notify_socket
    device = index["devices"][1]
    node = tmp_path / "agent.toml"
    node.write_text(Path(device["config"]).read_text() + "\n[status]\ninterval_seconds = 1\n")
    use_synthetic(node, stall_seconds=1.0)
    ops = client(index, "ops")
    ops.subscribe([(f"lfr/v1/demo/{device['id']}/status", 1)])
    started = time.monotonic()
    agent = start_agent(
        str(node),
        "--source",
        "picamera2:0",
        env={**fake_env(cameras="0"), "NOTIFY_SOCKET": address},
    )
    down: dict[str, Any] = {}
    deadline = started + 20
    while time.monotonic() < deadline and time.monotonic() - started < 9:
        message = ops.receive(0.2)
        if message is not None:
            doc = status_json(message.payload)
            if any(a.startswith("camera down for") for a in doc.get("alarms", [])):
                down = doc
    ops.close()
    agent.send_signal(signal.SIGTERM)
    out, _ = agent.communicate(timeout=10)
    assert agent.returncode == 0, out
    assert down, "no status with the camera-down alarm"
    alarm = next(a for a in down["alarms"] if a.startswith("camera down for"))
    assert "picamera2 camera 0 is absent" in alarm and "next attempt in" in alarm
    # Fed all along (WatchdogSec=30 would otherwise restart it), well past stall_seconds = 1.
    watchdogs = [t - started for t, m in seen if m == "WATCHDOG=1"]
    assert watchdogs and max(watchdogs) > 7, watchdogs
    # 1, 2, 4 s back-off in ~9 s: a handful of attempts, one warning, no flood.
    assert 2 <= down["camera_errors"] <= 5, down
    camera_lines = [line for line in out.splitlines() if "camera" in line.lower()]
    assert sum("camera down" in line for line in camera_lines) == 1, out
    assert len(camera_lines) <= 3, out


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="needs gstreamer1.0-tools")
def test_the_daemon_runs_on_a_gst_pipeline_and_kill_9_takes_the_pipeline_along(
    index: dict[str, Any], broker: Broker, tmp_path: Path
) -> None:
    device = index["devices"][1]
    node = tmp_path / "agent.toml"
    node.write_text(Path(device["config"]).read_text() + "\n[status]\ninterval_seconds = 1\n")
    use_synthetic(node, width=320, height=240)
    ops = client(index, "ops")
    ops.subscribe([(f"lfr/v1/demo/{device['id']}/status", 1)])
    pipeline = "gst:videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=10/1"
    agent = start_agent(str(node), "--source", pipeline)
    frames, deadline = 0, time.monotonic() + 30
    while frames < 20 and time.monotonic() < deadline:
        message = ops.receive(0.2)
        if message is not None:
            frames = status_json(message.payload).get("frames", 0)
    ops.close()
    children = _children(agent.pid)
    commands = [Path(f"/proc/{c}/cmdline").read_text() for c in children]
    agent.kill()  # SIGKILL: no shutdown code runs
    out, _ = agent.communicate(timeout=10)
    assert frames >= 20, out
    assert len(children) == 1, children  # the pipeline (setpriv exec'd gst-launch-1.0)
    assert "gst-launch-1.0" in commands[0]
    deadline = time.monotonic() + 5
    while _running(children[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(children[0])
