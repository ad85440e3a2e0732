"""A real Mosquitto on a free port with the config lfr-provision made, and clients of it.

The integration tests, the bench and the demo start their broker this way; nothing here
imports the tests.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lfrkit.mqtt import MqttLink, MqttSettings
from protocol.jws import parse_compact
from protocol.limits import DEFAULT_LIMITS
from protocol.status import TYP as STATUS_TYP
from provisioning.quickstart import quickstart

NOT_INSTALLED = "mosquitto is not installed: run `make install-system` (apt-get install mosquitto)"


def mosquitto_binary() -> str | None:
    """Mosquitto on PATH, else /usr/sbin/mosquitto (Debian puts it there); None if absent."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


class Broker:
    def __init__(self, config: Path, host: str, port: int) -> None:
        self.config, self.host, self.port = config, host, port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.config.parent / "mosquitto.log"

    def start(self, timeout: float = 10.0) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError(NOT_INSTALLED)
        self.process = subprocess.Popen(  # noqa: S603 - the broker binary, our own config
            [binary, "-c", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(
                    f"mosquitto exited with {self.process.returncode}: {output}\n{self.log_text()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def client(index: dict[str, Any], who: str, client_id: str = "") -> MqttLink:
    """A connected link with quickstart's client certificate ``who`` (``ops``, ``alerts``) or a
    device's own; ``client_id`` empty lets the link choose one."""
    files = index["clients"].get(who) or next(d for d in index["devices"] if d["id"] == who)
    link = MqttLink(
        MqttSettings(
            index["broker"]["host"],
            index["broker"]["port"],
            Path(index["ca_cert"]),
            Path(files["cert"]),
            Path(files["key"]),
            client_id=client_id,
        )
    )
    link.connect()
    return link


def status_json(payload: bytes) -> dict[str, Any]:
    """The document inside a device's signed status, NOT verified: for the tests' and the
    bench's own devices only. Anything received in production goes through
    ``protocol.status.verify_status``."""
    jws = parse_compact(payload, STATUS_TYP, "status", DEFAULT_LIMITS.status_bytes)
    doc: dict[str, Any] = json.loads(jws.payload)
    return doc


def publish_retained(index: dict[str, Any], topic: str, payload: bytes) -> None:
    """Publish ``payload`` retained on ``topic`` as ops (a watchlist, a command)."""
    ops = client(index, "ops")
    try:
        assert ops.wait_ack(ops.publish(topic, payload, retain=True)) in (0, 16)
    finally:
        ops.close()


@contextmanager
def tls_fleet(prefix: str = "lfr-bench-") -> Iterator[tuple[dict[str, Any], Broker]]:
    """An authority, one device and the alerts client (quickstart), and Mosquitto with TLS and
    client certificates on a free port, stopped on exit. Yields quickstart's index and the
    running broker."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        index = quickstart(Path(tmp) / "fleet", 1, datetime.now(UTC))
        broker = Broker(
            Path(index["broker"]["config"]), index["broker"]["host"], index["broker"]["port"]
        )
        broker.start()
        try:
            yield index, broker
        finally:
            broker.stop()
