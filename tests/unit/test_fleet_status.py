"""The ops side of the status document: the fleet table and the outcome of a push, read
through protocol.status like every other tool."""

from __future__ import annotations

import json
from datetime import timedelta

from central.fleet_ops import Outcome, _outcome, fleet_rows, table
from protocol.encoding import canonical_json
from protocol.status import offline_status, parse_status
from tests.conftest import NOW
from tests.unit.test_status import AGENT_DOCUMENT


def test_fleet_table_from_a_running_device_and_a_vanished_one() -> None:
    statuses = {
        "cam-01": parse_status(AGENT_DOCUMENT),
        "cam-02": parse_status(offline_status("cam-02", "kx")),
    }
    rows = fleet_rows(statuses)
    assert rows[1] == [
        "cam-01",
        "kx",
        "paused",
        "v7",
        "2026-11-28T21:00:00Z",
        "12.5",
        "40",
        "37",
        "3",
        "9",
        "outbox 9/10 full; camera stalled: no frame for 12s",
    ]
    assert rows[2] == ["cam-02", "kx", "offline", "none", *["-"] * 7]
    assert table(rows).splitlines()[0].startswith("DEVICE")


def test_a_push_is_rejected_applied_or_pending() -> None:
    status = parse_status(AGENT_DOCUMENT)  # last_rejection: command, rollback, at NOW - 1 min
    sent = Outcome("cam-01", 8, sent_at=NOW - timedelta(minutes=1))
    assert _outcome(status, sent, "command", applied=False) == "rejected (rollback)"
    assert _outcome(status, sent, "watchlist", applied=False) == "pending"
    assert _outcome(status, sent, "command", applied=True) == "applied"
    later = Outcome("cam-01", 8, sent_at=NOW)  # the rejection is older than this push
    assert _outcome(status, later, "command", applied=False) == "pending"
    will = parse_status(offline_status("cam-01", "kx"))
    assert _outcome(will, sent, "command", applied=False) == "offline"
    assert _outcome(None, sent, "command", applied=False) == "pending"
    gone = parse_status(canonical_json({**json.loads(AGENT_DOCUMENT), "state": "offline"}))
    assert _outcome(gone, later, "command", applied=False) == "offline"
