"""Per-request context: the runtime, who is asking, and the request's DataLoaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import Any, TypeVar
from uuid import UUID, uuid4

import strawberry
from fastapi import HTTPException
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from api.auth import Principal, Unauthenticated
from api.runtime import Runtime
from domain.account import Account
from domain.application import CommandMeta
from domain.errors import AccountNotFound
from projections import queries

K = TypeVar("K")
V = TypeVar("V")

CORRELATION_HEADER = "x-correlation-id"
API_KEY_HEADER = "x-api-key"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rapport"'}


def _uuid_or_new(text: str | None) -> UUID:
    try:
        return UUID(text) if text else uuid4()
    except ValueError:
        return uuid4()


class Context(BaseContext):
    def __init__(
        self, runtime: Runtime, principal: Principal | None, correlation_id: UUID
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.principal = principal
        """None only on a websocket until its connection_init carried credentials."""
        self.correlation_id = correlation_id

    # The request's loaders are made when a resolver first asks for them: a
    # request answered from what was kept (api.answers) asks for none.
    @cached_property
    def accounts(self) -> DataLoader[UUID, dict[str, Any] | None]:
        return self._loader(self.reachable_accounts, None)

    @cached_property
    def first_interactions(self) -> DataLoader[tuple[UUID, int], list[dict[str, Any]]]:
        return DataLoader(load_fn=self._load_first_interactions)

    @cached_property
    def periods(self) -> dict[str, DataLoader[UUID, list[dict[str, Any]]]]:
        return {
            table: self._periods_loader(table)
            for table in queries.PERIOD_TABLES | queries.DURATION_VIEWS
        }

    @cached_property
    def complaints(self) -> DataLoader[UUID, list[dict[str, Any]]]:
        return self._loader(self._complaints_of, [])

    def forget_loaded(self) -> None:
        """Drop what the loaders hold: a subscription's context outlives reads."""
        for name in ("accounts", "first_interactions", "periods", "complaints"):
            self.__dict__.pop(name, None)

    @property
    def actor(self) -> str:
        """Who the request is: stamped on every event it causes."""
        if self.principal is None:
            raise Unauthenticated("no credentials")
        return self.principal.actor

    def managers(self) -> list[str] | None:
        """Whose accounts the request may reach; None: everyone's."""
        allowed = None if self.principal is None else self.principal.managers()
        return None if allowed is None else sorted(allowed)

    def command_meta(self, requested: UUID | None = None) -> CommandMeta:
        """Each mutation is a command of its own, caused by the request, and
        allowed only on accounts the principal may act on (before and after).
        A ``commandId`` from the client makes it idempotent."""
        command_id = requested or uuid4()
        principal = self.principal
        if principal is None:
            raise Unauthenticated("no credentials")

        def authorize(account: Account) -> None:
            if not principal.may_act_on(account.manager):
                raise AccountNotFound(f"account {account.id} does not exist")

        return CommandMeta(
            actor=principal.actor,
            command_id=command_id,
            correlation_id=self.correlation_id,
            causation_id=command_id,
            idempotent=requested is not None,
            authorize=authorize,
        )

    async def reachable_accounts(
        self, conn: queries.Conn, ids: Sequence[UUID]
    ) -> dict[UUID, dict[str, Any]]:
        """Accounts by id, those out of the principal's reach left out."""
        found = await queries.accounts_by_id(conn, ids)
        principal = self.principal
        if principal is None:
            return {}
        return {k: row for k, row in found.items() if principal.may_act_on(row["manager"])}

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


def credential_in(values: dict[str, Any] | Any) -> str | None:
    """``Authorization: Bearer <key or token>``, or ``X-API-Key: <key>``."""
    authorization = str(values.get("authorization") or values.get("Authorization") or "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = str(values.get(API_KEY_HEADER) or values.get("apiKey") or "").strip()
    return key or None


async def context_getter(request: HTTPConnection) -> Context:
    """For HTTP requests and for the websockets of subscriptions alike.

    Every request needs credentials (401 otherwise), except the GraphiQL page
    itself and a websocket, which may send them in its connection_init.
    """
    runtime: Runtime = request.app.state.runtime
    credential = credential_in(request.headers)
    principal = None
    if credential is not None:
        try:
            principal = await runtime.authenticate(credential)
        except Unauthenticated as refused:
            raise HTTPException(401, str(refused), headers=CHALLENGE) from None
    elif not isinstance(request, WebSocket) and not _ide_page(request):
        raise HTTPException(
            401,
            "credentials required: Authorization: Bearer <API key or token>",
            headers=CHALLENGE,
        )
    return Context(
        runtime=runtime,
        principal=principal,
        correlation_id=_uuid_or_new(request.headers.get(CORRELATION_HEADER)),
    )


def _ide_page(request: HTTPConnection) -> bool:
    """GraphiQL's own page: a GET that asks for HTML and carries no query."""
    return (
        request.scope.get("method") == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )
