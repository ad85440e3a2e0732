"""Following a device's retained status document the way ops tools do (over the broker)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.reliability.conftest import Recorder
from tools.processes import Rig

Doc = dict[str, Any]


class StatusWatch:
    def __init__(self, rig: Rig, device_id: str, record: Recorder) -> None:
        self.link = rig.client("ops")
        self.link.subscribe([(rig.topic(device_id, "status"), 1)])
        self.latest: Doc = {}
        self._record = record

    def wait(self, predicate: Callable[[Doc], bool], timeout: float, what: str) -> Doc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.latest and predicate(self.latest):
                return self.latest
            message = self.link.receive(0.5)
            if message is not None and message.payload:
                self._record("status-documents", message.payload.decode())
                self.latest = json.loads(message.payload)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}: {self.latest}")

    def close(self) -> None:
        self.link.close()


def alarm(doc: Doc, text: str) -> bool:
    return any(text in a for a in doc.get("alarms", []))
