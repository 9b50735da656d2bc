"""Running the GraphQL schema in-process, counting the queries a request makes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from api.auth import Principal, Role
from api.context import Context
from api.runtime import open_store
from api.schema import schema
from api.settings import Settings
from domain.application import Accounts


class CountingPool:
    """The API's pool, counting the connections (one per query) a request takes."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.taken = 0

    def connection(self) -> Any:
        self.taken += 1
        return self.pool.connection()


@pytest.fixture
def counted_query(database_url: str) -> Callable[[str, dict[str, Any]], tuple[Any, int]]:
    """Execute a document as an admin; the result, and how many queries it took."""

    def execute(document: str, variables: dict[str, Any]) -> tuple[Any, int]:
        async def run() -> tuple[Any, int]:
            async with AsyncConnectionPool(
                database_url,
                kwargs={"row_factory": dict_row, "autocommit": True},
                min_size=1,
            ) as pool:
                counting = CountingPool(pool)
                runtime = SimpleNamespace(pool=counting, settings=Settings())
                context = Context(
                    runtime=runtime,  # type: ignore[arg-type]
                    principal=Principal("tester", Role.ADMIN),
                    correlation_id=uuid4(),
                )
                result = await schema.execute(
                    document, variable_values=variables, context_value=context
                )
                return result, counting.taken

        return asyncio.run(run())

    return execute


@pytest.fixture
def two_processes(empty_database_url: str) -> Iterator[tuple[Accounts, Accounts]]:
    """Two stores on one database, each with its own caches, as two processes."""
    here, _ = open_store(empty_database_url)
    there, _ = open_store(empty_database_url)
    try:
        yield here, there
    finally:
        here.close()
        there.close()
