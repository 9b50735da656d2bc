"""Subscriptions (graphql-transport-ws): the event log, replayed then live."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from uuid import UUID

import strawberry

from api.context import Info
from api.schema.accounts import Account
from api.schema.history import HistoryEvent
from api.schema.scalars import InvalidArgument, Position
from eventstore.audit import EVENT_TYPES
from eventstore.recorder import RecordedEvent, event_type
from projections import queries

BATCH = 500
# How long a subscriber waits for a commit before looking again.
IDLE_SECONDS = 1.0


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every event after `after` in position order, then each new one "
        "as it commits: no gap, no duplicate. A client that reconnects with the last "
        "position it saw continues exactly after it. `types` and `accountId` narrow "
        "the events sent; positions still only grow."
    )
    async def events(
        self,
        info: Info,
        after: Position = Position(0),  # noqa: B008 - a value, not a call per request
        types: list[str] | None = None,
        account_id: UUID | None = None,
    ) -> AsyncGenerator[HistoryEvent, None]:
        runtime = info.context.runtime
        wanted = set(types or ())
        unknown = sorted(wanted - set(EVENT_TYPES))
        if unknown:
            msg = f"unknown event types: {', '.join(unknown)}"
            raise InvalidArgument(msg)
        if after < 0:
            msg = "after is a position, 0 or more"
            raise InvalidArgument(msg)
        recorder = runtime.audit.recorder

        def wanted_event(recorded: RecordedEvent) -> bool:
            return (account_id is None or recorded.stored.originator_id == account_id) and (
                not wanted or event_type(recorded.stored.topic) in wanted
            )

        position = int(after)
        while True:
            # Positions commit in order, so reading after the last one seen
            # never misses an event that commits later.
            recorded = await runtime.call(recorder.read_after, position, BATCH)
            if not recorded:
                await runtime.events.wait(IDLE_SECONDS)
                continue
            matching = [r for r in recorded if wanted_event(r)]
            entries = await runtime.call(runtime.audit.entries, matching)
            for entry in entries:
                yield HistoryEvent.from_entry(entry)
            position = recorded[-1].position

    @strawberry.subscription(
        description="The account as the views show it now, then again after each "
        "change has been projected: for screens that stay open."
    )
    async def account_changed(self, info: Info, id: UUID) -> AsyncGenerator[Account, None]:
        runtime = info.context.runtime
        shown = None
        while True:
            async with runtime.pool.connection() as conn:
                row = (await queries.accounts_by_id(conn, [id])).get(id)
            if row is not None and row["version"] != shown:
                shown = row["version"]
                info.context.forget_loaded()
                yield Account.from_row(row)
            await runtime.watermark.wait(runtime.watermark.position + 1, IDLE_SECONDS)
