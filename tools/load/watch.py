"""When each alert row became visible in the store: a thread polling the store every 20 ms
(SQLite by rowid, PostgreSQL by transaction id), so latencies measured with it are upper bounds,
up to one poll late."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta


class StoreWatcher:
    """When each alert row became visible in the store, by ``event_id`` (polled)."""

    def __init__(self, db_url: str, interval: float = 0.02) -> None:
        self.db_url, self.interval = db_url, interval
        self.seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)
        self.polls = 0
        self.error: str | None = None

    def start(self) -> StoreWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.seen)

    def _note(self, ids: list[str], at: float) -> None:
        with self._lock:
            for event_id in ids:
                self.seen.setdefault(event_id, at)
        self.polls += 1

    def _run(self) -> None:
        try:
            if self.db_url.startswith("sqlite:"):
                self._run_sqlite(self.db_url[len("sqlite:///") :])
            else:
                self._run_postgresql()
        except Exception as exc:  # reported with the results, not lost in a thread
            self.error = f"{type(exc).__name__}: {exc}"
            raise

    def _run_sqlite(self, path: str) -> None:
        db = sqlite3.connect(path, timeout=30)
        last = 0
        try:
            while not self._stop.is_set():
                rows = db.execute(
                    "SELECT rowid, event_id FROM alerts WHERE rowid > ? ORDER BY rowid", (last,)
                ).fetchall()
                at = time.time()
                if rows:
                    last = int(rows[-1][0])
                self._note([str(r[1]) for r in rows], at)
                self._stop.wait(self.interval)
        finally:
            db.close()

    def _run_postgresql(self) -> None:
        # No rowid: a row not visible at the previous poll was written by a transaction that
        # was running then or began later, so its xmin is at least that snapshot's xmin.
        import psycopg

        from protocol.encoding import format_time

        snap = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296"
        with psycopg.connect(self.db_url, autocommit=True) as db:
            previous = 0
            while not self._stop.is_set():
                row = db.execute(snap).fetchone()
                current = int(row[0]) if row else 0
                since = format_time(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2))
                rows = db.execute(
                    "SELECT event_id FROM alerts WHERE received_at >= %s "
                    "AND xmin::text::bigint >= %s",
                    (since, previous),
                ).fetchall()
                self._note([str(r[0]) for r in rows], time.time())
                previous = current
                self._stop.wait(self.interval)
