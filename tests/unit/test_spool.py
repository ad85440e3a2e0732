"""The spool keeps events the disk refused, writes them back in order, and counts drops."""

from __future__ import annotations

from pathlib import Path

from agent.io.outbox import Outbox, OutboxUnwritable
from agent.io.spool import Spool


class FailingDisk(Outbox):
    """A real outbox whose writes fail while ``full`` is set, as SQLITE_FULL would."""

    full = False

    def put(self, event_id: str, topic: str, payload: bytes) -> None:
        if self.full:
            raise OutboxUnwritable(f"outbox {self.path}: database or disk is full")
        super().put(event_id, topic, payload)


def test_held_while_the_disk_is_full_then_written_in_order(tmp_path: Path) -> None:
    outbox = FailingDisk(tmp_path / "o.sqlite")
    spool = Spool(outbox, max_held=3, retry_every=0.0)
    spool.put("e0", "t", b"0")
    outbox.full = True
    for n in range(1, 5):
        spool.put(f"e{n}", "t", b"%d" % n)
    assert spool.held == 3 and spool.disk_error is not None
    assert dict(spool.dropped) == {"disk full": 1}  # e4: beyond the bound, counted
    spool.retry(now=1.0)
    assert spool.held == 3  # still full: nothing lost, nothing reordered
    outbox.full = False
    spool.put("e5", "t", b"5")  # queued behind the held ones, not ahead of them
    assert spool.held == 0 and spool.disk_error is None
    assert [p.event_id for p in outbox.pending(10)] == ["e0", "e1", "e2", "e3", "e5"]


def test_outbox_limit_is_a_counted_drop(tmp_path: Path) -> None:
    spool = Spool(Outbox(tmp_path / "o.sqlite", max_events=1))
    spool.put("a", "t", b"a")
    spool.put("b", "t", b"b")
    assert dict(spool.dropped) == {"outbox full": 1} and spool.held == 0


def test_retry_waits_between_attempts(tmp_path: Path) -> None:
    outbox = FailingDisk(tmp_path / "o.sqlite")
    outbox.full = True
    spool = Spool(outbox, retry_every=10.0)
    spool.put("a", "t", b"a")
    outbox.full = False
    spool.retry(now=0.0)  # first attempt is due at once
    assert spool.held == 0
    outbox.full = True
    spool.put("b", "t", b"b")
    outbox.full = False
    spool.retry(now=5.0)  # within retry_every of the last attempt: not yet
    assert spool.held == 1
    spool.retry(now=10.0)
    assert spool.held == 0
