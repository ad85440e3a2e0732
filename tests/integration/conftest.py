from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from provisioning.quickstart import quickstart
from tests.integration.agent_helpers import start_agent
from tools.broker import Broker
from tools.synthetic import Appearance, make_clip, use_synthetic


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    quickstart(root, devices=2, now=datetime.now(UTC))
    return root


@pytest.fixture(scope="module")
def index(fleet_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fleet_dir / "quickstart.json").read_text())
    return data


@pytest.fixture(scope="module")
def broker(index: dict[str, Any]) -> Iterator[Broker]:
    running = Broker(
        Path(index["broker"]["config"]), index["broker"]["host"], index["broker"]["port"]
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def live_agent(
    index: dict[str, Any], broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The first device's agent running (synthetic vision, a looping clip, status every
    second) for the tests of the ops tools that need a real node at the other end."""
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


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, list[tuple[float, str]]]]:
    """A systemd notify socket: (its path for NOTIFY_SOCKET, the datagrams with their time)."""
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(0.2)
    seen: list[tuple[float, str]] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            try:
                seen.append((time.monotonic(), server.recv(4096).decode()))
            except TimeoutError:
                continue

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    yield str(path), seen
    done.set()
    thread.join()
    server.close()
