"""The console's queries (central.queries) and schema version 7, on SQLite and on the machine's
PostgreSQL: answered in SQL, the latest decision counts, a store at version 4 migrates to 7
with its rows kept and the indexes in place."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from central import queries
from central.store import _MIGRATIONS, AlertStore
from protocol.event import sign_event
from tests.conftest import Fleet
from tests.postgres import postgres_url  # noqa: F401 - fixture
from tests.unit.test_event import make_event

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
INDEXES = {"adjudications_event", "alerts_subject", "alerts_device"}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/alerts.db"
    else:
        yield request.getfixturevalue("postgres_url")


def _fill(store: AlertStore, fleet: Fleet) -> list[str]:
    """Six alerts a minute apart: cam-01 WL-0001 x3, cam-01 WL-0002, cam-02 WL-0001 x2
    (the last in another deployment). Returns their ids, oldest first."""
    plan = [
        ("cam-01", "WL-0001", "kx-1"),
        ("cam-01", "WL-0002", "kx-1"),
        ("cam-02", "WL-0001", "kx-1"),
        ("cam-01", "WL-0001", "kx-1"),
        ("cam-01", "WL-0001", "kx-1"),
        ("cam-02", "WL-0001", "kx-2"),
    ]
    ids = []
    for minute, (device, subject, deployment) in enumerate(plan):
        event = make_event(fleet, device_id=device, subject_ref=subject, deployment_id=deployment)
        assert store.add(
            event, sign_event(event, fleet.device_signing), T0 + timedelta(minutes=minute)
        )
        ids.append(event.event_id)
    return ids


def test_counts_pending_and_per_subject_come_from_sql(store_url: str, fleet: Fleet) -> None:
    store = AlertStore(store_url)
    ids = _fill(store, fleet)
    store.adjudicate(ids[0], "no_action", "PC 1", T0)
    store.adjudicate(ids[0], "confirmed", "PC 2", T0)  # a second decision: the latest counts
    store.adjudicate(ids[4], "false_alert", "PC 1", T0)

    tally = queries.counts(store)
    assert (tally.total, tally.pending) == (6, 4)
    assert tally.decided == {"confirmed": 1, "false_alert": 1, "no_action": 0}

    now = T0 + timedelta(minutes=10)
    queue = queries.pending(store, now, limit=3)
    assert [q.event_id for q in queue] == [ids[5], ids[3], ids[2]]  # newest first, undecided
    assert [q.waiting_s for q in queue] == [300.0, 420.0, 480.0]
    assert queries.pending(store, now, limit=10**9)[-1].event_id == ids[1]  # limit capped, ok

    subject = queries.for_subject(store, "kx-1", "WL-0001")
    assert [a.event_id for a in subject] == [ids[4], ids[3], ids[2], ids[0]]
    assert (subject[0].outcome, subject[-1].outcome) == ("false_alert", "confirmed")
    assert [a.event_id for a in queries.for_device(store, "cam-02", limit=1)] == [ids[5]]
    assert queries.per_device_since(store, T0 + timedelta(minutes=2)) == {"cam-01": 2, "cam-02": 2}
    store.close()


def test_days_are_tallied_by_the_database(store_url: str, fleet: Fleet) -> None:
    store = AlertStore(store_url)
    ids = _fill(store, fleet)  # received T0 + 0..5 minutes
    store.adjudicate(ids[0], "no_action", "PC 1", T0 + timedelta(seconds=90))
    store.adjudicate(ids[0], "confirmed", "PC 2", T0 + timedelta(minutes=5))  # latest counts
    store.adjudicate(ids[4], "false_alert", "PC 1", T0 + timedelta(minutes=10))
    late = make_event(fleet, site="pd")
    store.add(late, sign_event(late, fleet.device_signing), T0 + timedelta(days=1))
    # Time to adjudication runs to the *first* decision: 90 s and 6 minutes.
    assert queries.alert_days(store) == [
        queries.AlertDay("kx", "2026-11-30", 6, 2, 1, 1, 0, 450.0),
        queries.AlertDay("pd", "2026-12-01", 1, 0, 0, 0, 0, 0.0),
    ]
    store.close()


def test_a_version_4_store_migrates_to_7_keeping_rows_with_the_indexes(
    store_url: str, fleet: Fleet
) -> None:
    old = AlertStore(store_url, migrate_to=4)
    assert old.schema_version == 4
    ids = _fill(old, fleet)
    old.adjudicate(ids[1], "confirmed", "PC 1", T0)
    old.close()

    new = AlertStore(store_url)
    assert new.schema_version == len(_MIGRATIONS[new.dialect]) == 7
    if new.dialect == "sqlite":
        names = new.rows("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        names = new.rows("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    assert {str(r[0]) for r in names} >= INDEXES
    assert new.count() == 6 and queries.counts(new).pending == 5
    kept = new.get(ids[1])
    assert kept is not None and kept.outcome == "confirmed"
    new.close()
    again = AlertStore(store_url)  # nothing left to do: opening twice changes nothing
    assert again.schema_version == 7
    again.close()


def test_the_pages_queries_use_the_version_7_indexes(tmp_path: object) -> None:
    # The plan, not a timing: the latest decision of each listed alert is an index lookup.
    store = AlertStore(f"sqlite:///{tmp_path}/alerts.db")
    plan = " ".join(
        str(r[-1]) for r in store.rows(f"EXPLAIN QUERY PLAN {AlertStore._SELECT} LIMIT 200")
    )
    assert "adjudications_event" in plan, plan
    subject = " ".join(
        str(r[-1])
        for r in store.rows(
            f"EXPLAIN QUERY PLAN {AlertStore._SELECT} WHERE a.deployment_id = ? AND "
            "a.subject_ref = ? ORDER BY a.received_at DESC LIMIT 20",
            ("kx-1", "WL-0001"),
        )
    )
    assert "alerts_subject" in subject, subject
    store.close()
