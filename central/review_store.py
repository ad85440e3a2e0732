"""The console's queries on the alert store (schema version 5): the queue, the lock, decisions.

The lock is a row of the database, not a lock of a process: an officer who opens an alert
claims it for ``CLAIM_SECONDS`` with one conditional UPDATE (atomic on SQLite and PostgreSQL:
PostgreSQL re-checks the WHERE on the row it locked), so two console instances behind one
database never hand one alert to two officers. A decision is the same conditional UPDATE plus
the adjudication row, in one transaction: an alert is decided once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from central.store import OUTCOMES, AlertStore
from protocol.encoding import format_time

CLAIM_SECONDS = 120
QUEUE_LIMIT = 200  # rows sent to a browser each second; the count says how many there are
MAX_NOTE = 500


class Claim(Enum):
    OK = "ok"
    DECIDED = "decided"
    LOCKED = "locked"  # by another officer, whose claim has not expired
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class ClaimResult:
    result: Claim
    claimed_by: str | None = None
    claim_expires: int | None = None


@dataclass(frozen=True)
class QueueRow:
    event_id: str
    device_id: str
    site: str
    subject_ref: str
    category: str
    score: float
    threshold: float
    observed_at: str
    received_at: str
    claimed_by: str | None  # None when the claim has expired
    outcome: str | None = None
    officer: str | None = None
    decided_at: str | None = None


@dataclass(frozen=True)
class AlertDetail:
    embedder_sha256: str
    watchlist_version: int
    track_id: int
    note: str
    claimed_by: str | None
    claim_expires: int | None


_COLUMNS = (
    "a.event_id, a.device_id, a.site, a.subject_ref, a.category, a.score, a.threshold, "
    "a.observed_at, a.received_at, a.claimed_by, a.claim_expires"
)
_LATEST = (
    "LEFT JOIN adjudications d ON d.id = (SELECT MAX(id) FROM adjudications x "
    "WHERE x.event_id = a.event_id)"
)


def _row(r: Sequence[Any], now: int, decided: bool = False) -> QueueRow:
    holder = r[9] if r[9] is not None and r[10] is not None and int(r[10]) > now else None
    return QueueRow(
        event_id=str(r[0]),
        device_id=str(r[1]),
        site=str(r[2]),
        subject_ref=str(r[3]),
        category=str(r[4]),
        score=float(r[5]),
        threshold=float(r[6]),
        observed_at=str(r[7]),
        received_at=str(r[8]),
        claimed_by=holder,
        outcome=r[11] if decided else None,
        officer=r[12] if decided else None,
        decided_at=r[13] if decided else None,
    )


class ReviewStore:
    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def pending(self, now: int, limit: int = QUEUE_LIMIT) -> tuple[list[QueueRow], int]:
        """Alerts awaiting a decision, newest first (at most ``limit``), and how many there are."""
        rows = self.store.rows(
            # received_at has whole seconds: within one, the device's time orders them
            f"SELECT {_COLUMNS} FROM alerts a WHERE a.decided = 0 "  # noqa: S608 (constant SQL fragments; values are parameters)
            "ORDER BY a.received_at DESC, a.observed_at DESC, a.event_id LIMIT ?",
            (limit,),
        )
        count = self.store.rows("SELECT COUNT(*) FROM alerts WHERE decided = 0")[0][0]
        return [_row(r, now) for r in rows], int(count)

    def recently_decided(self, now: int, limit: int = 20) -> list[QueueRow]:
        """The newest decided alerts (by arrival: the queue's index, cheap at any size)."""
        rows = self.store.rows(
            # the newest ``limit`` first, then their decisions: the join never sees the rest
            f"SELECT {_COLUMNS}, d.outcome, d.officer, d.decided_at FROM (SELECT * FROM alerts "  # noqa: S608 (constant SQL fragments; values are parameters)
            "WHERE decided = 1 ORDER BY received_at DESC, event_id LIMIT ?) a "
            f"{_LATEST} ORDER BY a.received_at DESC, a.event_id",
            (limit,),
        )
        return [_row(r, now, decided=True) for r in rows]

    def outcome_counts(self, since: str) -> dict[str, int]:
        """Decisions made since ``since`` (RFC 3339, whole seconds), by outcome (the console
        decides each alert once; a review recorded later by other tools counts as one more)."""
        rows = self.store.rows(
            "SELECT outcome, COUNT(*) FROM adjudications WHERE decided_at >= ? GROUP BY outcome",
            (since,),
        )
        counts = dict.fromkeys(OUTCOMES, 0)
        counts.update({str(r[0]): int(r[1]) for r in rows})
        return counts

    def same_subject(
        self, deployment_id: str, subject_ref: str, event_id: str, now: int, limit: int = 20
    ) -> list[QueueRow]:
        """The other alerts for this subject in this deployment, newest first."""
        rows = self.store.rows(
            f"SELECT {_COLUMNS}, d.outcome, d.officer, d.decided_at FROM (SELECT * FROM alerts "  # noqa: S608 (constant SQL fragments; values are parameters)
            "WHERE deployment_id = ? AND subject_ref = ? AND event_id <> ? "
            f"ORDER BY received_at DESC, event_id LIMIT ?) a {_LATEST} "
            "ORDER BY a.received_at DESC, a.event_id",
            (deployment_id, subject_ref, event_id, limit),
        )
        return [_row(r, now, decided=True) for r in rows]

    def detail(self, event_id: str) -> AlertDetail | None:
        rows = self.store.rows(
            "SELECT a.embedder_sha256, a.watchlist_version, a.track_id, d.note, a.claimed_by, "  # noqa: S608 (constant SQL fragments; values are parameters)
            f"a.claim_expires FROM alerts a {_LATEST} WHERE a.event_id = ?",
            (event_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return AlertDetail(
            str(r[0]),
            int(r[1]),
            int(r[2]),
            str(r[3] or ""),
            r[4],
            None if r[5] is None else int(r[5]),
        )

    def next_pending(self, officer: str, now: int, skip: str = "") -> str | None:
        """The alert waiting longest that nobody else holds (``skip`` is the one just left)."""
        rows = self.store.rows(
            "SELECT event_id FROM alerts WHERE decided = 0 AND event_id <> ? AND "
            "(claimed_by IS NULL OR claimed_by = ? OR claim_expires <= ?) "
            "ORDER BY received_at, observed_at, event_id LIMIT 1",
            (skip, officer, now),
        )
        return str(rows[0][0]) if rows else None

    def _why_not(self, run: Any, event_id: str, now: int) -> ClaimResult:
        row = run(
            "SELECT decided, claimed_by, claim_expires FROM alerts WHERE event_id = ?",
            (event_id,),
        ).fetchone()
        if row is None:
            return ClaimResult(Claim.NOT_FOUND)
        if int(row[0]):
            return ClaimResult(Claim.DECIDED)
        return ClaimResult(Claim.LOCKED, row[1], None if row[2] is None else int(row[2]))

    _FREE = "decided = 0 AND (claimed_by IS NULL OR claimed_by = ? OR claim_expires <= ?)"

    def claim(
        self, event_id: str, officer: str, now: int, seconds: int = CLAIM_SECONDS
    ) -> ClaimResult:
        """Take (or renew) the lock on an undecided alert for ``seconds``."""
        with self.store.transaction() as run:
            cursor = run(
                f"UPDATE alerts SET claimed_by = ?, claim_expires = ? WHERE event_id = ? AND "  # noqa: S608 (constant SQL fragments; values are parameters)
                f"{self._FREE}",
                (officer, now + seconds, event_id, officer, now),
            )
            if cursor.rowcount == 1:
                return ClaimResult(Claim.OK, officer, now + seconds)
            return self._why_not(run, event_id, now)

    def release(self, event_id: str, officer: str) -> None:
        """Give an alert back to the queue (only the holder's own claim)."""
        self.store.execute(
            "UPDATE alerts SET claimed_by = NULL, claim_expires = NULL "
            "WHERE event_id = ? AND claimed_by = ? AND decided = 0",
            (event_id, officer),
        )

    def decide(
        self,
        event_id: str,
        outcome: str,
        officer: str,
        now: int,
        *,
        note: str = "",
        when: datetime | None = None,
    ) -> ClaimResult:
        """Record the decision once: refused if decided already or held by another officer."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        if len(note) > MAX_NOTE:
            raise ValueError(f"the note is longer than {MAX_NOTE} characters")
        stamp = format_time((when or datetime.now(UTC)).replace(microsecond=0))
        with self.store.transaction() as run:
            cursor = run(
                "UPDATE alerts SET decided = 1, claimed_by = NULL, claim_expires = NULL "  # noqa: S608 (constant SQL fragments; values are parameters)
                f"WHERE event_id = ? AND {self._FREE}",
                (event_id, officer, now),
            )
            if cursor.rowcount != 1:
                return self._why_not(run, event_id, now)
            run(
                "INSERT INTO adjudications (event_id, outcome, officer, decided_at, note) "
                "VALUES (?, ?, ?, ?, ?)",
                (event_id, outcome, officer, stamp, note),
            )
        return ClaimResult(Claim.OK, officer)
