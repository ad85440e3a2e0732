"""Running the real agent against the real broker, and listening like a control room."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lfrkit.mqtt import MqttLink, MqttSettings
from protocol.event import MatchEvent, verify_event
from provisioning.registry import Registry

LFR_AGENT = str(Path(sys.executable).parent / "lfr-agent")


def run_agent(
    config: str, *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LFR_AGENT, "-v", "run", "--config", config, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def start_agent(
    config: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LFR_AGENT, "-v", "run", "--config", config, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def start_listener(
    index: dict[str, Any], cert: str | Path, db_url: str, group: str
) -> subprocess.Popen[str]:
    """``lfr-alerts listen`` on the quickstart broker, in shared-subscription group ``group``."""
    broker = f"{index['broker']['host']}:{index['broker']['port']}"
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "lfr-alerts"),
            "listen",
            "--registry",
            index["registry"],
            "--broker",
            broker,
            "--client-cert",
            str(cert),
            "--group",
            group,
            "--db",
            db_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def collect(link: MqttLink, seconds: float, quiet: float = 1.5) -> list[bytes]:
    """Payloads received until ``quiet`` seconds pass without one (or ``seconds`` in all)."""
    got: list[bytes] = []
    deadline = time.monotonic() + seconds
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < quiet:
        message = link.receive(0.2)
        if message is not None:
            got.append(message.payload)
            last = time.monotonic()
    return got


def verified(index: dict[str, Any], tokens: list[bytes]) -> list[MatchEvent]:
    keys = Registry.load(Path(index["registry"])).trusted_signing_keys()
    return [verify_event(token, keys) for token in tokens]


def forget_session(index: dict[str, Any], cert: str | Path) -> None:
    """Connect once with a clean start as ``cert``'s identity (CN = client id): the broker
    drops that identity's stored session and with it a stopped listener's place in the share
    group, which would otherwise keep taking (and queueing) its share of the alerts."""
    cert = Path(cert)
    link = MqttLink(
        MqttSettings(
            index["broker"]["host"],
            index["broker"]["port"],
            Path(index["ca_cert"]),
            cert,
            cert.with_suffix(".key"),
        )
    )
    link.connect()
    link.close()


def wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    """Until ``process`` (a server just started) accepts connections on 127.0.0.1:``port``;
    its output in the failure if it exits first."""
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, process.communicate()[0]
            time.sleep(0.1)
