"""A throw-away PostgreSQL database on the local server (skips when none is reachable)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tools.postgres import ADMIN_URL


@pytest.fixture
def postgres_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at {ADMIN_URL} ({exc}); .ci/run starts one")
    name = f"lfr_test_{secrets.token_hex(4)}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()
