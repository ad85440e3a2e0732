"""The shell of the device state: decisions carried out on a real disk (and on one that
refuses writes), the matcher rebuilt, the tracker told, and what the status says."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.control import DeviceControl, MatchingPolicy
from agent.core.device_state import EXPIRED, INSTALLED, NONE, WIPED, Floors, Install
from agent.io.watchlist_store import WatchlistStore
from protocol.command import Action, Command, sign_command
from provisioning.authority import load_ops_signer
from tests.conftest import EMBEDDER, NOW, make_entries
from tests.unit.test_watchlist_store import Node, make_node


class FlakyDisk(WatchlistStore):
    """The real store, on a disk that can be made to refuse writes (ENOSPC)."""

    full = False

    def _refuse(self) -> None:
        if self.full:
            raise OSError(28, "No space left on device")

    def commit(self, install: Install) -> None:
        self._refuse()
        super().commit(install)

    def save_floors(self, floors: Floors) -> None:
        self._refuse()
        super().save_floors(floors)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Rig:
    def __init__(self, node: Node, local_floor: float | None = None) -> None:
        self.node = node
        self.store = FlakyDisk(node.identity, EMBEDDER)
        self.clock = Clock()
        self.changes = 0
        self.control = DeviceControl(
            self.store.open_state(),
            self.store,
            MatchingPolicy(local_floor),
            self.clock,
            retry_after=0.0,
        )
        self.control.on_change.append(self._changed)

    def _changed(self) -> None:
        self.changes += 1

    def version(self) -> int | None:
        header = self.control.header
        return None if header is None else header.version

    def command(self, action: Action, counter: int) -> bytes:
        signers = [load_ops_signer(self.node.auth / f"ops-{i}.key") for i in (1, 2)]
        return sign_command(
            Command("cam-01", "kx", action, counter, NOW, NOW + timedelta(minutes=10)), signers
        )


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(make_node(tmp_path))


def test_install_rebuilds_the_matcher_and_tells_the_tracker(rig: Rig) -> None:
    rig.control.load_stored()
    assert (rig.control.matcher, rig.control.note) == (None, NONE)
    v1 = rig.node.bundle(1)
    rig.control.on_watchlist(v1)
    assert rig.version() == 1 and rig.control.matcher is not None and rig.changes == 1
    assert rig.store.path.read_bytes() == v1 and rig.store.floors() == Floors(1, 0)
    rig.control.on_watchlist(v1)  # the retained copy, delivered again on reconnect
    assert rig.changes == 1 and rig.control.state.last_rejection is None


def test_a_disk_refusing_the_install_keeps_the_previous_list_and_retries(rig: Rig) -> None:
    rig.control.on_watchlist(rig.node.bundle(1))
    rig.store.full = True
    rig.control.on_watchlist(rig.node.bundle(2))
    assert rig.version() == 1 and rig.store.floors() == Floors(1, 0)
    assert rig.control.storage_error is not None
    assert rig.control.storage_error.startswith("watchlist install failed")
    alarms = [a.text for a in rig.control.status().alarms]
    assert alarms == [f"state not writable: {rig.control.storage_error}"]
    rig.control.retry_install()  # still full: still v1, still retrying
    assert rig.version() == 1
    rig.store.full = False
    rig.control.retry_install()  # the broker will not send it again: the retry installs it
    assert rig.version() == 2 and rig.store.floors() == Floors(2, 0)
    assert rig.control.storage_error is None and rig.control.status().alarms == ()
    rig.control.retry_install()
    assert rig.changes == 2


def test_a_command_is_obeyed_even_when_its_counter_cannot_be_saved(rig: Rig) -> None:
    rig.control.on_watchlist(rig.node.bundle(1))
    pause = rig.command(Action.PAUSE, 1)
    rig.store.full = True
    rig.control.on_command(pause)
    assert rig.control.paused and rig.control.matching is None
    assert rig.control.matcher is not None
    assert rig.control.floors == Floors(1, 0) == rig.store.floors()
    assert (rig.control.storage_error or "").startswith("command counter not saved")
    rig.store.full = False
    rig.control.on_command(pause)  # comes back on reconnect: applied again, saved this time
    assert rig.control.paused and rig.control.storage_error is None
    assert rig.control.floors == Floors(1, 1, paused=True) == rig.store.floors()
    rig.control.on_command(rig.command(Action.RESUME, 2))
    assert not rig.control.paused and rig.control.matching is rig.control.matcher


def test_wipes_reach_the_disk(rig: Rig) -> None:
    rig.control.on_watchlist(rig.node.bundle(1, lifetime=timedelta(minutes=30)))
    assert rig.control.header is not None
    expires = rig.control.header.expires_at
    rig.control.check_expiry(expires - timedelta(seconds=1))
    assert rig.control.note == INSTALLED and rig.store.path.exists()
    rig.control.check_expiry(expires)
    assert (rig.control.watchlist, rig.control.note, rig.control.matcher) == (None, EXPIRED, None)
    assert not rig.store.path.exists() and rig.changes == 2
    rig.control.on_watchlist(rig.node.bundle(2))
    rig.control.on_command(rig.command(Action.WIPE, 1))
    assert (rig.control.watchlist, rig.control.note) == (None, WIPED)
    assert not rig.store.path.exists() and rig.store.floors() == Floors(2, 1, wiped=True)


def test_a_stored_list_that_fails_reverification_is_wiped_at_start(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.store.install(node.bundle(1), NOW)
    node.store.install(node.bundle(2), NOW)
    node.identity.layout.watchlist.write_bytes(node.bundle(1))  # rolled back on disk
    rig = Rig(node)
    rig.control.load_stored()
    assert rig.control.watchlist is None and not node.identity.layout.watchlist.exists()
    rejection = rig.control.state.last_rejection
    assert rejection is not None and (rejection.what, rejection.reason) == (
        "stored watchlist",
        "rollback",
    )


def test_the_floors_left_behind_by_a_power_cut_are_raised_at_start(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.store.install(node.bundle(1), NOW)
    node.identity.layout.watchlist.write_bytes(node.bundle(2))  # cut before the floor write
    rig = Rig(node)
    rig.control.load_stored()
    assert rig.version() == 2 and rig.store.floors() == Floors(2, 0)


@pytest.mark.parametrize(("local_floor", "expected"), [(None, 0.6), (0.5, 0.6), (0.7, 0.7)])
def test_the_matcher_uses_the_signed_threshold_which_only_the_local_floor_raises(
    tmp_path: Path, local_floor: float | None, expected: float
) -> None:
    rig = Rig(make_node(tmp_path), local_floor)
    rig.control.on_watchlist(rig.node.bundle(3))  # signed 0.6; entry 0's own 0.55 cannot lower it
    assert rig.control.matcher is not None
    listed = make_entries(count=3).entries[0]
    match = rig.control.matcher.match(listed.embeddings[0])
    assert match is not None and match.subject_ref == listed.subject_ref
    assert match.threshold == pytest.approx(expected)


def test_news(rig: Rig) -> None:
    before = rig.control.news()
    rig.control.on_watchlist(b"{not json")
    refused = rig.control.news()
    assert refused != before
    rig.control.on_watchlist(rig.node.bundle(1))
    assert rig.control.news() != refused


def test_a_wipe_command_drops_a_pending_install_retry(rig: Rig) -> None:
    """Issue 17 finding 4: disk error -> retry scheduled -> wipe -> the old list never returns."""
    rig.control.on_watchlist(rig.node.bundle(1))
    rig.store.full = True
    rig.control.on_watchlist(rig.node.bundle(2))  # refused by the disk: a retry is pending
    assert rig.version() == 1 and rig.control.storage_error is not None
    rig.store.full = False
    rig.control.on_command(rig.command(Action.WIPE, 1))
    assert (rig.control.watchlist, rig.control.note) == (None, WIPED)
    for _ in range(3):  # retry_after is 0 in the rig: every call would be due
        rig.control.retry_install()
    assert (rig.control.watchlist, rig.control.matcher, rig.control.note) == (None, None, WIPED)
    assert not rig.store.path.exists() and rig.store.floors() == Floors(1, 1, wiped=True)


def test_pause_and_wipe_survive_a_restart_on_the_real_disk(tmp_path: Path) -> None:
    """Issue 17 finding 3: a new shell on the same state folder (a kill -9 and a restart)
    starts paused, matches nothing, and takes the retained pause as already applied."""
    node = make_node(tmp_path)
    rig = Rig(node)
    rig.control.on_watchlist(node.bundle(1))
    pause = rig.command(Action.PAUSE, 1)
    rig.control.on_command(pause)
    restarted = Rig(node)
    restarted.control.load_stored()
    assert restarted.control.paused and restarted.control.matching is None
    assert restarted.version() == 1
    restarted.control.on_command(pause)  # the retained copy on reconnect
    assert restarted.control.paused and restarted.control.matching is None
    restarted.control.on_command(rig.command(Action.WIPE, 2))
    again = Rig(node)
    again.control.load_stored()
    assert (again.control.paused, again.control.note, again.control.watchlist) == (
        True,
        WIPED,
        None,
    )


@pytest.mark.parametrize(
    "tamper",
    [
        "delete",
        "lower",  # the review's attack: floors back to 0 to re-open old versions and commands
        "unpause",
        "copied from another device",
        "written before floors were bound",
    ],
)
def test_a_deleted_or_edited_counters_file_is_detected(tmp_path: Path, tamper: str) -> None:
    """Issue 17 finding 5: floors are MACed with a key only this device's signing key yields;
    a missing or edited file is reported, never read as zero: the floor is what the stored
    bundle proves, and matching stays paused until ops send a command."""
    node = make_node(tmp_path)
    rig = Rig(node)
    rig.control.on_watchlist(node.bundle(1))
    rig.control.on_watchlist(node.bundle(2))
    rig.control.on_command(rig.command(Action.PAUSE, 5))
    counters = node.identity.layout.counters
    doc = json.loads(counters.read_text())
    if tamper == "delete":
        counters.unlink()
    elif tamper == "lower":
        counters.write_text(json.dumps({**doc, "watchlist_version": 0, "command_counter": 0}))
    elif tamper == "unpause":
        counters.write_text(json.dumps({**doc, "paused": False}))
    elif tamper == "copied from another device":
        other = make_node(tmp_path / "other")
        other.store.save_floors(Floors(0, 0))
        counters.write_bytes(other.identity.layout.counters.read_bytes())
    else:
        counters.write_text('{"command_counter":0,"watchlist_version":0}')
    Rig(node).control.load_stored()  # a first restart does not hide the problem from the next
    again = Rig(node)
    again.control.load_stored()
    assert again.control.paused and again.control.matching is None
    assert again.control.floors.watchlist_version == 2  # what the stored bundle proves
    alarms = [a.text for a in again.control.status().alarms]
    assert len(alarms) == 1 and alarms[0].startswith("anti-rollback floors not proven")
    again.control.on_watchlist(node.bundle(1))  # an old version: still refused
    assert again.version() == 2 and again.control.state.last_rejection is not None
    again.control.on_command(rig.command(Action.RESUME, 6))  # ops re-establish the state
    assert not again.control.paused and again.control.status().alarms == ()
    assert Rig(node).store.floors() == Floors(2, 6)


def test_the_first_start_binds_the_floors(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    assert not node.identity.layout.counters.exists()
    assert node.store.floors() == Floors() and node.store.floors_problem is None
    assert set(json.loads(node.identity.layout.counters.read_text())) == {
        "command_counter",
        "mac",
        "paused",
        "watchlist_version",
        "wiped",
    }
