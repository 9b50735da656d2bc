"""The FastAPI application: GraphQL at /graphql (GraphiQL in a browser), /health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from strawberry.fastapi import GraphQLRouter

from api.context import context_getter
from api.runtime import Runtime
from api.schema import schema
from api.settings import Settings
from eventstore.transfer import export_lines


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
        GraphQLRouter(
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
    def export(account: UUID | None = None, keys: bool = True) -> StreamingResponse:
        """The event log (or one account's events) as NDJSON, streamed.

        With ``keys=false`` the subjects' keys are left out, and every personal
        value in the file stays sealed.
        """
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
