"""DataLoaders kept beside the areas that use them, one set per request.

Each loader batches the keys of one request (every account of a page) into
one query. Keys carry the account's version: a subscription's context lives
on across changes, and a new version is a new key, so what it reads after a
change is never an answer loaded before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID
from weakref import WeakKeyDictionary

from strawberry.dataloader import DataLoader

from api.context import Context, Info
from api.runtime import Runtime
from api.schema.scalars import Connection, connection, decode_cursor, page_size
from projections import queries

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

Load = Callable[[Runtime, list[K]], Awaitable[list[Any]]]

_LOADERS: WeakKeyDictionary[Context, dict[str, DataLoader[Any, Any]]] = WeakKeyDictionary()


Row = dict[str, Any]
Fetch = Callable[[queries.Conn, int, tuple[Any, ...] | None], Awaitable[list[Row]]]


async def keyset_page(
    info: Info,
    *,
    first: int,
    after: str | None,
    cursor: tuple[Callable[[str], Any], ...],
    fetch: Fetch,
    node: Callable[[Row], T],
    key: Callable[[Row], tuple[Any, ...]],
) -> Connection[T]:
    """A page of a keyset-paginated list: ``fetch(conn, limit + 1, after)``
    gives the rows after the cursor's key (parsed part by part by ``cursor``);
    ``key`` is the cursor of a row."""
    limit = page_size(first, info.context.runtime.settings.max_page_size)
    start = None if after is None else decode_cursor(after, *cursor)
    async with info.context.runtime.pool.connection() as conn:
        rows = await fetch(conn, limit + 1, start)
    return connection(
        [node(row) for row in rows], [key(row) for row in rows], limit, after=after
    )


def request_loader(info: Info, name: str, load: Load[K]) -> DataLoader[K, Any]:
    """The request's loader called ``name``, made on first use.

    ``load`` gets the runtime, never the context: a loader that held its
    context would keep it alive in this weak map forever.
    """
    loaders = _LOADERS.setdefault(info.context, {})
    if name not in loaders:
        runtime = info.context.runtime

        async def batch(keys: list[K]) -> list[Any]:
            return await load(runtime, keys)

        loaders[name] = DataLoader(load_fn=batch)
    return loaders[name]


def _first_pages(table: str) -> Load[tuple[UUID, int, int]]:
    """First pages of many accounts' timelines: one query per page size asked."""

    async def load(
        runtime: Runtime, keys: list[tuple[UUID, int, int]]
    ) -> list[list[dict[str, Any]]]:
        pages: dict[tuple[UUID, int], list[dict[str, Any]]] = {}
        async with runtime.pool.connection() as conn:
            for limit in {limit for _, _, limit in keys}:
                ids = [account_id for account_id, _, size in keys if size == limit]
                found = await queries.first_of_timeline(conn, table, ids, limit)
                pages.update({(account_id, limit): found[account_id] for account_id in ids})
        return [pages[account_id, limit] for account_id, _, limit in keys]

    return load


async def timeline(
    info: Info,
    table: str,
    key_columns: tuple[str, str],
    node: Callable[[dict[str, Any]], T],
    *,
    account_id: UUID,
    version: int,
    first: int,
    after: str | None,
) -> Connection[T]:
    """A page of an account's rows in ``table``, newest first by ``key_columns``
    (a time and an id); the first page batched across a request's accounts."""
    limit = page_size(first, info.context.runtime.settings.max_page_size)
    if after is None:
        loader = request_loader(info, f"first_{table}", _first_pages(table))
        rows = await loader.load((account_id, version, limit + 1))
    else:
        key = decode_cursor(after, datetime.fromisoformat, UUID)
        async with info.context.runtime.pool.connection() as conn:
            rows = await queries.timeline_page(conn, table, account_id, limit + 1, key)
    moment, row_id = key_columns
    return connection(
        [node(row) for row in rows],
        [(row[moment].isoformat(), row[row_id]) for row in rows],
        limit,
        after=after,
    )
