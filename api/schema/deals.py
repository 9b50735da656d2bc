"""Deals: what each account bought, for how much and when; money is exact
decimal text in an ISO 4217 currency, never a float, never summed across
currencies."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import strawberry

from api.context import Info
from api.runtime import Runtime
from api.schema.access import WRITERS, allow
from api.schema.errors import (
    ConcurrencyConflict,
    NotFoundError,
    RuleViolation,
    ValidationError,
    error_result,
)
from api.schema.loaders import request_loader, timeline
from api.schema.mutations import AccountChange, AccountCommandInput, _changed, _execute
from api.schema.scalars import Connection, MoneyInput, Position
from domain.errors import DomainError
from domain.money import money_text
from projections import queries


@strawberry.type(
    description="An exact amount of money. `amount` is decimal text with the "
    "currency's decimals (1250.50 EUR, 1500 JPY): read it into a decimal type, "
    "never a float."
)
class Money:
    amount: str
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR.")

    @classmethod
    def of(cls, amount: Decimal, currency: str) -> Money:
        return cls(amount=money_text(amount, currency), currency=currency)


@strawberry.type(description="A deal the account closed.")
class Deal:
    id: UUID
    account_id: UUID
    value: Money
    product: str = strawberry.field(description="The product or category sold.")
    place: str
    closed_at: datetime
    closed_by: str
    position: Position

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Deal:
        return cls(
            id=row["deal_id"],
            account_id=row["account_id"],
            value=Money.of(row["amount"], row["currency"]),
            product=row["product"],
            place=row["place"],
            closed_at=row["closed_at"],
            closed_by=row["closed_by"],
            position=row["position"],
        )


@strawberry.type(
    description="In one currency: the value of the deals closed in the last "
    "`days` days against the `days` before, as of the query."
)
class DealTrend:
    currency: str
    days: int
    recent: Money = strawberry.field(description="Closed in the last `days` days.")
    previous: Money = strawberry.field(description="Closed in the `days` before those.")
    change: Money = strawberry.field(
        description="recent minus previous: negative when the value fell."
    )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DealTrend:
        currency = row["currency"]
        recent, previous = row["recent_value"], row["previous_value"]
        return cls(
            currency=currency,
            days=queries.DEAL_TREND_SPAN.days,
            recent=Money.of(recent, currency),
            previous=Money.of(previous, currency),
            change=Money.of(recent - previous, currency),
        )


_NO_DEALS: dict[str, Any] = {"deal_count": 0, "last_deal_at": None, "currencies": []}


async def _load_summaries(
    runtime: Runtime, keys: list[tuple[UUID, int]]
) -> list[dict[str, Any]]:
    async with runtime.pool.connection() as conn:
        found = await queries.deal_summaries(conn, [account_id for account_id, _ in keys])
    return [found.get(account_id, _NO_DEALS) for account_id, _ in keys]


async def deal_summary(info: Info, account_id: UUID, version: int) -> dict[str, Any]:
    """Count, last deal and values per currency, batched across a request's accounts."""
    loader = request_loader(info, "deal_summaries", _load_summaries)
    summary: dict[str, Any] = await loader.load((account_id, version))
    return summary


async def lifetime_value(info: Info, account_id: UUID, version: int) -> list[Money]:
    summary = await deal_summary(info, account_id, version)
    return [Money.of(r["lifetime_value"], r["currency"]) for r in summary["currencies"]]


async def deal_trend(info: Info, account_id: UUID, version: int) -> list[DealTrend]:
    summary = await deal_summary(info, account_id, version)
    return [DealTrend.from_row(r) for r in summary["currencies"] if r["trend_deals"]]


async def account_deals(
    info: Info, account_id: UUID, version: int, first: int, after: str | None
) -> Connection[Deal]:
    """Newest closed first."""
    keys = ("closed_at", "deal_id")
    return await timeline(
        info,
        "deals",
        keys,
        Deal.from_row,
        account_id=account_id,
        version=version,
        first=first,
        after=after,
    )


@strawberry.type
class DealClosed(AccountChange):
    deal_id: UUID


CloseDealResult = Annotated[
    DealClosed | ValidationError | NotFoundError | ConcurrencyConflict | RuleViolation,
    strawberry.union("CloseDealResult"),
]


@strawberry.input
class CloseDealInput(AccountCommandInput):
    value: MoneyInput
    product: str = strawberry.field(description="The product or category sold.")
    place: str = strawberry.field(default="", description="Where it was closed.")
    deal_id: UUID | None = strawberry.field(
        default=None, description="Client-chosen id; a new one when left out."
    )
    closed_at: datetime | None = strawberry.field(
        default=None,
        description="When the deal was closed, with a time zone; defaults to now.",
    )


@strawberry.type
class DealMutations:
    @strawberry.mutation(
        description="Record a deal the account closed.", extensions=allow(*WRITERS)
    )
    async def close_deal(self, info: Info, input: CloseDealInput) -> CloseDealResult:
        app = info.context.runtime.app
        closed_at = input.closed_at or datetime.now(tz=UTC)
        outcome = await _execute(
            info,
            lambda meta: app.close_deal(
                meta,
                input.account_id,
                amount=input.value.amount,
                currency=input.value.currency,
                product=input.product,
                closed_at=closed_at,
                place=input.place,
                expected_version=input.expected_version,
                deal_id=input.deal_id,
            ),
        )
        if isinstance(outcome, DomainError):
            return error_result(outcome)
        assert outcome.created_id is not None  # noqa: S101 - close_deal creates one
        return DealClosed(
            deal_id=outcome.created_id,
            **await _changed(info, outcome),  # type: ignore[arg-type]
        )
