"""The console's queue and lock in the database (schema 5), on SQLite and on a real PostgreSQL.

Two ``AlertStore`` objects on one database stand for two console instances: the lock must hold
between them, not only inside one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from central import store as store_module
from central.review_store import CLAIM_SECONDS, Claim, ReviewStore
from central.store import AlertStore
from protocol.event import sign_event
from tests.conftest import NOW, Fleet
from tests.postgres import postgres_url  # noqa: F401 - fixture
from tests.unit.test_event import make_event

T0 = 1_800_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/alerts.db"
    else:
        yield request.getfixturevalue("postgres_url")


def _add(store: AlertStore, fleet: Fleet, seconds: int, **changes: object) -> str:
    event = make_event(fleet, str(changes.pop("device_id", "cam-01")), **changes)
    store.add(event, sign_event(event, fleet.device_signing), NOW + timedelta(seconds=seconds))
    return event.event_id


def test_two_consoles_never_hand_one_alert_to_two_officers(url: str, fleet: Fleet) -> None:
    one, two = AlertStore(url), AlertStore(url)
    a, b = ReviewStore(one), ReviewStore(two)
    event_id = _add(one, fleet, 0)
    assert a.claim(event_id, "PC 1", T0).result is Claim.OK
    refused = b.claim(event_id, "PC 2", T0 + 5)
    assert (refused.result, refused.claimed_by) == (Claim.LOCKED, "PC 1")
    assert refused.claim_expires == T0 + CLAIM_SECONDS
    assert b.decide(event_id, "confirmed", "PC 2", T0 + 6).result is Claim.LOCKED
    assert a.claim(event_id, "PC 1", T0 + 60).result is Claim.OK  # renewed by the holder
    assert b.claim(event_id, "PC 2", T0 + 60 + CLAIM_SECONDS - 1).result is Claim.LOCKED
    # the holder went away: after the claim expires another officer may take it
    assert b.claim(event_id, "PC 2", T0 + 60 + CLAIM_SECONDS).result is Claim.OK
    assert a.decide(event_id, "false_alert", "PC 1", T0 + 200).result is Claim.LOCKED
    decided = b.decide(event_id, "confirmed", "PC 2", T0 + 201, note="matches tattoo")
    assert decided.result is Claim.OK
    assert a.decide(event_id, "no_action", "PC 1", T0 + 400).result is Claim.DECIDED
    assert a.claim(event_id, "PC 1", T0 + 400).result is Claim.DECIDED
    alert = one.get(event_id)
    assert alert is not None and (alert.outcome, alert.officer) == ("confirmed", "PC 2")
    detail = a.detail(event_id)
    assert detail is not None and detail.note == "matches tattoo"
    assert a.claim("00000000-0000-4000-8000-000000000000", "PC 1", T0).result is Claim.NOT_FOUND
    one.close()
    two.close()


def test_concurrent_decisions_store_exactly_one(url: str, fleet: Fleet) -> None:
    stores = [AlertStore(url) for _ in range(4)]
    event_id = _add(stores[0], fleet, 0)

    def decide(i: int) -> Claim:
        return ReviewStore(stores[i]).decide(event_id, "confirmed", f"PC {i}", T0).result

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(decide, range(4)))
    assert sorted(r.value for r in results) == ["decided", "decided", "decided", "ok"]
    rows = stores[0].rows("SELECT COUNT(*) FROM adjudications WHERE event_id = ?", (event_id,))
    assert rows[0][0] == 1
    for store in stores:
        store.close()


def test_queue_newest_first_next_is_the_longest_waiting_free_one(url: str, fleet: Fleet) -> None:
    store = AlertStore(url)
    review = ReviewStore(store)
    old = _add(store, fleet, 0)
    middle = _add(store, fleet, 10, subject_ref="WL-0002")
    new = _add(store, fleet, 20)
    rows, pending = review.pending(T0)
    assert [r.event_id for r in rows] == [new, middle, old] and pending == 3
    assert review.next_pending("PC 1", T0) == old
    review.claim(old, "PC 2", T0)
    assert review.next_pending("PC 1", T0) == middle  # PC 2 holds the oldest
    assert review.next_pending("PC 1", T0, skip=middle) == new
    assert [r.claimed_by for r in review.pending(T0)[0]] == [None, None, "PC 2"]
    review.release(old, "PC 1")  # not theirs: nothing happens
    assert review.pending(T0)[0][2].claimed_by == "PC 2"
    review.release(old, "PC 2")
    assert review.next_pending("PC 1", T0) == old
    review.decide(old, "no_action", "PC 1", T0)
    rows, pending = review.pending(T0)
    assert [r.event_id for r in rows] == [new, middle] and pending == 2
    assert [r.event_id for r in review.recently_decided(T0)] == [old]
    assert review.outcome_counts("2000-01-01T00:00:00Z") == {
        "confirmed": 0,
        "false_alert": 0,
        "no_action": 1,
    }
    assert sum(review.outcome_counts("2999-01-01T00:00:00Z").values()) == 0
    same = review.same_subject("kx-2026-11-28", "WL-0001", new, T0)
    assert [(r.event_id, r.outcome) for r in same] == [(old, "no_action")]
    store.close()


def test_migration_5_marks_alerts_decided_before_it(url: str, fleet: Fleet) -> None:
    original = store_module._MIGRATIONS
    store_module._MIGRATIONS = {k: v[:4] for k, v in original.items()}
    try:
        old = AlertStore(url)
        decided = _add(old, fleet, 0)
        waiting = _add(old, fleet, 1)
        old.adjudicate(decided, "confirmed", "PC 1")
        assert old.schema_version == 4
        old.close()
    finally:
        store_module._MIGRATIONS = original
    new = AlertStore(url)
    assert new.schema_version >= 5
    rows, pending = ReviewStore(new).pending(T0)
    assert [r.event_id for r in rows] == [waiting] and pending == 1
    assert ReviewStore(new).claim(decided, "PC 2", T0).result is Claim.DECIDED
    new.close()


def test_a_note_too_long_or_a_bad_outcome_is_refused(tmp_path: Path, fleet: Fleet) -> None:
    store = AlertStore(f"sqlite:///{tmp_path}/a.db")
    event_id = _add(store, fleet, 0)
    review = ReviewStore(store)
    with pytest.raises(ValueError, match="outcome"):
        review.decide(event_id, "arrested", "PC 1", T0)
    with pytest.raises(ValueError, match="note"):
        review.decide(event_id, "confirmed", "PC 1", T0, note="x" * 501)
    assert review.pending(T0)[1] == 1
    store.close()
