"""What a view gets (:class:`Request`, with the :class:`Console` it runs in) and returns
(:class:`Response`). Views are plain functions ``Request -> Response``: no HTTP machinery in
them, so they are tested by calling them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from central.console.http import host_name
from central.console.strength import Curve
from central.ops_pages import OpsPages
from central.review_store import ReviewStore
from central.sessions import Session, Sessions
from central.store import AlertStore
from protocol.keys import HpkePrivateKey

# Over HTTPS the session cookie carries the __Host- prefix: browsers accept it only with
# Secure, Path=/ and no Domain, so a sibling host cannot plant one (session fixation).
SESSION_COOKIE, SECURE_SESSION_COOKIE, LOGIN_COOKIE = (
    "lfr_session",
    "__Host-lfr_session",
    "lfr_login",
)
HTML = "text/html; charset=utf-8"
DEFAULT_HIGHLIGHT_AFTER = 60.0  # seconds an alert may wait before its row is highlighted


class Console:
    """The running console: its store, keys, sessions and the deployment's configuration."""

    def __init__(
        self,
        store: AlertStore,
        adjudication_key: HpkePrivateKey,
        sessions: Sessions,
        *,
        allowed_hosts: Iterable[str],
        references: Path | None = None,
        instructions: dict[str, str] | None = None,
        curves: dict[str, Curve] | None = None,
        highlight_after: float = DEFAULT_HIGHLIGHT_AFTER,
        secure: bool = True,
        clock: Callable[[], float] = time.time,
        ops: OpsPages | None = None,  # /fleet and /deployment (console/ops_routes.py)
    ) -> None:
        self.store, self.review, self.key = store, ReviewStore(store), adjudication_key
        self.sessions, self.secure, self.clock = sessions, secure, clock
        self.references = references
        self.instructions = instructions or {}
        self.curves = curves or {}
        self.highlight_after = highlight_after
        self.ops = ops
        self.allowed_hosts = frozenset(host_name(h) for h in allowed_hosts)
        self.session_cookie = SECURE_SESSION_COOKIE if secure else SESSION_COOKIE

    def now(self) -> int:
        return int(self.clock())

    def cookie(self, name: str, value: str, path: str = "/", max_age: int | None = None) -> str:
        attributes = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
        if self.secure:
            attributes.append("Secure")
        if max_age is not None:
            attributes.append(f"Max-Age={max_age}")
        return "; ".join(attributes)


@dataclass
class Request:
    console: Console
    method: str
    params: dict[str, str]  # from the route's {placeholders}, already validated
    query: dict[str, str]
    form: dict[str, str]
    cookies: dict[str, str]
    client: str
    session: Session | None = None

    @property
    def officer(self) -> str:
        assert self.session is not None, "a view behind the login"
        return self.session.officer


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = HTML
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)


def redirect(location: str, cookies: Iterable[str] = ()) -> Response:
    return Response(HTTPStatus.SEE_OTHER, b"", headers={"Location": location}, cookies=[*cookies])


def json_response(doc: Any, status: int = HTTPStatus.OK) -> Response:
    body = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    return Response(status, body, "application/json")
