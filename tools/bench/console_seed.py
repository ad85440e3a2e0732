"""Stored alerts in bulk for the console load test: a store that already holds a deployment's
history (PostgreSQL ``COPY``, a few seconds for 100,000), and the time it takes to migrate
such a store from schema version 4 to the latest.

Seeded rows are alerts as the store keeps them, but their ``token`` is random bytes, not a
signed event: the pages list and show stored columns, only the probe image opens the token, and
the load test opens probes of genuine alerts only. A token over ~2 KB would be moved out of the
row by PostgreSQL (TOAST), so a short one inline makes each row *larger* in the table the
queries scan: the figures err on the slow side.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from central import queries
from central.store import OUTCOMES, AlertStore
from protocol.encoding import format_time
from tools.postgres import create_database, drop_database

SEED_DEPLOYMENT = "seeded-history"


def seed_alerts(
    url: str,
    count: int,
    now: datetime,
    *,
    decided: float = 1.0,
    devices: int = 50,
    subjects: int = 200,
    days: float = 30.0,
    token_bytes: int = 64,
    seed: int = 19,
) -> list[str]:
    """``count`` alerts received over the ``days`` before ``now`` (older than any live one),
    ``decided`` of them adjudicated a minute after arrival; their event ids, oldest first.
    PostgreSQL only (``COPY``); the store must exist (any schema version from 1)."""
    import psycopg

    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    step = timedelta(days=days) / max(1, count)
    start = now - timedelta(days=days) - timedelta(minutes=10)
    ids: list[str] = []
    with psycopg.connect(url) as db, db.cursor() as cur:
        with cur.copy(
            "COPY alerts (event_id, device_id, site, deployment_id, watchlist_version, "
            "subject_ref, category, score, threshold, margin, observed_at, received_at, "
            "track_id, embedder_sha256, token) FROM STDIN"
        ) as copy:
            for number in range(count):
                event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                at = start + step * number
                score = round(rng.uniform(0.6, 0.9), 4)
                copy.write_row(
                    (
                        event_id,
                        f"cam-{number % devices + 1:02d}",
                        "seeded",
                        SEED_DEPLOYMENT,
                        1,
                        f"WL-{rng.randrange(subjects):04d}",
                        "wanted",
                        score,
                        0.6,
                        round(score - 0.6, 4),
                        format_time(at.replace(microsecond=0)),
                        format_time(at.replace(microsecond=0)),
                        number,
                        "0" * 64,
                        rng.randbytes(token_bytes),
                    )
                )
                ids.append(event_id)
        with cur.copy(
            "COPY adjudications (event_id, outcome, officer, decided_at) FROM STDIN"
        ) as copy:
            for number, event_id in enumerate(ids):
                if rng.random() < decided:
                    at = start + step * number + timedelta(minutes=1)
                    copy.write_row(
                        (
                            event_id,
                            rng.choice(OUTCOMES),
                            "PC seeded",
                            format_time(at.replace(microsecond=0)),
                        )
                    )
        # From schema 5 the queue reads alerts.decided, which the store sets with a decision:
        # COPY bypasses the store, so set it here (an old schema has no such column).
        cur.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'alerts' AND column_name = 'decided'"
        )
        if cur.fetchone() is not None:
            cur.execute(
                "UPDATE alerts SET decided = 1 "
                "WHERE event_id IN (SELECT event_id FROM adjudications)"
            )
        db.commit()
        # What autovacuum does to a table that grew over weeks: statistics for the planner.
        db.autocommit = True
        db.execute("ANALYZE alerts")
        db.execute("ANALYZE adjudications")
    return ids


def _timed(call: Callable[[], Any], runs: int) -> dict[str, float]:
    """Median and max of ``runs`` calls, milliseconds."""
    times = []
    for _ in range(runs):
        clock = time.perf_counter()
        call()
        times.append((time.perf_counter() - clock) * 1000)
    return {"median_ms": statistics.median(times), "max_ms": max(times), "runs": runs}


def _page_queries(store: AlertStore, now: datetime, runs: int) -> dict[str, dict[str, float]]:
    """What one page load asks the store, each timed (the alert list is today's index)."""
    return {
        "alert list (newest 200 with outcomes)": _timed(lambda: store.recent(200), runs),
        "counts (total, pending, per outcome)": _timed(lambda: queries.counts(store), runs),
        "pending queue (newest 100)": _timed(lambda: queries.pending(store, now, 100), runs),
        "one subject's alerts (20)": _timed(
            lambda: queries.for_subject(store, SEED_DEPLOYMENT, "WL-0007"), runs
        ),
        "per site and day (the pilot report's alerts)": _timed(
            lambda: queries.alert_days(store), runs
        ),
    }


def migration_figures(count: int, now: datetime, runs: int = 5) -> dict[str, Any]:
    """A new PostgreSQL database at schema version 4 holding ``count`` alerts (97 % decided):
    the pages' queries there, the migration to the latest version (timed), the same queries
    after it. The database is dropped afterwards."""
    url = create_database("lfr_migrate")
    try:
        store = AlertStore(url, migrate_to=4)
        clock = time.perf_counter()
        seed_alerts(url, count, now, decided=0.97)
        seeded_s = time.perf_counter() - clock
        before = _page_queries(store, now, 1)  # slow without the indexes: once is enough
        store.close()
        clock = time.perf_counter()
        migrated = AlertStore(url)
        migrate_s = time.perf_counter() - clock
        version = migrated.schema_version
        after = _page_queries(migrated, now, runs)
        migrated.close()
    finally:
        drop_database(url)
    return {
        "alerts": count,
        "seed_s": seeded_s,
        "from_version": 4,
        "to_version": version,
        "migrate_s": migrate_s,
        "queries_v4": before,
        "queries_latest": after,
    }
