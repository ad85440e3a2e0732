"""The local PostgreSQL server the load generator's ``--db postgresql`` store and the tests'
``postgres_url`` make throw-away databases on (``LFR_TEST_POSTGRES`` names its admin URL)."""

from __future__ import annotations

import os

ADMIN_URL = os.environ.get("LFR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
