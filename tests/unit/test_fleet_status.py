"""The ops side of the status document: the fleet table and the outcome of a push, read
through protocol.status like every other tool."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from central.fleet_ops import OpsState, Outcome, _outcome, fleet_rows, table
from lfrkit.console import UsageError
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


def test_ops_take_counters_from_their_own_state_only(tmp_path: Path) -> None:
    """Issue 17 finding 2: the next number is ops' own (reserved on disk before use); a
    status floor above it is an alarm, never adopted."""
    state = OpsState(tmp_path / "ops-state.json")
    assert state.reserve("cam-01", "command_counter") == 1
    assert state.reserve("cam-01", "command_counter") == 2
    assert state.reserve("cam-02", "watchlist_version") == 1
    again = OpsState(tmp_path / "ops-state.json")  # what a crash right after publishing leaves
    assert again.reserve("cam-01", "command_counter") == 3
    claims = parse_status(AGENT_DOCUMENT)  # floors: version 7, counter 4
    alarms = again.alarms("cam-01", claims)
    assert len(alarms) == 2 and alarms[0].startswith("ALARM watchlist_version floor 7 above")
    assert "command_counter floor 4 above the 3" in alarms[1]
    assert again.reserve("cam-01", "command_counter") == 4  # not 5: the claim is not adopted
    assert again.alarms("cam-01", claims) == [alarms[0]]
    assert again.alarms("cam-01", parse_status(offline_status("cam-01", "kx"))) == []
    row = fleet_rows({"cam-01": claims}, again)[1]
    assert row[-1].endswith(alarms[0]) and row[-1].startswith("outbox 9/10 full")


@pytest.mark.parametrize(
    "text",
    [
        '{"devices":{"cam-01":{"command_counter":"not-a-number"}}}',
        '{"devices":{"cam-01":{"command_counter":9007199254740992}}}',
        '{"devices":{"cam-01":{"command_counter":-1}}}',
        '{"devices":{"cam-01":{"counter":1}}}',
        '{"devices":[]}',
        "{not json",
    ],
)
def test_a_corrupt_ops_state_is_refused_not_read_as_zero(tmp_path: Path, text: str) -> None:
    (tmp_path / "ops-state.json").write_text(text)
    with pytest.raises(UsageError, match=r"ops-state\.json"):
        OpsState(tmp_path / "ops-state.json")


def test_an_exhausted_counter_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"devices":{"cam-01":{"command_counter":9007199254740991}}}')
    with pytest.raises(UsageError, match="exhausted"):
        OpsState(tmp_path / "s.json").reserve("cam-01", "command_counter")
