"""Every test run works in a database of its own, dropped at the end.

With DATABASE_URL set, that database is created on the server it names;
without it, on an embedded PostgreSQL started for the run in a temporary
directory (removed afterwards).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import psycopg
import pytest

from api.runtime import open_store
from domain.application import Accounts
from eventstore.database import scratch_database, start_embedded, stop_embedded
from projections.runner import Projections


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="rapport-test-") as temp:
        data_dir = Path(temp) / "pgdata"
        try:
            yield start_embedded(data_dir, keep=False)
        finally:
            stop_embedded(data_dir)


def _database(server_url: str) -> AbstractContextManager[str]:
    return scratch_database(server_url, "rapport_test")


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """The run's database, shared by its tests."""
    with _database(server_url) as url:
        yield url


@pytest.fixture
def new_database(server_url: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases for the test, all dropped after it."""
    with ExitStack() as databases:
        yield lambda: databases.enter_context(_database(server_url))


@pytest.fixture
def empty_database_url(new_database: Callable[[], str]) -> str:
    """A database of the test's own, for a process that must start from nothing."""
    return new_database()


@pytest.fixture(scope="session")
def store(database_url: str) -> Iterator[tuple[Accounts, Projections]]:
    app, projections = open_store(database_url)
    yield app, projections
    app.close()


@pytest.fixture
def app(store: tuple[Accounts, Projections]) -> Accounts:
    return store[0]


@pytest.fixture
def projections(store: tuple[Accounts, Projections]) -> Projections:
    return store[1]


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn
