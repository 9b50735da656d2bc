"""The FastAPI application: GraphQL at /graphql (GraphiQL in a browser), /health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from strawberry.fastapi import GraphQLRouter

from api.context import context_getter
from api.runtime import Runtime
from api.schema import schema
from api.settings import Settings


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
        GraphQLRouter(schema, context_getter=context_getter, graphql_ide="graphiql"),
        prefix="/graphql",
    )

    @app.get("/health")
    async def health() -> dict[str, object]:
        runtime: Runtime = app.state.runtime
        return {"status": "ok", "projected_position": runtime.watermark.position}

    return app
