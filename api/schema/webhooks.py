"""Webhooks: registration, the delivery log, replay (see eventstore.webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import strawberry

from api.context import Info
from api.schema.access import INTEGRATORS, allow
from api.schema.errors import NotFoundError, ValidationError
from api.schema.scalars import Position, page_size
from domain.errors import InvalidValue


@strawberry.type(description="One attempt to deliver one event to a webhook.")
class WebhookDelivery:
    position: Position
    event_id: UUID
    attempt: int = strawberry.field(description="1 for the first try of this event.")
    attempted_at: datetime
    duration_ms: int
    status_code: int | None = strawberry.field(
        description="The receiver's HTTP status; null when no answer came."
    )
    error: str | None
    delivered: bool = strawberry.field(description="True for a 2xx answer.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When a failed attempt is tried again."
    )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WebhookDelivery:
        return cls(
            position=Position(row["position"]),
            event_id=row["event_id"],
            attempt=row["attempt"],
            attempted_at=row["attempted_at"],
            duration_ms=row["duration_ms"],
            status_code=row["status_code"],
            error=row["error"],
            delivered=row["delivered"],
            next_attempt_at=row["next_attempt_at"],
        )


@strawberry.type(
    description="Events POSTed to a URL, signed, in position order, retried until "
    "delivered. The secret is never shown again."
)
class Webhook:
    id: UUID
    url: str
    types: list[str] = strawberry.field(description="Event types sent; empty: all.")
    created_at: datetime
    created_by: str
    active: bool = strawberry.field(description="False once removed.")
    position: Position = strawberry.field(
        description="Every event up to here has been delivered (or is not one it takes)."
    )
    failures: int = strawberry.field(
        description="Failed attempts in a row at the next event; 0 when healthy."
    )
    last_error: str | None
    next_attempt_at: datetime | None = strawberry.field(
        description="When the failing next event is tried again; null when healthy."
    )

    @strawberry.field(description="The newest attempts first.")
    async def deliveries(self, info: Info, first: int = 20) -> list[WebhookDelivery]:
        limit = page_size(first, info.context.runtime.settings.max_page_size)
        found = await info.context.runtime.webhooks.deliveries_of([self.id], limit)
        return [WebhookDelivery.from_row(row) for row in found[self.id]]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Webhook:
        return cls(
            id=row["id"],
            url=row["url"],
            types=list(row["types"]),
            created_at=row["created_at"],
            created_by=row["created_by"],
            active=row["active"],
            position=Position(row["position"]),
            failures=row["failures"],
            last_error=row["last_error"],
            next_attempt_at=row["next_attempt_at"] if row["failures"] else None,
        )


WebhookResult = Annotated[
    Webhook | ValidationError | NotFoundError, strawberry.union("WebhookResult")
]


def _not_found(webhook_id: UUID) -> NotFoundError:
    return NotFoundError(
        message=f"no active webhook {webhook_id}", code="WEBHOOK_NOT_FOUND"
    )


def _invalid(error: InvalidValue) -> ValidationError:
    return ValidationError(message=str(error), code=error.code, field=error.field)


@strawberry.type
class WebhookQueries:
    @strawberry.field(
        description="Every webhook, removed ones included.", extensions=allow(*INTEGRATORS)
    )
    async def webhooks(self, info: Info) -> list[Webhook]:
        return [Webhook.from_row(row) for row in await info.context.runtime.webhooks.all()]

    @strawberry.field(extensions=allow(*INTEGRATORS))
    async def webhook(self, info: Info, id: UUID) -> Webhook | None:
        row = await info.context.runtime.webhooks.get(id)
        return None if row is None else Webhook.from_row(row)


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="POST each matching event to `url` from now on (or after "
        "`after`). Requests are signed with `secret` (HMAC-SHA256, see the README).",
        extensions=allow(*INTEGRATORS),
    )
    async def register_webhook(
        self,
        info: Info,
        url: str,
        secret: str,
        types: list[str] | None = None,
        after: Position | None = None,
    ) -> WebhookResult:
        try:
            row = await info.context.runtime.webhooks.register(
                url=url,
                secret=secret,
                types=types or [],
                actor=info.context.actor,
                after=after,
            )
        except InvalidValue as error:
            return _invalid(error)
        return Webhook.from_row(row)

    @strawberry.mutation(
        description="Deliver again every event after `after`, starting now, also "
        "to a webhook that is failing. Receivers drop what they already have by event id.",
        extensions=allow(*INTEGRATORS),
    )
    async def replay_webhook(self, info: Info, id: UUID, after: Position) -> WebhookResult:
        try:
            row = await info.context.runtime.webhooks.replay(id, after)
        except InvalidValue as error:
            return _invalid(error)
        return _not_found(id) if row is None else Webhook.from_row(row)

    @strawberry.mutation(
        description="Stop delivering; the delivery log stays.",
        extensions=allow(*INTEGRATORS),
    )
    async def remove_webhook(self, info: Info, id: UUID) -> WebhookResult:
        row = await info.context.runtime.webhooks.remove(id)
        return _not_found(id) if row is None else Webhook.from_row(row)
