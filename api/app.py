"""The FastAPI application: GraphQL at /graphql (GraphiQL in a browser), /health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated
from uuid import UUID

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UNSET, UnsetType

from api.auth import Unauthenticated
from api.context import Context, context_getter, credential_in
from api.runtime import Runtime
from api.schema import schema
from api.schema.access import AUDITORS
from api.settings import Settings
from eventstore.transfer import export_lines

NO_PAYLOAD: UnsetType = UNSET


class Router(GraphQLRouter[Context, None]):
    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Browsers cannot set headers on a websocket: credentials may come in
        connection_init's payload, as ``Authorization`` or ``apiKey``."""
        if context.principal is not None:
            return NO_PAYLOAD
        params = context.connection_params
        credential = credential_in(params) if isinstance(params, dict) else None
        if credential is None:
            raise ConnectionRejectionError(
                {"message": "credentials required: connection_init payload Authorization"}
            )
        try:
            context.principal = await context.runtime.authenticate(credential)
        except Unauthenticated as refused:
            raise ConnectionRejectionError({"message": str(refused)}) from None
        return NO_PAYLOAD


def create_app(settings: Settings, database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await asyncio.to_thread(Runtime, settings, database_url)
        await runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="Rapport", lifespan=lifespan)
    app.include_router(
        Router(
            schema,
            context_getter=context_getter,
            graphql_ide="graphiql",
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
        context: Annotated[Context, Depends(context_getter)],
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
