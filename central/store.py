"""The alert store: SQLite by default, PostgreSQL for a control room with several consumers.

One schema, versioned migrations for both. ``event_id`` is the primary key, so however many
``lfr-alerts listen`` processes share a subscription group, and however often the broker
redelivers, each alert is stored exactly once. The signed event is kept as received (the
evidence); its probe stays sealed and is opened only for an officer's screen.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from protocol.encoding import format_time
from protocol.event import MatchEvent

OUTCOMES = ("confirmed", "false_alert", "no_action")

# Version 2 is the same text on both: only portable types in it.
_V2 = """CREATE TABLE status_snapshots (
            device_id TEXT NOT NULL, site TEXT NOT NULL, at TEXT NOT NULL,
            uptime_s BIGINT NOT NULL, frames BIGINT NOT NULL, faces_detected BIGINT NOT NULL,
            faces_discarded BIGINT NOT NULL, matches BIGINT NOT NULL,
            PRIMARY KEY (device_id, at));
        CREATE TABLE daily_stats (
            site TEXT NOT NULL, day TEXT NOT NULL, faces BIGINT NOT NULL,
            alerts BIGINT NOT NULL, confirmed BIGINT NOT NULL, false_alerts BIGINT NOT NULL,
            no_action BIGINT NOT NULL, adjudicated BIGINT NOT NULL,
            adjudication_seconds DOUBLE PRECISION NOT NULL, PRIMARY KEY (site, day));"""

# Version 3: officers' accounts, their sessions (held here, not in a process, so several page
# instances behind one database agree) and the audit trail of who saw and decided what.
# Sessions are keyed by the SHA-256 of the cookie's token: a copy of the database does not
# hand out live sessions. Session times are epoch seconds (compared, never shown).
_V3 = """CREATE TABLE officers (
            name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, active INTEGER NOT NULL,
            created_at TEXT NOT NULL, changed_at TEXT NOT NULL);
        CREATE TABLE sessions (
            token_sha256 TEXT PRIMARY KEY,
            officer TEXT NOT NULL REFERENCES officers (name), csrf TEXT NOT NULL,
            client TEXT NOT NULL, created BIGINT NOT NULL, last_seen BIGINT NOT NULL);
        CREATE INDEX sessions_officer ON sessions (officer);
        CREATE TABLE audit (
            id {serial} PRIMARY KEY, at TEXT NOT NULL, officer TEXT NOT NULL,
            action TEXT NOT NULL, event_id TEXT, client TEXT NOT NULL, detail TEXT NOT NULL);
        CREATE INDEX audit_event ON audit (event_id)"""

# Version 4 (issue 16 §4): people seen (the devices' track counts; NULL from a device that does
# not report them) and the device-reported median time to alert, and their daily aggregates.
_V4 = """ALTER TABLE status_snapshots ADD COLUMN tracks_started BIGINT;
        ALTER TABLE status_snapshots ADD COLUMN time_to_alert_s DOUBLE PRECISION;
        ALTER TABLE daily_stats ADD COLUMN people BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE daily_stats ADD COLUMN device_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
        ALTER TABLE daily_stats ADD COLUMN time_to_alert_s DOUBLE PRECISION"""

# Version 5 (issue 19): the console's queue and its lock. ``decided`` mirrors "has an
# adjudication" so the queue is one indexed range; ``claimed_by``/``claim_expires`` (epoch
# seconds) are the lock an officer takes on opening an alert, held in the database so several
# console instances agree; the officer's optional note goes with the decision. The indexes
# adjudications (event_id, id) and alerts (deployment_id, subject_ref, received_at) are
# version 7's (the load test's), not repeated here: same names would break that migration.
_V5 = """ALTER TABLE alerts ADD COLUMN decided INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE alerts ADD COLUMN claimed_by TEXT;
        ALTER TABLE alerts ADD COLUMN claim_expires BIGINT;
        ALTER TABLE adjudications ADD COLUMN note TEXT NOT NULL DEFAULT '';
        UPDATE alerts SET decided = 1 WHERE event_id IN (SELECT event_id FROM adjudications);
        CREATE INDEX alerts_queue ON alerts (decided, received_at);
        CREATE INDEX adjudications_decided ON adjudications (decided_at)"""


def _v6_device_status() -> str:
    """Version 6 (issue 19, the fleet view): the latest verified status of each device.

    ``document`` is the status as verified (canonical JSON); ``state_since`` changes only
    when the state does (online/paused/offline since when); ``received_at`` is when this
    listener last got a *new* document (a retained copy redelivered is not news), which is
    what the fleet view judges staleness by; ``at`` is the document's own time (NULL in a last
    will), so that of two listeners in one group the one storing an older document loses."""
    return """CREATE TABLE device_status (
            device_id TEXT PRIMARY KEY, site TEXT NOT NULL, state TEXT NOT NULL,
            state_since TEXT NOT NULL, received_at TEXT NOT NULL, at TEXT,
            document TEXT NOT NULL)"""


# Version 7 (issue 19, scale): indexes for what the pages ask. The latest decision of an alert
# is found by (event_id, MAX(id)): without this index every listed alert scanned all decisions.
# The queue is newest first (alerts_received, version 1); an alert view lists the subject's
# other alerts in its deployment; the fleet view counts each device's alerts since midnight.
_V7 = """CREATE INDEX adjudications_event ON adjudications (event_id, id);
        CREATE INDEX alerts_subject ON alerts (deployment_id, subject_ref, received_at);
        CREATE INDEX alerts_device ON alerts (device_id, received_at)"""

_MIGRATIONS: dict[str, list[str]] = {
    "sqlite": [
        """CREATE TABLE alerts (
            event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, site TEXT NOT NULL,
            deployment_id TEXT NOT NULL, watchlist_version INTEGER NOT NULL,
            subject_ref TEXT NOT NULL, category TEXT NOT NULL, score REAL NOT NULL,
            threshold REAL NOT NULL, margin REAL NOT NULL, observed_at TEXT NOT NULL,
            received_at TEXT NOT NULL, track_id INTEGER NOT NULL,
            embedder_sha256 TEXT NOT NULL, token BLOB NOT NULL);
        CREATE INDEX alerts_received ON alerts (received_at);
        CREATE TABLE adjudications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL REFERENCES alerts (event_id),
            outcome TEXT NOT NULL CHECK (outcome IN ('confirmed', 'false_alert', 'no_action')),
            officer TEXT NOT NULL, decided_at TEXT NOT NULL);
        CREATE TABLE rejections (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);""",
        _V2,
        _V3.format(serial="INTEGER"),  # INTEGER PRIMARY KEY: SQLite's rowid, never reused
        _V4,
        _V5,
        _v6_device_status(),
        _V7,
    ],
    "postgresql": [
        """CREATE TABLE alerts (
            event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, site TEXT NOT NULL,
            deployment_id TEXT NOT NULL, watchlist_version BIGINT NOT NULL,
            subject_ref TEXT NOT NULL, category TEXT NOT NULL, score DOUBLE PRECISION NOT NULL,
            threshold DOUBLE PRECISION NOT NULL, margin DOUBLE PRECISION NOT NULL,
            observed_at TEXT NOT NULL, received_at TEXT NOT NULL, track_id BIGINT NOT NULL,
            embedder_sha256 TEXT NOT NULL, token BYTEA NOT NULL);
        CREATE INDEX alerts_received ON alerts (received_at);
        CREATE TABLE adjudications (
            id BIGSERIAL PRIMARY KEY,
            event_id TEXT NOT NULL REFERENCES alerts (event_id),
            outcome TEXT NOT NULL CHECK (outcome IN ('confirmed', 'false_alert', 'no_action')),
            officer TEXT NOT NULL, decided_at TEXT NOT NULL);
        CREATE TABLE rejections (reason TEXT PRIMARY KEY, count BIGINT NOT NULL);""",
        _V2,
        _V3.format(serial="BIGSERIAL"),
        _V4,
        _V5,
        _v6_device_status(),
        _V7,
    ],
}


class StoreError(Exception):
    """The store URL or database cannot be used as given."""


@dataclass(frozen=True)
class Officer:
    name: str
    active: bool
    created_at: str
    changed_at: str


@dataclass(frozen=True)
class SessionRow:
    officer: str
    csrf: str
    client: str
    created: int
    last_seen: int


@dataclass(frozen=True)
class AuditEntry:
    at: str
    officer: str
    action: str
    event_id: str | None
    client: str
    detail: str


def _stamp(when: datetime | None) -> str:
    return format_time((when or datetime.now(UTC)).replace(microsecond=0))


@dataclass(frozen=True)
class StoredAlert:
    event_id: str
    device_id: str
    site: str
    deployment_id: str
    subject_ref: str
    category: str
    score: float
    threshold: float
    observed_at: str
    received_at: str
    token: bytes
    outcome: str | None
    officer: str | None
    decided_at: str | None


def _enable_wal(db: sqlite3.Connection, *, deadline: float) -> None:
    # Switching a new database to WAL needs a moment alone with the file, and SQLite answers
    # SQLITE_BUSY at once (its busy timeout does not cover this) when another listener is
    # opening the same file: wait and try again, as the timeout would for a write.
    delay = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


class AlertStore:
    def __init__(self, url: str, *, migrate_to: int | None = None) -> None:
        """Open the store at ``url`` and migrate its schema to the latest version (or to
        ``migrate_to``: the benchmark and the migration tests build an older schema)."""
        parsed = urlparse(url)
        self._lock = threading.Lock()
        if parsed.scheme == "sqlite":
            path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
            if not path:
                raise StoreError(f"{url}: use sqlite:///relative.db or sqlite:////abs/path.db")
            self.dialect = "sqlite"
            self._db: Any = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30
            )
            _enable_wal(self._db, deadline=time.monotonic() + 30)
            self._db.execute("PRAGMA foreign_keys=ON")
        elif parsed.scheme in ("postgresql", "postgres"):
            try:
                import psycopg
            except ImportError:
                raise StoreError(
                    "PostgreSQL needs psycopg: pip install 'lfr-edge[postgres]'"
                ) from None
            self.dialect = "postgresql"
            try:
                self._db = psycopg.connect(url, autocommit=True)
            except psycopg.Error as exc:
                raise StoreError(f"cannot connect to {parsed.hostname}: {exc}") from None
        else:
            raise StoreError(f"unsupported store URL {url!r} (sqlite:///FILE or postgresql://...)")
        self._migrate(migrate_to)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._db.execute(self._sql(sql), params)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One write transaction; yields ``run(sql, params)`` (the console's lock and decision:
        central.review_store). Other threads of this store wait until it ends."""
        with self._lock:
            if self.dialect == "postgresql":
                with self._db.transaction():
                    yield lambda sql, params=(): self._db.execute(self._sql(sql), params)
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield lambda sql, params=(): self._db.execute(self._sql(sql), params)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self, up_to: int | None) -> None:
        # Several listeners may start at once on a new database: one migrates, the others
        # wait for it (an advisory lock on PostgreSQL, a write transaction on SQLite), then
        # find nothing left to do.
        with self._lock:
            if self.dialect == "postgresql":
                self._db.execute("SELECT pg_advisory_lock(7734001)")
            else:
                self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
                row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
                current = int(row[0] or 0)
                for number, script in enumerate(_MIGRATIONS[self.dialect], start=1):
                    if number <= current or (up_to is not None and number > up_to):
                        continue
                    for statement in filter(str.strip, script.split(";")):
                        self._db.execute(statement)
                    self._db.execute(self._sql("INSERT INTO schema_version VALUES (?)"), (number,))
            except BaseException:
                if self.dialect == "sqlite":
                    self._db.execute("ROLLBACK")
                raise
            else:
                if self.dialect == "sqlite":
                    self._db.execute("COMMIT")
            finally:
                if self.dialect == "postgresql":
                    self._db.execute("SELECT pg_advisory_unlock(7734001)")

    @property
    def schema_version(self) -> int:
        return int(self._execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def add(self, event: MatchEvent, token: bytes, received_at: datetime | None = None) -> bool:
        """Store a verified event; False if it was already stored (a duplicate)."""
        received = format_time((received_at or datetime.now(UTC)).replace(microsecond=0))
        cursor = self._execute(
            "INSERT INTO alerts (event_id, device_id, site, deployment_id, watchlist_version, "
            "subject_ref, category, score, threshold, margin, observed_at, received_at, "
            "track_id, embedder_sha256, token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?) ON CONFLICT (event_id) DO NOTHING",
            (
                event.event_id,
                event.device_id,
                event.site,
                event.deployment_id,
                event.watchlist_version,
                event.subject_ref,
                event.category,
                event.score,
                event.threshold,
                event.margin,
                format_time(event.observed_at),
                received,
                event.track_id,
                event.embedder_sha256,
                token,
            ),
        )
        return bool(cursor.rowcount == 1)

    def count_rejection(self, reason: str) -> None:
        self._execute(
            "INSERT INTO rejections (reason, count) VALUES (?, 1) ON CONFLICT "
            "(reason) DO UPDATE SET count = rejections.count + 1",
            (reason,),
        )

    def rejections(self) -> dict[str, int]:
        rows = self._execute("SELECT reason, count FROM rejections").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def adjudicate(
        self, event_id: str, outcome: str, officer: str, when: datetime | None = None
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        officer = officer.strip()
        if not officer or len(officer) > 100:
            raise ValueError("the officer's name is required (at most 100 characters)")
        if self.get(event_id) is None:
            raise KeyError(event_id)
        queued = self.schema_version >= 5  # the console's queue column (tests run older ones)
        with self.transaction() as run:
            run(
                "INSERT INTO adjudications (event_id, outcome, officer, decided_at) "
                "VALUES (?, ?, ?, ?)",
                (event_id, outcome, officer, _stamp(when)),
            )
            if queued:
                run("UPDATE alerts SET decided = 1 WHERE event_id = ?", (event_id,))

    _SELECT = (
        "SELECT a.event_id, a.device_id, a.site, a.deployment_id, a.subject_ref, a.category, "
        "a.score, a.threshold, a.observed_at, a.received_at, a.token, d.outcome, d.officer, "
        "d.decided_at FROM alerts a LEFT JOIN adjudications d ON d.id = (SELECT MAX(id) FROM "
        "adjudications x WHERE x.event_id = a.event_id)"
    )

    @staticmethod
    def _row(row: Sequence[Any]) -> StoredAlert:
        return StoredAlert(
            event_id=str(row[0]),
            device_id=str(row[1]),
            site=str(row[2]),
            deployment_id=str(row[3]),
            subject_ref=str(row[4]),
            category=str(row[5]),
            score=float(row[6]),
            threshold=float(row[7]),
            observed_at=str(row[8]),
            received_at=str(row[9]),
            token=bytes(row[10]),
            outcome=row[11],
            officer=row[12],
            decided_at=row[13],
        )

    def recent(self, limit: int = 100) -> list[StoredAlert]:
        rows = self._execute(
            f"{self._SELECT} ORDER BY a.received_at DESC, a.event_id LIMIT ?", (limit,)
        ).fetchall()
        return [self._row(r) for r in rows]

    def get(self, event_id: str) -> StoredAlert | None:
        row = self._execute(f"{self._SELECT} WHERE a.event_id = ?", (event_id,)).fetchone()
        return self._row(row) if row else None

    def add_status(self, doc: dict[str, Any]) -> None:
        """Keep a device's privacy counters (numbers only) for the pilot report."""
        try:
            row = (
                str(doc["device_id"]),
                str(doc["site"]),
                str(doc["at"]),
                int(doc["uptime_s"]),
                int(doc["frames"]),
                int(doc["faces_detected"]),
                int(doc["faces_discarded"]),
                int(doc["matches"]),
            )
        except (KeyError, TypeError, ValueError):
            return  # an offline will or a partial document carries no counters
        # Optional members (issue 16 §4): older devices send neither.
        tracks = doc.get("tracks_started")
        timed = doc.get("time_to_alert_s")
        median = timed.get("median") if isinstance(timed, dict) else None
        self._execute(
            "INSERT INTO status_snapshots (device_id, site, at, uptime_s, frames, "
            "faces_detected, faces_discarded, matches, tracks_started, time_to_alert_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, at) DO NOTHING",
            (
                *row,
                int(tracks) if isinstance(tracks, int) else None,
                float(median) if isinstance(median, int | float) else None,
            ),
        )

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Read-only queries for reports (this module's tables)."""
        return list(self._execute(sql, params).fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._execute(sql, params).rowcount)

    def count(self) -> int:
        return int(self._execute("SELECT COUNT(*) FROM alerts").fetchone()[0])

    # -- officers, sessions, audit (schema version 3) --------------------------------------

    def add_officer(self, name: str, password_hash: str, when: datetime | None = None) -> bool:
        """A new active officer; False if the name is taken (active or disabled)."""
        stamp = _stamp(when)
        cursor = self._execute(
            "INSERT INTO officers (name, password_hash, active, created_at, changed_at) "
            "VALUES (?, ?, 1, ?, ?) ON CONFLICT (name) DO NOTHING",
            (name, password_hash, stamp, stamp),
        )
        return bool(cursor.rowcount == 1)

    def reset_officer(self, name: str, password_hash: str, when: datetime | None = None) -> bool:
        """New password for an existing officer, enabled again; their sessions end."""
        cursor = self._execute(
            "UPDATE officers SET password_hash = ?, active = 1, changed_at = ? WHERE name = ?",
            (password_hash, _stamp(when), name),
        )
        self._execute("DELETE FROM sessions WHERE officer = ?", (name,))
        return bool(cursor.rowcount == 1)

    def disable_officer(self, name: str, when: datetime | None = None) -> bool:
        """Disable an officer and end their sessions at once; False if there is no such one."""
        cursor = self._execute(
            "UPDATE officers SET active = 0, changed_at = ? WHERE name = ?", (_stamp(when), name)
        )
        self._execute("DELETE FROM sessions WHERE officer = ?", (name,))
        return bool(cursor.rowcount == 1)

    def officers(self) -> list[Officer]:
        rows = self._execute(
            "SELECT name, active, created_at, changed_at FROM officers ORDER BY name"
        ).fetchall()
        return [Officer(str(r[0]), bool(r[1]), str(r[2]), str(r[3])) for r in rows]

    def password_hash(self, name: str) -> str | None:
        """The stored hash of an *active* officer, else None."""
        row = self._execute(
            "SELECT password_hash FROM officers WHERE name = ? AND active = 1", (name,)
        ).fetchone()
        return str(row[0]) if row else None

    def add_session(self, token_sha256: str, session: SessionRow, keep_per_officer: int) -> None:
        """Store a session; the officer's oldest beyond ``keep_per_officer`` are ended."""
        self._execute(
            "INSERT INTO sessions (token_sha256, officer, csrf, client, created, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                token_sha256,
                session.officer,
                session.csrf,
                session.client,
                session.created,
                session.last_seen,
            ),
        )
        self._execute(
            "DELETE FROM sessions WHERE officer = ? AND token_sha256 NOT IN (SELECT "
            "token_sha256 FROM sessions WHERE officer = ? ORDER BY created DESC, "
            "token_sha256 LIMIT ?)",
            (session.officer, session.officer, keep_per_officer),
        )

    def session(self, token_sha256: str) -> SessionRow | None:
        """A session of an officer who is still active, else None."""
        row = self._execute(
            "SELECT s.officer, s.csrf, s.client, s.created, s.last_seen FROM sessions s "
            "JOIN officers o ON o.name = s.officer AND o.active = 1 WHERE s.token_sha256 = ?",
            (token_sha256,),
        ).fetchone()
        if row is None:
            return None
        return SessionRow(str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]))

    def touch_session(self, token_sha256: str, now: int) -> None:
        self._execute(
            "UPDATE sessions SET last_seen = ? WHERE token_sha256 = ?", (now, token_sha256)
        )

    def end_session(self, token_sha256: str) -> None:
        self._execute("DELETE FROM sessions WHERE token_sha256 = ?", (token_sha256,))

    def expire_sessions(self, created_before: int, idle_before: int) -> int:
        return int(
            self._execute(
                "DELETE FROM sessions WHERE created < ? OR last_seen < ?",
                (created_before, idle_before),
            ).rowcount
        )

    def audit(
        self,
        officer: str,
        action: str,
        client: str,
        *,
        event_id: str | None = None,
        detail: str = "",
        when: datetime | None = None,
    ) -> None:
        """Append to the audit trail (nothing in this module updates or deletes it)."""
        self._execute(
            "INSERT INTO audit (at, officer, action, event_id, client, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_stamp(when), officer, action, event_id, client, detail),
        )

    def audit_log(self, limit: int = 1000, event_id: str | None = None) -> list[AuditEntry]:
        """The newest ``limit`` entries, oldest first (optionally for one alert)."""
        select = "SELECT at, officer, action, event_id, client, detail FROM audit "
        if event_id is None:
            rows = self._execute(select + "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        else:
            rows = self._execute(
                select + "WHERE event_id = ? ORDER BY id DESC LIMIT ?", (event_id, limit)
            ).fetchall()
        return [
            AuditEntry(str(r[0]), str(r[1]), str(r[2]), r[3], str(r[4]), str(r[5]))
            for r in reversed(rows)
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
