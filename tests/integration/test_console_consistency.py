"""Several listeners and several console instances against one PostgreSQL database (issue 19,
scale): whatever each process holds, the database is the one truth.

Two listeners that both receive every event (a shared group's worst case: each redelivered to
the other) store each alert once; two officers' pages on one database share the officers'
sessions, the decisions and the counts, and a logout on one ends the session on the other.
Against the PostgreSQL this machine runs (skipped when there is none).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from central import queries
from central.console.context import Console
from central.console.server import serve
from central.listener import Listener
from central.passwords import hash_password
from central.sessions import Sessions
from central.store import AlertStore
from lfrkit.mqtt import MqttLink, MqttSettings
from protocol.event import sign_event
from protocol.keys import load_signing_private
from provisioning.quickstart import quickstart
from tests.conftest import Fleet
from tests.postgres import postgres_url  # noqa: F401 - fixture
from tests.unit.test_event import make_event
from tools.bench.console_ui import OfficerClient

pytestmark = pytest.mark.integration


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> str:
    """A new database on the local PostgreSQL (tests.postgres), dropped afterwards."""
    return str(request.getfixturevalue("postgres_url"))


OFFICERS = {"PC 1 Ahmed": "first officer password", "PC 2 Byrne": "second officer password"}


def test_two_listeners_receiving_every_event_store_each_once(
    tmp_path: Path, fleet: Fleet, pg: str
) -> None:
    index = quickstart(tmp_path / "fleet", devices=1, now=datetime.now(UTC))
    keys = tmp_path / "fleet" / "devices" / "cam-01" / "state" / "keys"
    signing = load_signing_private((keys / "signing.key").read_bytes())
    events = [make_event(fleet, site="demo") for _ in range(60)]
    tokens = [sign_event(e, signing) for e in events]
    link = MqttLink(MqttSettings("127.0.0.1", 1, Path(index["ca_cert"]), None, None))
    listeners = [Listener(AlertStore(pg), Path(index["registry"]), link) for _ in range(2)]
    start = threading.Barrier(2)

    def consume(listener: Listener) -> None:
        start.wait()
        for token in tokens:
            listener.handle("lfr/v1/demo/cam-01/events", token)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(consume, listeners))
    stored = [s.stats.stored for s in listeners]
    assert sum(stored) == 60 and sum(s.stats.duplicates for s in listeners) == 60
    rows = listeners[0].store.rows("SELECT event_id FROM alerts")
    assert len(rows) == len({r[0] for r in rows}) == 60
    for listener in listeners:
        assert not listener.stats.rejected
        listener.store.close()


@pytest.fixture
def two_pages(fleet: Fleet, pg: str) -> Iterator[tuple[list[str], list[OfficerClient]]]:
    """Two officers' pages (plain HTTP on 127.0.0.1) on one database with 8 alerts."""
    setup = AlertStore(pg)
    ids = []
    for _ in range(8):
        event = make_event(fleet)
        setup.add(event, sign_event(event, fleet.device_signing))
        ids.append(event.event_id)
    for name, password in OFFICERS.items():
        assert setup.add_officer(name, hash_password(password))
    setup.close()
    servers, stores = [], []
    for _ in range(2):
        store = AlertStore(pg)
        app = Console(
            store, fleet.adjudication, Sessions(store), allowed_hosts=["127.0.0.1"], secure=False
        )
        server = serve(app, "127.0.0.1", 0, None)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        stores.append(store)
    clients = [OfficerClient("127.0.0.1", int(s.server_address[1]), None) for s in servers]
    yield ids, clients
    for client in clients:
        client.close()
    for server, store in zip(servers, stores, strict=True):
        server.shutdown()
        server.server_close()
        store.close()


def test_two_console_instances_share_sessions_decisions_and_counts(
    two_pages: tuple[list[str], list[OfficerClient]], pg: str
) -> None:
    ids, (a, b) = two_pages
    a.login("PC 1 Ahmed", OFFICERS["PC 1 Ahmed"])
    # The same browser, sent to the other instance (a load balancer): the session is there.
    on_b = OfficerClient("127.0.0.1", b.port, None, cookies=dict(a.cookies))
    assert set(on_b.queue().pending) == set(ids) and on_b.queue().waiting == 8
    csrf = on_b.open(ids[0])
    assert on_b.decide(ids[0], "confirmed", csrf) == 303
    # Decided on B, seen on A at once: no process holds a copy.
    seen_on_a = a.queue()
    assert ids[0] not in seen_on_a.pending and seen_on_a.waiting == 7

    # Two officers deciding different alerts at once, each on their own instance.
    b.login("PC 2 Byrne", OFFICERS["PC 2 Byrne"])

    def decide(pair: tuple[OfficerClient, list[str]]) -> list[int]:
        client, mine = pair
        return [client.decide(e, "false_alert", client.open(e)) for e in mine]

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(decide, [(a, ids[1:4]), (b, ids[4:7])]))
    assert answers == [[303] * 3, [303] * 3]
    store = AlertStore(pg)
    tally = queries.counts(store)
    assert (tally.total, tally.pending) == (8, 1)
    assert tally.decided == {"confirmed": 1, "false_alert": 6, "no_action": 0}
    assert a.queue().waiting == b.queue().waiting == 1
    officers = {x.officer for x in (store.get(e) for e in ids[1:7]) if x is not None}
    assert officers == set(OFFICERS)
    trail = [(e.officer, e.action) for e in store.audit_log() if e.action == "adjudicate"]
    assert len(trail) == 7
    store.close()

    # Logging out on A ends the session everywhere.
    status, _ = a.request("POST", "/logout", "logout", {"csrf": on_b.open(ids[7])})
    assert status == 303
    status, _ = on_b.request("GET", "/", "queue")
    assert status == 303  # back to the login page
