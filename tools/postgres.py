"""Throw-away databases on the local PostgreSQL server (``LFR_TEST_POSTGRES`` names its admin
URL): the load generator's ``--db postgresql`` store, and the tests' ``postgres_url``."""

from __future__ import annotations

import os
import secrets

ADMIN_URL = os.environ.get("LFR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_database(prefix: str) -> str:
    """A new empty database named ``<prefix>_<8 hex digits>``; its URL."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    """Drop the database at ``url`` (one :func:`create_database` made), connections and all."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
