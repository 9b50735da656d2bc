"""The FastAPI application: GraphQL at /graphql (GraphiQL in a browser), /health."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage as TransportErrorMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ErrorMessage as LegacyErrorMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage
from strawberry.types.unset import UNSET, UnsetType

from api.auth import Unauthenticated
from api.context import Context, context_getter, credential_in
from api.hardening import (
    BodyLimit,
    RateLimiter,
    charged_context,
    principal_key,
    rate_limit_message,
    schema_extensions,
)
from api.kept_http import AnswerKeptFirst
from api.runtime import Runtime, settle_heap
from api.schema import build_schema
from api.schema.access import AUDITORS
from api.settings import Settings
from eventstore.database import resolve_database_url
from eventstore.transfer import export_lines

NO_PAYLOAD: UnsetType = UNSET
CREDENTIALS_REQUIRED = "credentials required: connection_init payload Authorization"


def _rate_limited(context: Context, limiter: RateLimiter) -> str | None:
    """Charge one request to the websocket's principal: why it is refused, if it is."""
    principal = context.principal
    if principal is None:
        return None
    wait = limiter.take(principal_key(principal.credential))
    return None if wait is None else rate_limit_message(wait)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws: each operation started costs one request."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        assert isinstance(self.view, Router)  # noqa: S101 - made by Router only
        refused = _rate_limited(self.context, self.view.limiter)
        if refused is not None and message["id"] not in self.operations:
            error = GraphQLError(refused, extensions={"code": "RATE_LIMITED"})
            await self.send_message(
                TransportErrorMessage(
                    id=message["id"], type="error", payload=[error.formatted]
                )
            )
            return
        await super().handle_subscribe(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (the older protocol): each operation started costs one request."""

    async def handle_start(self, message: StartMessage) -> None:
        assert isinstance(self.view, Router)  # noqa: S101 - made by Router only
        refused = _rate_limited(self.context, self.view.limiter)
        if refused is not None:
            error = GraphQLError(refused, extensions={"code": "RATE_LIMITED"})
            await self.send_message(
                LegacyErrorMessage(type="error", id=message["id"], payload=error.formatted)
            )
            return
        await super().handle_start(message)


class Router(GraphQLRouter[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, *args: Any, limiter: RateLimiter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limiter = limiter

    def decode_json(self, data: str | bytes) -> object:
        """A body that is not UTF-8, or nested deeper than Python's recursion
        limit, does not parse as JSON either: 400, as strawberry answers any
        other body that does not parse (not a server error)."""
        try:
            return json.loads(data)
        except (UnicodeDecodeError, RecursionError) as error:
            raise json.JSONDecodeError(str(error), "", 0) from None

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Browsers cannot set headers on a websocket: credentials may come in
        connection_init's payload, as ``Authorization`` or ``apiKey``. The
        connection costs one request of the principal's rate."""
        if context.principal is None:
            params = context.connection_params
            credential = credential_in(params) if isinstance(params, dict) else None
            if credential is None:
                raise ConnectionRejectionError({"message": CREDENTIALS_REQUIRED})
            try:
                context.principal = await context.runtime.authenticate(credential)
            except Unauthenticated as refused:
                raise ConnectionRejectionError({"message": str(refused)}) from None
        refused_rate = _rate_limited(context, self.limiter)
        if refused_rate is not None:
            raise ConnectionRejectionError({"message": refused_rate})
        return NO_PAYLOAD


async def request_context(request: HTTPConnection) -> Context:
    """The request's context (``context_getter``), charged to its credential's rate."""
    context: Context = await charged_context(
        request, context_getter, request.app.state.limiter
    )
    return context


def app_from_env() -> FastAPI:
    """One worker's app when ``rapport serve`` runs several (uvicorn's factory):
    the settings and the database the serving command resolved, from the
    environment it passed on."""
    return create_app(Settings.from_env(), resolve_database_url())


def create_app(settings: Settings, database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await asyncio.to_thread(Runtime, settings, database_url)
        await runtime.start()
        settle_heap()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="Rapport", lifespan=lifespan)
    # Read before the first request: a bad trusted documents file stops the start.
    schema = build_schema(schema_extensions(settings), keep_answers=True)
    limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.state.limiter = limiter
    # Inside the body limit: a kept answer is sent before routing (api.kept_http).
    app.add_middleware(AnswerKeptFirst)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(
        Router(
            schema,
            limiter=limiter,
            context_getter=request_context,
            graphql_ide="graphiql" if settings.graphiql else None,
            # graphql-ws clients get keep-alive messages; graphql-transport-ws
            # connections get WebSocket pings from the server (uvicorn, 20 s).
            keep_alive=True,
            keep_alive_interval=15,
        ),
        prefix="/graphql",
    )

    @app.get(
        "/export",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/x-ndjson": {}}}},
    )
    def export(
        context: Annotated[Context, Depends(request_context)],
        account: UUID | None = None,
        keys: bool = True,
    ) -> StreamingResponse:
        """The event log (or one account's events) as NDJSON, streamed; for
        auditors and admins.

        With ``keys=false`` the subjects' keys are left out, and every personal
        value in the file stays sealed.
        """
        principal = context.principal
        if principal is None or principal.role not in AUDITORS:
            raise HTTPException(403, f"export needs one of the roles {', '.join(AUDITORS)}")
        runtime: Runtime = app.state.runtime
        recorder = runtime.audit.recorder
        return StreamingResponse(
            (line + "\n" for line in export_lines(recorder, account, keys=keys)),
            media_type="application/x-ndjson",
        )

    @app.get("/health")
    async def health() -> dict[str, object]:
        runtime: Runtime = app.state.runtime
        return {"status": "ok", "projected_position": runtime.watermark.position}

    return app
