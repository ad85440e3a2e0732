"""HTTP/1.1 for the console: Host allow-list, strict parsing, session, CSRF, then the route's
view (``app.ROUTES``). Nothing here knows what a page shows."""

from __future__ import annotations

import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from central.console import app as routes
from central.console.context import Console, Request, Response, redirect
from central.console.http import (
    HEADERS,
    MAX_FIELDS,
    TOKEN,
    BadRequest,
    content_length,
    cookies,
    host_name,
    parse_form,
    path_parts,
    same_token,
)
from central.console.layout import refuse
from central.sessions import Session

log = logging.getLogger(__name__)


def _query(target: str) -> dict[str, str]:
    _, _, text = target.partition("?")
    try:
        pairs = parse_qs(text[:512], max_num_fields=MAX_FIELDS)
    except ValueError:
        return {}
    return {name: values[0] for name, values in pairs.items()}


def make_handler(console: Console) -> type[BaseHTTPRequestHandler]:
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

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            headers = {**HEADERS, **response.headers}
            if console.secure:
                headers["Strict-Transport-Security"] = "max-age=31536000"
            for name, value in headers.items():
                self.send_header(name, value)
            for cookie in response.cookies:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            if response.status >= 400:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(response.body)

        def _host_allowed(self) -> bool:
            hosts = self.headers.get_all("Host") or []
            if len(hosts) == 1 and host_name(hosts[0]) in console.allowed_hosts:
                return True
            log.warning("refused a request from %s for host %r", self.client, hosts[:2])
            self._send(refuse(HTTPStatus.BAD_REQUEST, "Unknown host name."))
            return False

        def _session(self, jar: dict[str, str]) -> Session | None:
            token = jar.get(console.session_cookie, "")
            if not TOKEN.match(token):
                return None
            return console.sessions.lookup(token, console.clock())

        def _form(self) -> dict[str, str]:
            if self.headers.get("Transfer-Encoding") is not None:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "Transfer-Encoding is not accepted")
            length = content_length(self.headers.get_all("Content-Length"))
            body = self.rfile.read(length)
            if len(body) != length:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "the form was cut short")
            return parse_form(body)

        def do_GET(self) -> None:
            if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
                self.close_connection = True  # a body we do not read must not become a request
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            if not self._host_allowed():
                return
            form: dict[str, str] = {}
            if method == "POST":
                try:
                    form = self._form()
                except BadRequest as exc:
                    log.warning("bad request from %s: %s", self.client, exc)
                    self._send(refuse(exc.status, str(exc)))
                    return
            self._send(self._respond(method, form))

        def _refuse_unauthorised(
            self, route: routes.Route, method: str, form: dict[str, str], session: Session | None
        ) -> Response | None:
            """Why a route behind the login cannot run (no session, no CSRF token), or None."""
            if not route.login:
                return None
            if session is None:
                if route.page:
                    return redirect("/login")
                if method == "POST":
                    return refuse(HTTPStatus.UNAUTHORIZED, "Your session has ended: log in again.")
                return refuse(HTTPStatus.UNAUTHORIZED, "Log in first.")
            if method == "POST" and not same_token(form.get("csrf", ""), session.csrf):
                log.warning("refused a form without the session's CSRF token from %s", self.client)
                return refuse(HTTPStatus.FORBIDDEN, "Stale form: reload the page.")
            return None

        def _respond(self, method: str, form: dict[str, str]) -> Response:
            jar = cookies(self.headers.get("Cookie", ""))
            found = routes.match(method, path_parts(self.path))
            session = self._session(jar)
            if found is None:
                if session is None:  # no hint of what exists before a login
                    return refuse(HTTPStatus.UNAUTHORIZED, "Log in first.")
                return refuse(HTTPStatus.NOT_FOUND, "Not found.", session)
            route, params = found
            refused = self._refuse_unauthorised(route, method, form, session)
            if refused is not None:
                return refused
            request = Request(
                console, method, params, _query(self.path), form, jar, self.client, session
            )
            return route.view(request)

    return Handler
