"""Officers' accounts, sessions, the login throttle and the audit trail (both store backends)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central import alerts_cli
from central.passwords import (
    WeakPassword,
    check_policy,
    hash_password,
    valid_name,
    verify_password,
)
from central.sessions import LoginResult, Sessions
from central.store import AlertStore
from central.throttle import LoginThrottle, ThrottlePolicy
from protocol.event import sign_event
from tests.conftest import Fleet
from tests.postgres import postgres_url  # noqa: F401 - fixture
from tests.unit.test_event import make_event

T0 = 1_800_000_000.0
PASSWORD = "correct horse battery"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/alerts.db"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = AlertStore(url)
    yield opened
    opened.close()


@settings(max_examples=8, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_a_password_verifies_only_itself(password: str) -> None:
    stored = hash_password(password)
    assert stored.startswith("scrypt$n=32768,r=8,p=1$")
    assert verify_password(password, stored)
    assert not verify_password(password + "x", stored)
    assert hash_password(password) != stored  # a fresh salt every time


def test_unknown_officers_and_oversized_passwords_never_verify() -> None:
    assert not verify_password(PASSWORD, None)
    stored = hash_password(PASSWORD)
    assert not verify_password(PASSWORD + "x" * 2000, stored)
    with pytest.raises(ValueError, match="scrypt"):
        verify_password(PASSWORD, "md5$abc")  # a damaged store is a bug, not a login


def test_password_policy_and_names() -> None:
    check_policy(PASSWORD, "PC 4521 Khan")
    for weak, name in (("short", "a"), ("PC 4521 Khan", "pc 4521 khan"), ("x" * 1025, "a")):
        with pytest.raises(WeakPassword):
            check_policy(weak, name)
    assert valid_name("PC 4521 Khan") and valid_name("ps.o'neil") and valid_name("A")
    for bad in ("", " lead", "=cmd", "a" * 65, "tab\there", "ümlaut", "trail "):
        assert not valid_name(bad), bad


def test_throttle_locks_an_account_then_forgives() -> None:
    throttle = LoginThrottle(ThrottlePolicy(account_limit=3, window=60, lockout=120))
    for i in range(3):
        assert not throttle.locked("pc1", "10.0.0.1", T0 + i)
        throttle.failed("pc1", f"10.0.0.{i}", T0 + i)
    assert throttle.locked("PC1", "10.9.9.9", T0 + 3)  # the name, from any address
    assert not throttle.locked("pc2", "10.9.9.9", T0 + 3)
    assert throttle.locked("pc1", "10.0.0.1", T0 + 2 + 119)
    assert not throttle.locked("pc1", "10.0.0.1", T0 + 2 + 120)
    # failures spread wider than the window do not add up to a lock-out
    for i in range(3):
        throttle.failed("pc3", "10.0.0.1", T0 + 1000 + 61 * i)
    assert not throttle.locked("pc3", "10.0.0.1", T0 + 1200)


def test_throttle_locks_an_address_across_names_and_stays_bounded() -> None:
    throttle = LoginThrottle(ThrottlePolicy(account_limit=5, address_limit=4, max_keys=50))
    for i in range(4):
        throttle.failed(f"guess{i}", "192.0.2.7", T0)
    assert throttle.locked("anyone", "192.0.2.7", T0 + 1)
    assert not throttle.locked("anyone", "192.0.2.8", T0 + 1)
    for i in range(1000):
        throttle.failed(f"name{i}", f"198.51.100.{i % 250}", T0 + 2)
    assert len(throttle) <= 50
    throttle.failed("pc9", "a", T0)
    throttle.succeeded("pc9")
    assert not throttle.locked("pc9", "b", T0)


def test_sessions_expire_idle_and_absolute_and_end_when_disabled(store: AlertStore) -> None:
    assert store.add_officer("PC 1", hash_password(PASSWORD))
    assert not store.add_officer("PC 1", hash_password(PASSWORD))  # taken
    sessions = Sessions(store, idle=timedelta(minutes=15), absolute=timedelta(hours=1))
    result, none = sessions.login("PC 1", "wrong password!", "10.0.0.1", T0)
    assert (result, none) == (LoginResult.REFUSED, None)
    result, session = sessions.login("PC 1", PASSWORD, "10.0.0.1", T0)
    assert result is LoginResult.OK and session is not None
    assert session.token not in repr(store.rows("SELECT * FROM sessions"))  # only its hash
    live = sessions.lookup(session.token, T0 + 14 * 60)
    assert live is not None and live.officer == "PC 1" and live.csrf == session.csrf
    assert sessions.lookup(session.token + "x", T0) is None
    # idle: kept alive by requests every 14 minutes, until the absolute limit
    for minute in (28, 42, 56):
        assert sessions.lookup(session.token, T0 + minute * 60) is not None
    assert sessions.lookup(session.token, T0 + 3600) is None
    # idle expiry
    _, second = sessions.login("PC 1", PASSWORD, "10.0.0.1", T0)
    assert second is not None
    assert sessions.lookup(second.token, T0 + 15 * 60) is None
    # disabling ends sessions at once, and the password no longer opens one
    _, third = sessions.login("PC 1", PASSWORD, "10.0.0.1", T0)
    assert third is not None
    assert store.disable_officer("PC 1")
    assert sessions.lookup(third.token, T0 + 1) is None
    assert sessions.login("PC 1", PASSWORD, "10.0.0.2", T0 + 2)[0] is LoginResult.REFUSED
    actions = [(e.officer, e.action, e.client) for e in store.audit_log()]
    assert actions[:2] == [("PC 1", "login_failed", "10.0.0.1"), ("PC 1", "login", "10.0.0.1")]
    # a disabled (or unknown) name is recorded as "?": it may be a password typed in the box
    assert actions[-1] == ("?", "login_failed", "10.0.0.2")


def test_logins_lock_out_even_the_right_password(store: AlertStore) -> None:
    store.add_officer("PC 2", hash_password(PASSWORD))
    sessions = Sessions(store)
    for i in range(5):
        assert sessions.login("PC 2", f"guess number {i}", "10.0.0.5", T0 + i)[0] is (
            LoginResult.REFUSED
        )
    assert sessions.login("PC 2", PASSWORD, "10.0.0.6", T0 + 6)[0] is LoginResult.LOCKED
    assert sessions.login("PC 2", PASSWORD, "10.0.0.6", T0 + 6 + 900)[0] is LoginResult.OK
    # names that could never be an officer (control characters, odd bytes) are refused
    assert sessions.login("\udcff\x00", PASSWORD, "10.0.0.6", T0)[0] is LoginResult.REFUSED
    assert store.audit_log()[-1].officer == "?"


def test_each_officer_keeps_a_bounded_number_of_sessions(store: AlertStore) -> None:
    store.add_officer("PC 3", hash_password(PASSWORD))
    sessions = Sessions(store)
    tokens = []
    for i in range(10):
        _, session = sessions.login("PC 3", PASSWORD, "10.0.0.1", T0 + i)
        assert session is not None
        tokens.append(session.token)
    assert store.rows("SELECT COUNT(*) FROM sessions")[0][0] == 4
    assert sessions.lookup(tokens[0], T0 + 11) is None
    assert sessions.lookup(tokens[-1], T0 + 11) is not None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_version_2_store_gains_the_officer_tables(
    backend: str,
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    from central import store as store_module

    url = (
        f"sqlite:///{tmp_path}/old.db"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    monkeypatch.setattr(
        store_module, "_MIGRATIONS", {k: v[:2] for k, v in store_module._MIGRATIONS.items()}
    )
    old = AlertStore(url)
    event = make_event(fleet)
    old.add(event, sign_event(event, fleet.device_signing))
    old.adjudicate(event.event_id, "confirmed", "typed by anyone")
    assert old.schema_version == 2
    old.close()
    monkeypatch.undo()
    new = AlertStore(url)
    # Every later migration runs too (the officers' tables came with the third).
    latest = len(store_module._MIGRATIONS["sqlite"])
    assert latest >= 3 and new.schema_version == latest and new.count() == 1
    assert new.add_officer("PC 4", hash_password(PASSWORD))
    assert [o.name for o in new.officers()] == ["PC 4"]
    kept = new.get(event.event_id)
    assert kept is not None and kept.officer == "typed by anyone"  # history is kept as it was
    new.close()


def _cli(*argv: str, stdin: str = "") -> int:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return alerts_cli.main(list(argv))
    finally:
        sys.stdin = old


def test_officers_cli_add_list_disable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path}/alerts.db"
    assert (
        _cli(
            "officers", "add", "--db", db, "PC 4521 Khan", "--password-stdin", stdin=PASSWORD + "\n"
        )
        == 0
    )
    assert (
        _cli(
            "officers", "add", "--db", db, "PC 4521 Khan", "--password-stdin", stdin=PASSWORD + "\n"
        )
        == 2
    )
    assert "exists" in capsys.readouterr().err
    assert _cli("officers", "add", "--db", db, "PC 7", "--password-stdin", stdin="short\n") == 2
    assert "at least 12" in capsys.readouterr().err
    assert (
        _cli("officers", "add", "--db", db, "=cmd|calc", "--password-stdin", stdin=PASSWORD + "\n")
        == 2
    )
    assert _cli("officers", "add", "--db", db, "PC 8", stdin=PASSWORD + "\n") == 2
    assert "--password-stdin" in capsys.readouterr().err  # no terminal: never a silent read
    assert _cli("officers", "list", "--db", db) == 0
    assert "PC 4521 Khan\tactive" in capsys.readouterr().out
    assert _cli("officers", "disable", "--db", db, "PC 4521 Khan") == 0
    assert _cli("officers", "disable", "--db", db, "PC 9") == 2
    assert _cli("officers", "list", "--db", db) == 0
    assert "PC 4521 Khan\tdisabled" in capsys.readouterr().out
    assert (
        _cli(
            "officers",
            "add",
            "--db",
            db,
            "PC 4521 Khan",
            "--reset",
            "--password-stdin",
            stdin="another long password\n",
        )
        == 0
    )
    capsys.readouterr()
    assert _cli("audit", "--db", db, "--json") == 0
    assert [e["action"] for e in json.loads(capsys.readouterr().out)] == [
        "officer_added",
        "officer_disabled",
        "officer_password_reset",
    ]
    assert _cli("audit", "--db", db, "--limit", "1") == 0
    assert "PC 4521 Khan  officer_password_reset  -  cli" in capsys.readouterr().out
    store = AlertStore(db)
    assert verify_password("another long password", store.password_hash("PC 4521 Khan"))
    assert [e.action for e in store.audit_log()] == [
        "officer_added",
        "officer_disabled",
        "officer_password_reset",
    ]
    store.close()
