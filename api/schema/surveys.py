"""Satisfaction: surveys the customers answered, and CSAT and NPS over a rolling
window with their trend, per account and across the portfolio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Self
from uuid import UUID

import strawberry

from api.context import Info
from api.runtime import Runtime
from api.schema.access import WRITERS, allow, personal
from api.schema.errors import (
    ConcurrencyConflict,
    NotFoundError,
    RuleViolation,
    ValidationError,
    error_result,
)
from api.schema.loaders import request_loader, timeline
from api.schema.mutations import AccountChange, AccountCommandInput, _changed, _execute
from api.schema.scalars import Connection, Position
from domain.errors import DomainError
from domain.values import PurchaseIntent, SatisfactionLevel
from projections import queries

strawberry.enum(
    SatisfactionLevel,
    description="CSAT counts the top two: VERY_SATISFIED and SATISFIED.",
)
strawberry.enum(PurchaseIntent, description="Whether the customer means to buy again.")


@strawberry.type(description="A satisfaction survey the customer answered.")
class Survey:
    id: UUID
    account_id: UUID
    satisfaction: SatisfactionLevel
    intent_to_buy_again: PurchaseIntent
    likelihood_to_recommend: int = strawberry.field(
        description="0 to 10: 9 and 10 are promoters, 0 to 6 detractors."
    )
    comment: str = strawberry.field(
        description="The account's personal data: [erased] once the account is.",
        extensions=personal(),
    )
    contact_id: UUID | None
    answered_at: datetime
    recorded_by: str
    position: Position

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Survey:
        return cls(
            id=row["survey_id"],
            account_id=row["account_id"],
            satisfaction=SatisfactionLevel(row["satisfaction"]),
            intent_to_buy_again=PurchaseIntent(row["intent_to_buy_again"]),
            likelihood_to_recommend=row["likelihood_to_recommend"],
            comment=row["comment"],
            contact_id=row["contact_id"],
            answered_at=row["answered_at"],
            recorded_by=row["recorded_by"],
            position=row["position"],
        )


def _percent(value: Any) -> float | None:
    return None if value is None else float(value)


@strawberry.type(description="The surveys answered in one window of time.")
class SatisfactionScores:
    window_start: datetime = strawberry.field(
        description="Surveys answered after this moment count in the window."
    )
    window_end: datetime = strawberry.field(
        description="Surveys answered up to this moment (included) count in the window."
    )
    survey_count: int
    csat: float | None = strawberry.field(
        description="Percentage of answers VERY_SATISFIED or SATISFIED; null "
        "without surveys."
    )
    nps: float | None = strawberry.field(
        description="Percentage of promoters (9-10) minus percentage of detractors "
        "(0-6), -100 to 100; null without surveys."
    )


@strawberry.type(description="The window before, and how the figures moved since.")
class SatisfactionTrend(SatisfactionScores):
    csat_change: float | None = strawberry.field(
        description="CSAT now minus CSAT in the window before, in points."
    )
    nps_change: float | None = strawberry.field(
        description="NPS now minus NPS in the window before, in points."
    )


@strawberry.type(
    description="CSAT and NPS of the surveys answered in the rolling window that "
    "ends now (RAPPORT_SATISFACTION_WINDOW_DAYS), worked out as they are read."
)
class Satisfaction(SatisfactionScores):
    trend: SatisfactionTrend

    @classmethod
    def from_row(cls, row: dict[str, Any], **extra: Any) -> Self:
        return cls(
            window_start=row["window_start"],
            window_end=row["window_end"],
            survey_count=row["survey_count"],
            csat=_percent(row["csat"]),
            nps=_percent(row["nps"]),
            trend=SatisfactionTrend(
                window_start=row["previous_window_start"],
                window_end=row["window_start"],
                survey_count=row["previous_survey_count"],
                csat=_percent(row["previous_csat"]),
                nps=_percent(row["previous_nps"]),
                csat_change=_percent(row["csat_change"]),
                nps_change=_percent(row["nps_change"]),
            ),
            **extra,
        )


@strawberry.type(description="The satisfaction of the accounts of one group.")
class PortfolioGroup(Satisfaction):
    key: str | None = strawberry.field(
        description="The group's tier or stage (lower case) or manager; null: "
        "accounts without a manager."
    )


@strawberry.enum(description="Group accounts by their current tier, stage or manager.")
class PortfolioGrouping(Enum):
    TIER = "tier"
    STAGE = "stage"
    MANAGER = "manager"


def _window(runtime: Runtime) -> timedelta:
    return timedelta(days=runtime.settings.satisfaction_window_days)


async def _load_satisfaction(
    runtime: Runtime, keys: list[tuple[UUID, int]]
) -> list[dict[str, Any]]:
    async with runtime.pool.connection() as conn:
        rows = await queries.satisfaction_by_account(
            conn, [account_id for account_id, _ in keys], _window(runtime)
        )
    return [rows[account_id] for account_id, _ in keys]


async def account_satisfaction(info: Info, account_id: UUID, version: int) -> Satisfaction:
    """Batched across the accounts of a request."""
    loader = request_loader(info, "satisfaction", _load_satisfaction)
    return Satisfaction.from_row(await loader.load((account_id, version)))


async def account_surveys(
    info: Info, account_id: UUID, version: int, first: int, after: str | None
) -> Connection[Survey]:
    """Newest answered first."""
    keys = ("answered_at", "survey_id")
    return await timeline(
        info,
        "surveys",
        keys,
        Survey.from_row,
        account_id=account_id,
        version=version,
        first=first,
        after=after,
    )


@strawberry.type
class SurveyQueries:
    @strawberry.field(
        description="CSAT and NPS of every account's surveys in the rolling window, "
        "and their trend, grouped by the accounts' current tier, stage or manager."
    )
    async def portfolio(
        self, info: Info, group_by: PortfolioGrouping
    ) -> list[PortfolioGroup]:
        runtime = info.context.runtime
        async with runtime.pool.connection() as conn:
            rows = await queries.portfolio(
                conn, group_by.value, _window(runtime), managers=info.context.managers()
            )
        return [PortfolioGroup.from_row(row, key=row["key"]) for row in rows]


@strawberry.type
class SurveyRecorded(AccountChange):
    survey_id: UUID


RecordSurveyResult = Annotated[
    SurveyRecorded | ValidationError | NotFoundError | ConcurrencyConflict | RuleViolation,
    strawberry.union("RecordSurveyResult"),
]


@strawberry.input
class RecordSurveyInput(AccountCommandInput):
    satisfaction: SatisfactionLevel
    intent_to_buy_again: PurchaseIntent
    likelihood_to_recommend: int = strawberry.field(
        description="How likely the customer is to recommend the company, 0 to 10."
    )
    comment: str = strawberry.field(
        default="", description="In the customer's words; the account's personal data."
    )
    survey_id: UUID | None = strawberry.field(
        default=None, description="Client-chosen id; a new one when left out."
    )
    contact_id: UUID | None = strawberry.field(
        default=None, description="The current contact of the account who answered."
    )
    answered_at: datetime | None = strawberry.field(
        default=None,
        description="When the survey was answered, with a time zone; defaults to now.",
    )


@strawberry.type
class SurveyMutations:
    @strawberry.mutation(
        description="Record an answered satisfaction survey. Its comment is the "
        "account's personal data (erased with the account); the scores are not.",
        extensions=allow(*WRITERS),
    )
    async def record_survey(
        self, info: Info, input: RecordSurveyInput
    ) -> RecordSurveyResult:
        app = info.context.runtime.app
        answered_at = input.answered_at or datetime.now(tz=UTC)
        outcome = await _execute(
            info,
            lambda meta: app.record_survey(
                meta,
                input.account_id,
                satisfaction=input.satisfaction,
                intent_to_buy_again=input.intent_to_buy_again,
                likelihood_to_recommend=input.likelihood_to_recommend,
                answered_at=answered_at,
                comment=input.comment,
                contact_id=input.contact_id,
                expected_version=input.expected_version,
                survey_id=input.survey_id,
            ),
        )
        if isinstance(outcome, DomainError):
            return error_result(outcome)
        assert outcome.created_id is not None  # noqa: S101 - record_survey creates one
        return SurveyRecorded(
            survey_id=outcome.created_id,
            **await _changed(info, outcome),  # type: ignore[arg-type]
        )
