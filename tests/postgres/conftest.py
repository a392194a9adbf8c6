"""A real PostgreSQL server for the shared-ledger tests, from the project's own files.

`pgserver` (requirements-dev.txt) ships the server binaries in its wheel, so a fresh
machine with python3 and make runs these tests; no apt-get, no mock. One server per
session (1-3 s to start), one fresh database per test. The outage tests start their
own server, since they kill it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pg_server import Postgres, temporary_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with temporary_server() as server:
        yield server


@pytest.fixture
def pg_url(postgres: Postgres) -> str:
    """A fresh database on the session's server."""
    return postgres.create_database()


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    """A server of this test's own, for tests that kill it."""
    with temporary_server() as server:
        yield server


def rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture
def query() -> Callable[..., list[tuple[Any, ...]]]:
    return rows
