"""Following devices' retained status documents the way ops tools do (over the broker), and
publishing as ops on the same connection."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from lfrkit.mqtt import MqttLink
from tests.reliability.conftest import Recorder
from tools.broker import status_json

Doc = dict[str, Any]


class StatusWatch:
    """The ops client: reads the retained status of every device ``topic`` covers (all of
    them by default), keeps each one's latest, and publishes as ops. With ``record``, every
    status document read is kept for the secrets-hygiene scan.

    One connection only: the broker uses the certificate name as the client id, so a second
    ``ops`` connection would take this one's session over.
    """

    def __init__(
        self, link: MqttLink, topic: str = "lfr/v1/+/+/status", record: Recorder | None = None
    ) -> None:
        self.link = link
        self.latest: dict[str, Doc] = {}
        self._record = record
        link.subscribe([(topic, 1)])

    def pump(self, timeout: float) -> None:
        """Read what has arrived (waiting up to ``timeout`` for the first message)."""
        message = self.link.receive(timeout)
        while message is not None:
            if message.payload:  # an empty retained message clears the topic
                doc = status_json(message.payload)
                if self._record is not None:  # the document itself, not its base64 in the JWS
                    self._record("status-documents", json.dumps(doc, sort_keys=True))
                self.latest[message.topic.split("/")[3]] = doc
            message = self.link.receive(0)

    def wait(self, device: str, predicate: Callable[[Doc], bool], timeout: float, what: str) -> Doc:
        """The newest status of ``device`` once it satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.2)
            doc = self.latest.get(device)
            if doc is not None and predicate(doc):
                return doc
        raise AssertionError(
            f"timed out after {timeout:.0f}s waiting for {what}; "
            f"last status of {device}: {self.latest.get(device)}"
        )

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        code = self.link.wait_ack(self.link.publish(topic, payload, retain=retain), timeout=180)
        assert code in (0, 16), f"broker refused the ops publish on {topic} ({code:#x})"

    def close(self) -> None:
        self.link.close()


def alarm(doc: Doc, text: str) -> bool:
    return any(text in a for a in doc.get("alarms", []))
