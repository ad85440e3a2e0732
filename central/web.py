"""``lfr-alerts serve``: the officers' page. Server-rendered HTML, no JavaScript, no CDN.

Lists alerts (newest first) with site, device, time, subject reference and score against
threshold; one alert's page shows the probe crop (decrypted in memory for that response only,
never written or cached) beside the control room's own reference image for the subject, and
three buttons: confirmed, false alert, no action, stored with the logged-in officer and time.

Every page and image needs a session (``central.sessions``: per-officer accounts, throttled
logins, expiring server-side sessions); every probe view, adjudication, login and logout is
appended to the store's audit trail. HTTPS with a certificate from the fleet authority (plain
HTTP only on 127.0.0.1 when asked for explicitly); the Host header must be one of the allowed
names (DNS rebinding); requests are parsed strictly (one ASCII-digit Content-Length of at most
4 KiB, ASCII url-encoded forms, each field once) and forms carry a CSRF token bound to the
session. Responses forbid caching and framing.
"""

from __future__ import annotations

import hmac
import html
import logging
import re
import secrets
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from central import queries
from central.ops_pages import PAGES, OpsPages
from central.sessions import LoginResult, Session, Sessions
from central.store import OUTCOMES, AlertStore, StoredAlert
from lfrkit.files import read_bounded
from protocol.errors import RejectedInput
from protocol.event import open_probe, parse_stored_event
from protocol.keys import HpkePrivateKey

log = logging.getLogger(__name__)
OPS_PAGES = [[page] for page in PAGES]
_EVENT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_LENGTH = re.compile(r"^[0-9]{1,9}$")
_LABELS = {"confirmed": "Confirm", "false_alert": "False alert", "no_action": "No action"}
MAX_BODY = 4096
MAX_REFERENCE = 16 * 1024 * 1024  # a reference photo; larger files in the folder are refused
MAX_CONNECTIONS = 64  # concurrent connections; more are closed at once (bounded threads)
# Over HTTPS the session cookie carries the __Host- prefix: browsers accept it only with
# Secure, Path=/ and no Domain, so a sibling host cannot plant one (session fixation).
SESSION_COOKIE, SECURE_SESSION_COOKIE, LOGIN_COOKIE = (
    "lfr_session",
    "__Host-lfr_session",
    "lfr_login",
)
_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#111}
table{border-collapse:collapse}td,th{padding:.35rem .7rem;border-bottom:1px solid #ccc;
text-align:left}.over{color:#a00;font-weight:600}.faces{display:flex;gap:2rem}
.faces figure{margin:0}.faces img{max-width:320px;max-height:320px;border:1px solid #999}
button{font-size:1rem;padding:.5rem 1rem;margin-right:.5rem}.pending{color:#a60}
.stats span{margin-right:1.5rem}header{display:flex;justify-content:space-between}
header form button{font-size:.9rem;padding:.2rem .6rem}.error{color:#a00}
label{display:block;margin:.5rem 0}"""
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline';"
    " form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class BadRequest(Exception):
    """The request itself is malformed (answered 400 or 413, connection closed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, refresh: bool = False) -> bytes:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{body}"
        "</body></html>"
    ).encode()


def host_name(header: str) -> str:
    """The name in a Host header without its port, lower-case (``[::1]:8443`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name, colon, port = header.rpartition(":")
    return name if colon and port.isdigit() else header


def same_token(given: str, expected: str) -> bool:
    """Constant-time comparison of any submitted value (non-ASCII too) with a token."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def parse_form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body: ASCII, at most 8 fields, each once."""
    try:
        text = body.decode("ascii")
        pairs = parse_qs(
            text,
            keep_blank_values=True,
            max_num_fields=8,
            encoding="utf-8",
            errors="surrogateescape",  # compared as bytes later, never a crash
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "the form is not ASCII url-encoded") from None
    if any(len(values) != 1 for values in pairs.values()):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "a form field was given more than once")
    return {name: values[0] for name, values in pairs.items()}


def content_length(values: list[str] | None) -> int:
    """Exactly one Content-Length of ASCII digits, at most :data:`MAX_BODY`."""
    if not values:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "Content-Length is required")
    if len(values) != 1 or not _LENGTH.match(values[0]):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "Content-Length must be one decimal number")
    length = int(values[0])
    if length > MAX_BODY:
        raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the form is too large")
    return length


class OfficerApp:
    def __init__(
        self,
        store: AlertStore,
        adjudication_key: HpkePrivateKey,
        sessions: Sessions,
        *,
        allowed_hosts: Iterable[str],
        references: Path | None = None,
        secure: bool = True,
        clock: Callable[[], float] = time.time,
        ops: OpsPages | None = None,  # /fleet and /deployment (issue 19)
    ) -> None:
        self.store, self.key, self.references, self.ops = store, adjudication_key, references, ops
        self.sessions, self.secure, self.clock = sessions, secure, clock
        self.allowed_hosts = frozenset(host_name(h) for h in allowed_hosts)
        self.session_cookie = SECURE_SESSION_COOKIE if secure else SESSION_COOKIE

    def cookie(self, name: str, value: str, path: str = "/", max_age: int | None = None) -> str:
        attributes = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
        if self.secure:
            attributes.append("Secure")
        if max_age is not None:
            attributes.append(f"Max-Age={max_age}")
        return "; ".join(attributes)

    def _outcome(self, alert: StoredAlert) -> str:
        if alert.outcome is None:
            return '<span class="pending">awaiting adjudication</span>'
        return f"{_e(_LABELS[alert.outcome])} by {_e(alert.officer)} at {_e(alert.decided_at)}"

    @staticmethod
    def _header(session: Session) -> str:
        return (
            f"<header><span>Logged in as <b>{_e(session.officer)}</b></span>"
            '<form method="post" action="/logout">'
            f'<input type="hidden" name="csrf" value="{_e(session.csrf)}">'
            "<button>Log out</button></form></header>"
        )

    def login_page(self, login_csrf: str, message: str = "") -> bytes:
        error = f'<p class="error" role="alert">{_e(message)}</p>' if message else ""
        return _page(
            "LFR alerts: log in",
            "<h1>Officers' page</h1>"
            f'{error}<form method="post" action="/login">'
            f'<input type="hidden" name="login_csrf" value="{_e(login_csrf)}">'
            '<label>Officer <input name="name" required maxlength="64" '
            'autocomplete="username" autofocus></label>'
            '<label>Password <input name="password" type="password" required '
            'maxlength="1024" autocomplete="current-password"></label>'
            "<p><button>Log in</button></p></form>",
        )

    def index(self, session: Session) -> bytes:
        alerts = self.store.recent(200)
        # Counted by the database over every stored alert, not over the 200 listed.
        tally = queries.counts(self.store)
        stats = (
            f'<p class="stats"><span>alerts: {tally.total}</span>'
            f"<span>awaiting: {tally.pending}</span>"
            + "".join(f"<span>{_e(_LABELS[o])}: {tally.decided[o]}</span>" for o in OUTCOMES)
            + "</p>"
        )
        rows = "".join(
            f'<tr><td><a href="/alerts/{_e(a.event_id)}">{_e(a.observed_at)}</a></td>'
            f"<td>{_e(a.site)}</td><td>{_e(a.device_id)}</td><td>{_e(a.subject_ref)}</td>"
            f'<td>{_e(a.category)}</td><td class="over">{a.score:.3f}</td>'
            f"<td>{a.threshold:.3f}</td><td>{self._outcome(a)}</td></tr>"
            for a in alerts
        )
        table = (
            (
                "<table><tr><th>Observed</th><th>Site</th><th>Device</th><th>Subject</th>"
                "<th>Category</th><th>Score</th><th>Threshold</th><th>Outcome</th></tr>"
                f"{rows}</table>"
            )
            if alerts
            else "<p>No alerts.</p>"
        )
        return _page(
            "LFR alerts", f"{self._header(session)}<h1>Alerts</h1>{stats}{table}", refresh=True
        )

    def _reference(self, subject_ref: str) -> str:
        if self.references is not None:
            for suffix in (".jpg", ".jpeg", ".png"):
                if (self.references / f"{subject_ref}{suffix}").is_file():
                    return (
                        f'<img alt="reference image of {_e(subject_ref)}" '
                        f'src="/references/{quote(subject_ref)}{suffix}">'
                    )
        return "<p>No reference image held for this subject.</p>"

    def detail(self, alert: StoredAlert, session: Session) -> bytes:
        buttons = "".join(
            f'<button name="outcome" value="{o}">{_e(_LABELS[o])}</button>' for o in OUTCOMES
        )
        body = (
            f'{self._header(session)}<p><a href="/">&larr; all alerts</a></p>'
            f"<h1>Alert {_e(alert.subject_ref)}</h1>"
            f"<p>{_e(alert.site)} / {_e(alert.device_id)}, observed {_e(alert.observed_at)}, "
            f"received {_e(alert.received_at)}. Score <b>{alert.score:.3f}</b> against "
            f"threshold {alert.threshold:.3f}; deployment {_e(alert.deployment_id)}.</p>"
            '<div class="faces"><figure><img alt="face seen by the camera" '
            f'src="/alerts/{_e(alert.event_id)}/probe.jpg"><figcaption>Seen by the camera'
            f"</figcaption></figure><figure>{self._reference(alert.subject_ref)}<figcaption>"
            f"Watchlist reference {_e(alert.subject_ref)}</figcaption></figure></div>"
            f"<p>Outcome: {self._outcome(alert)}</p>"
            f'<form method="post" action="/alerts/{_e(alert.event_id)}/adjudicate">'
            f'<input type="hidden" name="csrf" value="{_e(session.csrf)}">'
            f"<p>Decide as {_e(session.officer)}: {buttons}</p></form>"
        )
        return _page(f"Alert {alert.subject_ref}", body)

    def probe(self, alert: StoredAlert) -> bytes:
        return open_probe(parse_stored_event(alert.token), self.key)


def _cookies(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        found.setdefault(name, value)  # the first of a name wins (the most specific path)
    return found


def make_handler(app: OfficerApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "lfr-alerts"
        sys_version = ""
        timeout = 20  # seconds a connection may sit idle or half-sent (slow clients)
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: without TCP_NODELAY the body of a keep-alive
        # response waits for the client's delayed ACK (~40 ms a request, measured).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s " + format, self.client, *args)

        @property
        def client(self) -> str:
            return str(self.client_address[0])

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str = "text/html; charset=utf-8",
            extra: dict[str, str] | None = None,
            cookies: Iterable[str] = (),
        ) -> None:
            self.send_response(status)
            headers = {**_HEADERS, **(extra or {})}
            if app.secure:
                headers["Strict-Transport-Security"] = "max-age=31536000"
            for name, value in headers.items():
                self.send_header(name, value)
            for cookie in cookies:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status >= 400:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, status: int, message: str) -> None:
            self._send(status, _page(HTTPStatus(status).phrase, f"<p>{_e(message)}</p>"))

        def _redirect(self, location: str, cookies: Iterable[str] = ()) -> None:
            self._send(HTTPStatus.SEE_OTHER, b"", extra={"Location": location}, cookies=cookies)

        def _host_allowed(self) -> bool:
            hosts = self.headers.get_all("Host") or []
            if len(hosts) == 1 and host_name(hosts[0]) in app.allowed_hosts:
                return True
            log.warning("refused a request from %s for host %r", self.client, hosts[:2])
            self._refuse(HTTPStatus.BAD_REQUEST, "Unknown host name.")
            return False

        def _session(self) -> Session | None:
            token = _cookies(self.headers.get("Cookie", "")).get(app.session_cookie, "")
            if not _TOKEN.match(token):
                return None
            return app.sessions.lookup(token, app.clock())

        def _form(self) -> dict[str, str]:
            if self.headers.get("Transfer-Encoding") is not None:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "Transfer-Encoding is not accepted")
            length = content_length(self.headers.get_all("Content-Length"))
            body = self.rfile.read(length)
            if len(body) != length:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "the form was cut short")
            return parse_form(body)

        def _alert(self, event_id: str) -> StoredAlert | None:
            return app.store.get(event_id) if _EVENT.match(event_id) else None

        def _not_found(self) -> None:
            self._refuse(HTTPStatus.NOT_FOUND, "Not found.")

        def _login_page(self, status: int = 200, message: str = "") -> None:
            # Keep a nonce the browser already holds: a second tab (or a stray request) must
            # not invalidate the form already on screen.
            nonce = _cookies(self.headers.get("Cookie", "")).get(LOGIN_COOKIE, "")
            if not _TOKEN.match(nonce):
                nonce = secrets.token_urlsafe(32)
            self._send(
                status,
                app.login_page(nonce, message),
                cookies=[app.cookie(LOGIN_COOKIE, nonce, "/login", max_age=900)],
            )

        def do_GET(self) -> None:  # noqa: PLR0912 (one more route: the ops pages, issue 19)
            if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
                self.close_connection = True  # a body we do not read must not become a request
            if not self._host_allowed():
                return
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts == ["login"]:
                self._login_page()
                return
            session = self._session()
            if session is None:
                if not parts or (len(parts) == 2 and parts[0] == "alerts") or parts in OPS_PAGES:
                    self._redirect("/login")  # pages; images (and favicon.ico) get a 401
                else:
                    self._refuse(HTTPStatus.UNAUTHORIZED, "Log in first.")
                return
            if not parts:
                self._send(200, app.index(session))
            elif len(parts) == 2 and parts[0] == "alerts" and (a := self._alert(parts[1])):
                self._send(200, app.detail(a, session))
            elif len(parts) == 1 and app.ops and (ops := app.ops.get(parts[0], session.officer)):
                self._send(200, ops.body, ops.content_type, extra=ops.headers)
            elif (
                len(parts) == 3
                and parts[0] == "alerts"
                and parts[2] == "probe.jpg"
                and (a := self._alert(parts[1]))
            ):
                self._probe(a, session)
            elif (
                len(parts) == 2
                and parts[0] == "references"
                and app.references
                and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\.(jpg|jpeg|png)", parts[1])
                and (app.references / parts[1]).is_file()
            ):
                kind = "image/png" if parts[1].endswith(".png") else "image/jpeg"
                try:
                    image = read_bounded(app.references / parts[1], MAX_REFERENCE, "reference")
                except RejectedInput as exc:
                    log.error("%s", exc)
                    self._refuse(HTTPStatus.INTERNAL_SERVER_ERROR, "Reference image too large.")
                    return
                self._send(200, image, kind)
            else:
                self._not_found()

        def _probe(self, alert: StoredAlert, session: Session) -> None:
            try:
                jpeg = app.probe(alert)
            except RejectedInput as exc:
                log.error("probe of %s cannot be opened: %s", alert.event_id, exc.reason)
                app.store.audit(
                    session.officer,
                    "view_probe_failed",
                    self.client,
                    event_id=alert.event_id,
                    detail=exc.reason,
                )
                self._refuse(
                    HTTPStatus.UNPROCESSABLE_ENTITY,
                    "This probe cannot be opened with the adjudication key.",
                )
                return
            app.store.audit(session.officer, "view_probe", self.client, event_id=alert.event_id)
            self._send(200, jpeg, "image/jpeg")

        def do_POST(self) -> None:
            if not self._host_allowed():
                return
            try:
                form = self._form()
            except BadRequest as exc:
                log.warning("bad request from %s: %s", self.client, exc)
                self._refuse(exc.status, str(exc))
                return
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts == ["login"]:
                self._login(form)
                return
            session = self._session()
            if session is None:
                self._refuse(HTTPStatus.UNAUTHORIZED, "Your session has ended: log in again.")
                return
            if not same_token(form.get("csrf", ""), session.csrf):
                log.warning("refused a form without the session's CSRF token from %s", self.client)
                self._refuse(HTTPStatus.FORBIDDEN, "Stale form: reload the page.")
                return
            if parts == ["logout"]:
                app.sessions.logout(session, self.client)
                self._redirect("/login", [app.cookie(app.session_cookie, "", max_age=0)])
            elif len(parts) == 3 and parts[0] == "alerts" and parts[2] == "adjudicate":
                self._adjudicate(parts[1], form, session)
            else:
                self._not_found()

        def _adjudicate(self, event_id: str, form: dict[str, str], session: Session) -> None:
            if not self._alert(event_id):
                self._not_found()
                return
            outcome = form.get("outcome", "")
            if outcome not in OUTCOMES:
                self._refuse(HTTPStatus.BAD_REQUEST, f"The outcome must be one of {OUTCOMES}.")
                return
            app.store.adjudicate(event_id, outcome, session.officer)
            app.store.audit(
                session.officer, "adjudicate", self.client, event_id=event_id, detail=outcome
            )
            self._redirect(f"/alerts/{event_id}")

        def _login(self, form: dict[str, str]) -> None:
            nonce = _cookies(self.headers.get("Cookie", "")).get(LOGIN_COOKIE, "")
            if not nonce or not same_token(form.get("login_csrf", ""), nonce):
                self._refuse(HTTPStatus.FORBIDDEN, "Stale login form: reload the page.")
                return
            result, session = app.sessions.login(
                form.get("name", "").strip(), form.get("password", ""), self.client, app.clock()
            )
            if result is LoginResult.LOCKED:
                self._login_page(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    "Too many failed logins: this account or this workstation is locked for "
                    "a while. Ask the control-room supervisor if it persists.",
                )
            elif session is None:
                self._login_page(HTTPStatus.UNAUTHORIZED, "Wrong officer name or password.")
            else:
                self._redirect(
                    "/",
                    [
                        app.cookie(app.session_cookie, session.token),
                        app.cookie(LOGIN_COOKIE, "", "/login", max_age=0),
                    ],
                )

    return Handler


class OfficerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        if tls is not None:
            # The handshake runs in the connection's own thread on its first read (with the
            # handler's timeout), not in accept(): a slow client cannot stall the others.
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("too many connections: closing one from %s", client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ssl.SSLError, OSError)):
            # TLS handshakes that fail, clients that vanish or time out: one line, no trace.
            log.info("connection from %s ended: %s", client_address[0], error)
        else:
            log.exception("error while serving %s", client_address[0])


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def serve(app: OfficerApp, host: str, port: int, tls: ssl.SSLContext | None) -> ThreadingHTTPServer:
    if tls is None and host != "127.0.0.1":
        raise ValueError("plain HTTP is only served on 127.0.0.1")
    server = OfficerServer((host, port), make_handler(app), tls)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return server
