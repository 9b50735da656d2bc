"""Per-request context: the runtime, who is asking, and the request's DataLoaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID, uuid4

import strawberry
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from api.runtime import Runtime
from domain.application import CommandMeta
from projections import queries

K = TypeVar("K")
V = TypeVar("V")

ACTOR_HEADER = "x-actor"
CORRELATION_HEADER = "x-correlation-id"
ANONYMOUS = "anonymous"


def _uuid_or_new(text: str | None) -> UUID:
    try:
        return UUID(text) if text else uuid4()
    except ValueError:
        return uuid4()


class Context(BaseContext):
    def __init__(self, runtime: Runtime, actor: str, correlation_id: UUID) -> None:
        super().__init__()
        self.runtime = runtime
        self.actor = actor
        self.correlation_id = correlation_id
        self.accounts: DataLoader[UUID, dict[str, Any] | None] = self._loader(
            queries.accounts_by_id, None
        )
        self.first_interactions: DataLoader[tuple[UUID, int], list[dict[str, Any]]] = (
            DataLoader(load_fn=self._load_first_interactions)
        )
        self.periods = {
            table: self._periods_loader(table)
            for table in queries.PERIOD_TABLES | queries.DURATION_VIEWS
        }
        self.complaints: DataLoader[UUID, list[dict[str, Any]]] = self._loader(
            self._complaints_of, []
        )

    def forget_loaded(self) -> None:
        """Drop what the loaders hold: a subscription's context outlives reads."""
        self.accounts.clear_all()
        self.first_interactions.clear_all()
        for loader in self.periods.values():
            loader.clear_all()
        self.complaints.clear_all()

    def command_meta(self) -> CommandMeta:
        """Each mutation is a command of its own, caused by the request."""
        command_id = uuid4()
        return CommandMeta(
            actor=self.actor,
            command_id=command_id,
            correlation_id=self.correlation_id,
            causation_id=command_id,
        )

    async def _load_first_interactions(
        self, keys: list[tuple[UUID, int]]
    ) -> list[list[dict[str, Any]]]:
        """First pages of many accounts' timelines: one query per page size asked."""
        pages: dict[tuple[UUID, int], list[dict[str, Any]]] = {}
        async with self.runtime.pool.connection() as conn:
            for limit in {limit for _, limit in keys}:
                ids = [account_id for account_id, size in keys if size == limit]
                found = await queries.first_interactions(conn, ids, limit)
                pages.update({(account_id, limit): found[account_id] for account_id in ids})
        return [pages[key] for key in keys]

    async def _complaints_of(
        self, conn: queries.Conn, ids: Sequence[UUID]
    ) -> dict[UUID, list[dict[str, Any]]]:
        targets = self.runtime.settings.complaint_targets
        return await queries.complaints_by_account(conn, ids, targets)

    def _loader(
        self,
        fetch: Callable[[queries.Conn, Sequence[UUID]], Awaitable[dict[UUID, Any]]],
        missing: Any,
    ) -> DataLoader[UUID, Any]:
        async def load(keys: list[UUID]) -> list[Any]:
            async with self.runtime.pool.connection() as conn:
                found = await fetch(conn, keys)
            return [found.get(key, missing) for key in keys]

        return DataLoader(load_fn=load)

    def _periods_loader(self, table: str) -> DataLoader[UUID, list[dict[str, Any]]]:
        async def fetch(conn: queries.Conn, ids: Sequence[UUID]) -> dict[UUID, Any]:
            return await queries.periods_by_account(conn, table, ids)

        return self._loader(fetch, [])


Info = strawberry.Info[Context, None]


def context_getter(request: HTTPConnection) -> Context:
    """For HTTP requests and for the websockets of subscriptions alike."""
    runtime: Runtime = request.app.state.runtime
    actor = (request.headers.get(ACTOR_HEADER) or ANONYMOUS).strip()[:200] or ANONYMOUS
    return Context(
        runtime=runtime,
        actor=actor,
        correlation_id=_uuid_or_new(request.headers.get(CORRELATION_HEADER)),
    )
