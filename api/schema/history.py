"""An account's events as auditors read them: every change, who, when, why."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.context import Info
from api.schema.access import principal_of
from api.schema.scalars import (
    Connection,
    InvalidArgument,
    Position,
    connection,
    decode_cursor,
    page_size,
)
from domain.errors import InvalidValue
from eventstore.audit import HistoryEntry


@strawberry.type(description="One stored event, with its audit metadata.")
class HistoryEvent:
    position: Position
    account_id: UUID
    version: int
    type: str
    event_id: UUID
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    correlation_id: UUID | None
    causation_id: UUID | None
    command_id: UUID | None
    payload: JSON

    @classmethod
    def from_entry(cls, entry: HistoryEntry) -> HistoryEvent:
        recorded = entry.recorded
        return cls(
            position=Position(recorded.position),
            account_id=UUID(str(recorded.stored.originator_id)),
            version=recorded.stored.originator_version,
            type=entry.type,
            event_id=recorded.event_id,
            occurred_at=recorded.occurred_at,
            recorded_at=recorded.recorded_at,
            actor=recorded.actor,
            correlation_id=recorded.correlation_id,
            causation_id=recorded.causation_id,
            command_id=recorded.command_id,
            payload=JSON(entry.payload),
        )


async def account_history(
    info: Info, account_id: UUID, first: int, after: str | None, types: list[str]
) -> Connection[HistoryEvent]:
    runtime = info.context.runtime
    limit = page_size(first, runtime.settings.max_page_size)
    (after_version,) = (0,) if after is None else decode_cursor(after, int)
    try:
        entries = await runtime.call(
            runtime.audit.history,
            account_id,
            after_version=after_version,
            limit=limit + 1,
            types=types,
            withhold_personal=not principal_of(info).sees_personal_data,
        )
    except InvalidValue as error:
        raise InvalidArgument(str(error)) from None
    return connection(
        [HistoryEvent.from_entry(e) for e in entries],
        [(str(e.recorded.stored.originator_version),) for e in entries],
        limit,
        after=after,
    )
