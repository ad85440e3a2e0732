"""Log in and out (accounts, throttling and sessions: central.sessions)."""

from __future__ import annotations

import secrets
from http import HTTPStatus

from central.console.context import LOGIN_COOKIE, Request, Response, redirect
from central.console.http import TOKEN, same_token
from central.console.layout import e, page, refuse
from central.sessions import LoginResult


def _form(login_csrf: str, message: str = "") -> bytes:
    error = f'<p class="error" role="alert">{e(message)}</p>' if message else ""
    return page(
        "LFR alerts: log in",
        '<h1>Officers\' console</h1><section class="card narrow">'
        f'{error}<form method="post" action="/login">'
        f'<input type="hidden" name="login_csrf" value="{e(login_csrf)}">'
        '<label for="name">Officer</label><input id="name" name="name" required '
        'maxlength="64" autocomplete="username" autofocus>'
        '<label for="password">Password</label><input id="password" name="password" '
        'type="password" required maxlength="1024" autocomplete="current-password">'
        '<p><button class="primary">Log in</button></p></form></section>',
    )


def login_page(request: Request, status: int = HTTPStatus.OK, message: str = "") -> Response:
    # Keep a nonce the browser already holds: a second tab (or a stray request) must not
    # invalidate the form already on screen.
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not TOKEN.match(nonce):
        nonce = secrets.token_urlsafe(32)
    cookie = request.console.cookie(LOGIN_COOKIE, nonce, "/login", max_age=900)
    return Response(status, _form(nonce, message), cookies=[cookie])


def login(request: Request) -> Response:
    console, form = request.console, request.form
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not same_token(form.get("login_csrf", ""), nonce):
        return refuse(HTTPStatus.FORBIDDEN, "Stale login form: reload the page.")
    result, session = console.sessions.login(
        form.get("name", "").strip(), form.get("password", ""), request.client, console.clock()
    )
    if result is LoginResult.LOCKED:
        return login_page(
            request,
            HTTPStatus.TOO_MANY_REQUESTS,
            "Too many failed logins: this account or this workstation is locked for "
            "a while. Ask the control-room supervisor if it persists.",
        )
    if session is None:
        return login_page(request, HTTPStatus.UNAUTHORIZED, "Wrong officer name or password.")
    return redirect(
        "/",
        [
            console.cookie(console.session_cookie, session.token),
            console.cookie(LOGIN_COOKIE, "", "/login", max_age=0),
        ],
    )


def logout(request: Request) -> Response:
    assert request.session is not None
    request.console.sessions.logout(request.session, request.client)
    return redirect(
        "/login", [request.console.cookie(request.console.session_cookie, "", max_age=0)]
    )
