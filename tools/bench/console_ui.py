"""An officer as an HTTP client of the console, for the console load test: logs in, reads the
queue, opens an alert (page and probe), decides it; every request timed.

The one place that knows the console's URLs and markup, so the load test can follow the
console as it changes. Two queue readers, chosen by ``queue=``:

- ``"api"`` (the default): the console's ``GET /api/queue``, JSON
  ``{"alerts": [{"event_id": ..., "waiting_s": ...}], "pending": N}``, newest first, pending
  only (what the queue page polls every second).
- ``"page"``: the queue page's HTML: pending rows ``<tr class="pending..." data-event="ID">``
  (decided ones without the class), the total in ``<span id="pending-count">N</span>``.

If the decision form moves, change ``DECIDE`` (and ``decide``'s fields).
Logging in (``/login`` with the ``login_csrf`` nonce) and the alert view's ``csrf`` field are
the officers' page's since issue 17.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import quote_plus

DEFAULT_QUEUE = "api"
QUEUE_PATH = {"page": "/", "api": "/api/queue"}
ALERT = "/alerts/{event_id}"
PROBE = "/alerts/{event_id}/probe.jpg"
DECIDE = "/alerts/{event_id}/adjudicate"
_ROW = re.compile(rb'<tr( class="[^"]*")? data-event="([0-9a-f-]{36})">')
_AWAITING = re.compile(rb'<span id="pending-count">(\d+)</span>')
_CSRF = re.compile(rb'name="csrf" value="([^"]+)"')
_LOGIN_CSRF = re.compile(rb'name="login_csrf" value="([^"]+)"')


class ConsoleError(Exception):
    """The console answered something this client does not expect (status, markup)."""


@dataclass(frozen=True)
class Queue:
    pending: list[str]  # undecided event ids shown, newest first
    shown: list[str]  # every event id shown (the page lists decided ones too)
    waiting: int | None  # the console's own count of undecided alerts


@dataclass(frozen=True)
class Timing:
    kind: str  # queue, alert, probe, decide, login
    at: float  # wall-clock time the request started
    seconds: float
    status: int


@dataclass
class OfficerClient:
    """One officer's browser, minus the browser: cookies, one keep-alive connection."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    queue_kind: str = DEFAULT_QUEUE
    timings: list[Timing] = field(default_factory=list)
    cookies: dict[str, str] = field(default_factory=dict)
    _conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.tls is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            else:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, context=self.tls, timeout=30
                )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self, method: str, path: str, kind: str, form: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """One request (a form is url-encoded); its status and body. Timed as ``kind``."""
        body = None
        headers = {"Host": f"{self.host}:{self.port}"}
        if form is not None:
            body = "&".join(f"{k}={quote_plus(v)}" for k, v in form.items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started, clock = time.time(), time.perf_counter()
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                # The server closed the keep-alive connection (after an error answer, or idle):
                # a browser opens a new one and asks again.
                self.close()
                if attempt == 2:
                    raise
        self.timings.append(Timing(kind, started, time.perf_counter() - clock, response.status))
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = rest.split(";")[0]
        if response.headers.get("Connection", "").lower() == "close":
            self.close()
        return response.status, data

    def login(self, name: str, password: str) -> None:
        status, page = self.request("GET", "/login", "login")
        nonce = _LOGIN_CSRF.search(page)
        if status != 200 or nonce is None:
            raise ConsoleError(f"/login answered {status} without a login form")
        form = {"login_csrf": nonce.group(1).decode(), "name": name, "password": password}
        status, _ = self.request("POST", "/login", "login", form)
        if status != 303 or not any("session" in k for k in self.cookies):
            raise ConsoleError(f"logging in as {name!r} failed ({status})")

    def queue(self) -> Queue:
        status, body = self.request("GET", QUEUE_PATH[self.queue_kind], "queue")
        if status != 200:
            raise ConsoleError(f"the queue answered {status}")
        if self.queue_kind == "api":
            doc = json.loads(body)
            ids = [str(a["event_id"]) for a in doc["alerts"]]
            return Queue(ids, ids, int(doc["pending"]))
        rows = [
            (m.group(2).decode(), b"pending" in (m.group(1) or b"")) for m in _ROW.finditer(body)
        ]
        waiting = _AWAITING.search(body)
        return Queue(
            [i for i, undecided in rows if undecided],
            [i for i, _ in rows],
            int(waiting.group(1)) if waiting else None,
        )

    def open(self, event_id: str) -> str:
        """The alert view; the decision form's CSRF token."""
        status, body = self.request("GET", ALERT.format(event_id=event_id), "alert")
        token = _CSRF.search(body)
        if status != 200 or token is None:
            raise ConsoleError(f"alert {event_id} answered {status} without a decision form")
        return token.group(1).decode()

    def probe(self, event_id: str) -> bytes:
        status, jpeg = self.request("GET", PROBE.format(event_id=event_id), "probe")
        if status != 200 or not jpeg.startswith(b"\xff\xd8"):
            raise ConsoleError(f"the probe of {event_id} answered {status}")
        return jpeg

    def decide(self, event_id: str, outcome: str, csrf: str) -> int:
        """Post the decision; the status (303 when recorded; anything else is a refusal, e.g.
        the alert is being decided by another officer)."""
        form = {"outcome": outcome, "csrf": csrf}
        status, _ = self.request("POST", DECIDE.format(event_id=event_id), "decide", form)
        return status
