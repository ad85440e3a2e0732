"""Officers' logins and sessions for the page: password check, throttle, expiring sessions.

A session is a random 256-bit token in the cookie; the store keeps only its SHA-256, the
officer, a CSRF token bound to it and two times. It ends at logout, when the officer is
disabled, after ``idle`` without a request, and ``absolute`` after login whatever happens.
``now`` is passed in (seconds since the epoch) so the expiry rules are tested without a clock.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from central.passwords import valid_name, verify_password
from central.store import AlertStore, SessionRow
from central.throttle import LoginThrottle

log = logging.getLogger(__name__)
# scrypt takes 32 MiB and ~0.1-0.5 s per check: at most this many at once, so a burst of
# logins (64 connections) queues instead of taking 2 GiB.
CONCURRENT_CHECKS = 4
SESSIONS_PER_OFFICER = 4  # a control-room PC, a spare, a tablet...; older ones end
_TOUCH_EVERY = 30  # seconds: last_seen is written at most this often per session


class LoginResult(Enum):
    OK = "ok"
    REFUSED = "refused"  # wrong name or password (never says which)
    LOCKED = "locked"  # too many failures for this name or from this address


@dataclass(frozen=True)
class Session:
    token: str  # only ever in the cookie; never logged
    officer: str
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class Sessions:
    def __init__(
        self,
        store: AlertStore,
        idle: timedelta = timedelta(minutes=15),
        absolute: timedelta = timedelta(hours=12),
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.store, self.throttle = store, throttle or LoginThrottle()
        self._checks = threading.BoundedSemaphore(CONCURRENT_CHECKS)
        self.idle, self.absolute = int(idle.total_seconds()), int(absolute.total_seconds())

    def login(
        self, name: str, password: str, client: str, now: float
    ) -> tuple[LoginResult, Session | None]:
        if not valid_name(name):
            name = "?"  # never an officer; the attempt still counts against the address
        stored = self.store.password_hash(name)
        # A name that is no active officer is recorded as "?": officers who type their
        # password into the name box must not find it in the audit or the log.
        shown = name if stored is not None else "?"
        if self.throttle.locked(name, client, now):
            # Not audited: refusals while locked cost no scrypt, so a row each would let
            # anyone grow the audit table at will; the failures that led here are in it.
            log.warning("login for %r from %s refused: locked out", shown, client)
            return LoginResult.LOCKED, None
        with self._checks:
            correct = verify_password(password, stored)
        if not correct:
            self.throttle.failed(name, client, now)
            self.store.audit(shown, "login_failed", client)
            log.warning("failed login for %r from %s", shown, client)
            return LoginResult.REFUSED, None
        self.throttle.succeeded(name)
        second = int(now)
        self.store.expire_sessions(second - self.absolute, second - self.idle)
        session = Session(secrets.token_urlsafe(32), name, secrets.token_urlsafe(32))
        self.store.add_session(
            _digest(session.token),
            SessionRow(name, session.csrf, client, second, second),
            SESSIONS_PER_OFFICER,
        )
        self.store.audit(name, "login", client)
        log.info("officer %r logged in from %s", name, client)
        return LoginResult.OK, session

    def lookup(self, token: str, now: float) -> Session | None:
        """The live session for a cookie's token, else None (expired ones are deleted)."""
        if not token or len(token) > 100:
            return None
        digest, second = _digest(token), int(now)
        row = self.store.session(digest)
        if row is None:
            return None
        if second - row.created >= self.absolute or second - row.last_seen >= self.idle:
            self.store.end_session(digest)
            return None
        if second - row.last_seen >= _TOUCH_EVERY:
            self.store.touch_session(digest, second)
        return Session(token, row.officer, row.csrf)

    def logout(self, session: Session, client: str) -> None:
        self.store.end_session(_digest(session.token))
        self.store.audit(session.officer, "logout", client)
