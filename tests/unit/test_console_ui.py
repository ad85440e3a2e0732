"""The load test's officer client (tools/bench/console_ui.py) reads both queues: the console's
page (central/console/queue.py's row markup) and its ``/api/queue`` JSON, against a small real
HTTP server serving those documents."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools.bench.console_ui import OfficerClient

IDS = [f"0000000{n}-0000-4000-8000-000000000000" for n in range(3)]
API = {"alerts": [{"event_id": IDS[2], "waiting_s": 1.5}, {"event_id": IDS[0], "waiting_s": 9}]}
PAGE = (
    '<p><span id="pending-count">2</span> awaiting adjudication</p><table>'
    f'<tr class="pending" data-event="{IDS[2]}"><td>t</td></tr>'
    f'<tr data-event="{IDS[1]}"><td>Confirm by PC 1</td></tr>'
    f'<tr class="pending overdue" data-event="{IDS[0]}"><td>t</td></tr></table>'
)


class _Console(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections = 0  # one handler instance per connection

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/api/queue":
            body, kind = json.dumps({**API, "pending": 2}).encode(), "application/json"
        else:
            body, kind = PAGE.encode(), "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Console)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_the_page_and_the_api_give_the_same_queue(port: int) -> None:
    page = OfficerClient("127.0.0.1", port, None, queue_kind="page").queue()
    api = OfficerClient("127.0.0.1", port, None, queue_kind="api").queue()
    assert page.pending == api.pending == [IDS[2], IDS[0]]  # newest first, undecided only
    assert page.shown == [IDS[2], IDS[1], IDS[0]] and api.shown == api.pending
    assert page.waiting == api.waiting == 2


def test_each_request_is_timed_on_one_kept_alive_connection(port: int) -> None:
    client = OfficerClient("127.0.0.1", port, None, queue_kind="api")
    before = _Console.connections
    for _ in range(3):
        client.queue()
    assert _Console.connections - before == 1
    assert [t.kind for t in client.timings] == ["queue"] * 3
    assert all(t.status == 200 and 0 < t.seconds < 10 for t in client.timings)
    client.close()
