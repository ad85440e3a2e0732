"""The persistent outbox: every signed event is on disk before it is published.

SQLite in WAL mode with ``synchronous=FULL``: a committed event survives a power cut. An
event leaves only after the broker's PUBACK; after a crash or an outage everything still here
is published again, oldest first (consumers de-duplicate by ``event_id``). The outbox is
bounded: when full, a new event is refused and counted, never silently lost, and status raises
an alarm well before that.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic    TEXT NOT NULL,
    payload  BLOB NOT NULL,
    created  REAL NOT NULL
);
"""


class OutboxFull(Exception):
    """The outbox holds its maximum; the event was not stored (the caller counts it)."""


class OutboxUnwritable(Exception):
    """The disk refused a write (full, read-only, I/O error): nothing changed in the outbox.

    The caller still holds the event and decides what to do (keep it in memory and retry).
    """


@dataclass(frozen=True)
class Pending:
    seq: int
    event_id: str
    topic: str
    payload: bytes


class Outbox:
    def __init__(self, path: Path, max_events: int = 10_000) -> None:
        self.path = Path(path)
        self.max_events = max_events
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.path.chmod(0o600)

    def put(self, event_id: str, topic: str, payload: bytes) -> None:
        """Store an event durably, or raise (:class:`OutboxFull`, :class:`OutboxUnwritable`)."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM outbox WHERE event_id = ?", (event_id,)).fetchone():
                return  # storing the same event twice is harmless
            (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            if count >= self.max_events:
                raise OutboxFull(f"outbox holds {count} events (limit {self.max_events})")
            try:
                self._db.execute(
                    "INSERT INTO outbox (event_id, topic, payload, created) VALUES (?, ?, ?, ?)",
                    (event_id, topic, payload, time.time()),
                )
            except sqlite3.OperationalError as exc:  # SQLITE_FULL, SQLITE_IOERR, read-only
                raise OutboxUnwritable(f"outbox {self.path}: {exc}") from exc

    def pending(self, limit: int, after_seq: int = 0) -> list[Pending]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, topic, payload FROM outbox WHERE seq > ? ORDER BY seq "
                "LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [Pending(int(r[0]), str(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    def ack(self, event_id: str) -> None:
        """Forget a delivered event; :class:`OutboxUnwritable` leaves it (sent again later)."""
        with self._lock:
            try:
                self._db.execute("DELETE FROM outbox WHERE event_id = ?", (event_id,))
            except sqlite3.OperationalError as exc:
                raise OutboxUnwritable(f"outbox {self.path}: {exc}") from exc

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    def integrity_ok(self) -> bool:
        with self._lock:
            (result,) = self._db.execute("PRAGMA integrity_check").fetchone()
        return bool(result == "ok")

    def close(self) -> None:
        with self._lock:
            self._db.close()
