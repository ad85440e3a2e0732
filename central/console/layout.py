"""The console's page frame: one stylesheet and per-page scripts from /static/, the officer's
header with the log-out button, and error pages."""

from __future__ import annotations

import html
from collections.abc import Iterable
from http import HTTPStatus

from central.console.context import Response
from central.sessions import Session


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def header(session: Session) -> str:
    return (
        '<header class="bar"><nav aria-label="Console"><a href="/">Alert queue</a>'
        '<a href="/fleet">Fleet</a><a href="/deployment">Deployment</a></nav>'
        f'<span class="who">Logged in as <b>{e(session.officer)}</b></span>'
        '<form method="post" action="/logout">'
        f'<input type="hidden" name="csrf" value="{e(session.csrf)}">'
        '<button class="quiet">Log out</button></form></header>'
    )


def page(
    title: str,
    body: str,
    session: Session | None = None,
    scripts: Iterable[str] = (),
    head: str = "",
) -> bytes:
    tags = "".join(f'<script src="/static/{e(s)}" defer></script>' for s in scripts)
    top = header(session) if session is not None else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(title)}</title><link rel="stylesheet" href="/static/console.css">'
        '<link rel="icon" href="/static/favicon.svg">'
        f'{tags}{head}</head><body>{top}<main id="main">{body}</main></body></html>'
    ).encode()


def refuse(status: int, message: str, session: Session | None = None) -> Response:
    phrase = HTTPStatus(status).phrase
    return Response(status, page(phrase, f"<h1>{e(phrase)}</h1><p>{e(message)}</p>", session))
