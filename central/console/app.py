"""The console's routes: one table, ``route(METHOD, "/path/{param}", view)``.

To add a page, write a view (``Request -> Response``, see ``context.py``) and add a line to
:data:`ROUTES`. ``{event}``, ``{ref}``, ``{asset}`` and ``{name}`` match only what
:data:`PARAMS` allows, so a view gets validated values. Routes need a logged-in officer unless
``login=False``; ``page=True`` sends a browser without a session to the login page (the rest
get 401). Every POST behind the login must carry the session's CSRF token (checked before the
view runs, in ``handler.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from central.console import alert_view, assets, login, ops_routes, queue
from central.console.context import Request, Response
from central.console.http import EVENT_ID, SUBJECT_REF

View = Callable[[Request], Response]
PARAMS: dict[str, re.Pattern[str]] = {
    "event": EVENT_ID,
    "ref": SUBJECT_REF,
    "asset": re.compile(r"^[a-z0-9_-]{1,40}\.(css|js|svg)$"),
    "name": re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
}


@dataclass(frozen=True)
class Route:
    method: str
    segments: tuple[str, ...]
    view: View
    login: bool
    page: bool


def route(method: str, path: str, view: View, *, login: bool = True, page: bool = False) -> Route:
    segments = tuple(p for p in path.split("/") if p)
    for segment in segments:
        if segment.startswith("{") and segment[1:-1] not in PARAMS:
            raise ValueError(f"{path}: unknown parameter {segment}")
    return Route(method, segments, view, login, page)


ROUTES: list[Route] = [
    route("GET", "/login", login.login_page, login=False),
    route("POST", "/login", login.login, login=False),
    route("POST", "/logout", login.logout),
    route("GET", "/static/{asset}", assets.static, login=False),
    route("GET", "/", queue.index, page=True),
    route("GET", "/api/queue", queue.api_queue),
    route("POST", "/next", queue.next_alert),
    route("GET", "/alerts/{event}", alert_view.alert_page, page=True),
    route("GET", "/alerts/{event}/probe.jpg", alert_view.probe),
    route("POST", "/alerts/{event}/adjudicate", alert_view.adjudicate),
    route("POST", "/alerts/{event}/claim", alert_view.claim),
    route("GET", "/references/{ref}", alert_view.reference),
    route("GET", "/fleet", ops_routes.fleet, page=True),
    route("GET", "/deployment", ops_routes.deployment, page=True),
    route("GET", "/deployment.md", ops_routes.deployment_md),
    route("GET", "/deployment.csv", ops_routes.deployment_csv),
    route("GET", "/ops.css", ops_routes.stylesheet, login=False),
]


def match(method: str, parts: list[str]) -> tuple[Route, dict[str, str]] | None:
    """The route for a request's path segments and its parameters, or None."""
    for candidate in ROUTES:
        if candidate.method != method or len(candidate.segments) != len(parts):
            continue
        params: dict[str, str] = {}
        for pattern, part in zip(candidate.segments, parts, strict=True):
            if pattern.startswith("{"):
                if not PARAMS[pattern[1:-1]].match(part):
                    break
                params[pattern[1:-1]] = part
            elif pattern != part:
                break
        else:
            return candidate, params
    return None
