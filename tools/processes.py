"""Real processes (``lfr-agent``, ``lfr-alerts``, ...) and a real fleet: a quickstart fleet on
the synthetic vision backend with its Mosquitto running on a free port.

The reliability suite and the load generator drive the system through these. Each process
writes its combined output to a log file, so what it said is both evidence (which events it
produced) and input to the reliability suite's secrets scan.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from lfrkit.mqtt import MqttLink
from protocol.topics import DEFAULT_SHARE_GROUP
from provisioning.quickstart import quickstart
from tools.broker import Broker, client, publish_retained
from tools.synthetic import seal_for, use_synthetic

BIN = Path(sys.executable).parent
QUEUED = re.compile(r"event ([0-9a-f-]{36}) queued")


class Proc:
    """One real process (``lfr-agent``, ``lfr-alerts``, ...) logging to ``log``."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv, self.log, self.env = argv, log, env
        self.process: subprocess.Popen[bytes] | None = None
        self._out: TextIO | None = None

    def start(self) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self.log, "a", encoding="utf-8")  # noqa: SIM115 - lives with the process
        self._out.write(f"--- start {' '.join(self.argv[:3])}\n")
        self._out.flush()
        self.process = subprocess.Popen(  # noqa: S603 - our own console scripts and mosquitto
            self.argv,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(self.env or {})},
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no handler, no flush, no goodbye — a crash or a power cut for the process."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._close()

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.process is not None
        if self.alive:
            self.process.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(5)
            raise AssertionError(f"{self.argv[0]} ignored SIGTERM for {timeout}s") from None
        finally:
            self._close()
        return code

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self._close()
        return code

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def queued_ids(self) -> list[str]:
        """Event ids the agent logged as committed to its outbox (what it produced)."""
        return QUEUED.findall(self.text())


@dataclass
class Rig:
    """A quickstart fleet on a free port, its broker running, devices on the synthetic backend."""

    root: Path
    index: dict[str, Any]
    broker: Broker
    logs: Path
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path, devices: int, logs: Path, **camera: Any) -> Rig:
        quickstart(root, devices=devices, now=datetime.now(UTC))
        index: dict[str, Any] = json.loads((root / "quickstart.json").read_text())
        for device in index["devices"]:
            use_synthetic(Path(device["config"]), **camera)
        broker = Broker(
            Path(index["broker"]["config"]), index["broker"]["host"], index["broker"]["port"]
        )
        broker.start()
        return cls(root, index, broker, logs)

    def device(self, device_id: str) -> dict[str, Any]:
        found: dict[str, Any] = next(d for d in self.index["devices"] if d["id"] == device_id)
        return found

    @property
    def device_ids(self) -> list[str]:
        return [d["id"] for d in self.index["devices"]]

    def topic(self, device_id: str, kind: str) -> str:
        return f"lfr/v1/{self.device(device_id)['site']}/{device_id}/{kind}"

    def client(self, who: str) -> MqttLink:
        return client(self.index, who)

    def push_watchlist(
        self, device_id: str, colours: list[int], version: int, lifetime: timedelta
    ) -> bytes:
        bundle = seal_for(self.index, device_id, colours, version, lifetime)
        publish_retained(self.index, self.topic(device_id, "watchlist"), bundle)
        return bundle

    def agent(self, device_id: str, *args: str, name: str | None = None) -> Proc:
        proc = Proc(
            [
                str(BIN / "lfr-agent"),
                "-v",
                "run",
                "--config",
                self.device(device_id)["config"],
                *args,
            ],
            self.logs / f"{name or device_id}.log",
        )
        self.procs.append(proc)
        return proc

    def listener(self, name: str, cert: str, db: str, group: str = DEFAULT_SHARE_GROUP) -> Proc:
        proc = Proc(
            [
                str(BIN / "lfr-alerts"),
                "-v",
                "listen",
                "--registry",
                self.index["registry"],
                "--broker",
                f"{self.index['broker']['host']}:{self.index['broker']['port']}",
                "--client-cert",
                cert,
                "--group",
                group,
                "--db",
                db,
            ],
            self.logs / f"{name}.log",
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.alive:
                # A process ignoring SIGTERM was already reported by the test that cared.
                with contextlib.suppress(AssertionError):
                    proc.terminate(10)
        self.broker.stop()


def wait_until(predicate: Any, timeout: float, what: str, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
