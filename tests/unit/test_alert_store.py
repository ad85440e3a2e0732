"""The alert store on SQLite and on a real PostgreSQL: same schema, same behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from central.store import _MIGRATIONS, AlertStore, StoreError
from protocol.event import sign_event
from tests.conftest import Fleet
from tests.postgres import postgres_url  # noqa: F401 - fixture
from tests.unit.test_event import make_event


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/alerts.db"
    else:
        yield request.getfixturevalue("postgres_url")


def test_store_dedupes_adjudicates_and_counts(store_url: str, fleet: Fleet) -> None:
    store = AlertStore(store_url)
    event = make_event(fleet)
    token = sign_event(event, fleet.device_signing)
    assert store.add(event, token) is True
    assert store.add(event, token) is False  # redelivered: stored once
    assert store.count() == 1
    stored = store.get(event.event_id)
    assert stored is not None and stored.token == token and stored.outcome is None
    store.adjudicate(event.event_id, "false_alert", "PC 1234 Smith")
    store.adjudicate(event.event_id, "confirmed", "PS 77 Jones")  # a later review wins
    again = store.get(event.event_id)
    assert again is not None
    assert (again.outcome, again.officer) == ("confirmed", "PS 77 Jones")
    with pytest.raises(ValueError):
        store.adjudicate(event.event_id, "arrested", "x")
    with pytest.raises(ValueError):
        store.adjudicate(event.event_id, "confirmed", "   ")
    store.count_rejection("bad_signature")
    store.count_rejection("bad_signature")
    store.count_rejection("unknown_signer")
    assert store.rejections() == {"bad_signature": 2, "unknown_signer": 1}
    store.close()
    reopened = AlertStore(store_url)  # migrations run once
    assert reopened.schema_version == len(_MIGRATIONS["sqlite"]) and reopened.count() == 1
    reopened.close()


def test_concurrent_writers_store_each_alert_once(store_url: str, fleet: Fleet) -> None:
    events = [make_event(fleet) for _ in range(40)]
    tokens = [sign_event(e, fleet.device_signing) for e in events]
    stores = [AlertStore(store_url) for _ in range(3)]

    def write(store: AlertStore) -> int:
        return sum(store.add(e, t) for e, t in zip(events, tokens, strict=True))

    with ThreadPoolExecutor(3) as pool:
        inserted = list(pool.map(write, stores))
    assert sum(inserted) == 40
    assert stores[0].count() == 40
    for store in stores:
        store.close()


def test_bad_store_urls_are_refused() -> None:
    for url in ("mysql://x", "alerts.db", "sqlite://"):
        with pytest.raises(StoreError):
            AlertStore(url)


def test_listeners_starting_together_migrate_once(store_url: str) -> None:
    # Two listeners opening a brand-new database at the same moment (their first start).
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: AlertStore(store_url), range(4)))
    assert {s.schema_version for s in stores} == {len(_MIGRATIONS["sqlite"])}
    for store in stores:
        store.close()
