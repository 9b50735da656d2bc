"""Follow-ups and goals: what is to be done after an interaction, a deal or a
complaint, by whom and by when; and the goals agreed with the customer."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

import strawberry

from api.context import Info
from api.runtime import Runtime
from api.schema.access import WRITERS, allow, personal
from api.schema.accounts import Account
from api.schema.errors import (
    ConcurrencyConflict,
    NotFoundError,
    RuleViolation,
    ValidationError,
    error_result,
)
from api.schema.loaders import keyset_page, request_loader
from api.schema.mutations import (
    AccountChange,
    AccountCommandInput,
    AccountResult,
    _account_result,
    _changed,
    _execute,
)
from api.schema.scalars import Connection, Position
from domain.errors import DomainError
from domain.values import FollowedKind, FollowUpStatus, GoalStatus
from projections import queries

strawberry.enum(FollowUpStatus, description="OPEN until COMPLETED or CANCELLED (final).")
strawberry.enum(FollowedKind, description="What a follow-up follows.")
strawberry.enum(GoalStatus, description="AGREED until ACHIEVED or DROPPED (final).")


@strawberry.type(
    description="Something to do for an account, by its owner, by when it is due. "
    "Overdue is worked out when it is read."
)
class FollowUp:
    id: UUID
    account_id: UUID
    due: datetime
    owner: str
    reason: str = strawberry.field(extensions=personal())
    follows_kind: FollowedKind
    follows_id: UUID = strawberry.field(
        description="The interaction, deal or complaint it follows."
    )
    status: FollowUpStatus
    overdue: bool = strawberry.field(
        description="Open, and its due moment has passed (as of the query)."
    )
    manager: str | None = strawberry.field(description="The account's manager now.")
    scheduled_at: datetime
    scheduled_by: str = strawberry.field(
        description="Who scheduled it: a person, or process:thank-you after a deal."
    )
    completed_at: datetime | None
    outcome: str | None = strawberry.field(extensions=personal())
    cancelled_at: datetime | None
    cancel_reason: str | None = strawberry.field(extensions=personal())
    closed_by: str | None = strawberry.field(description="Who completed or cancelled it.")
    updated_at: datetime
    position: Position

    @strawberry.field
    async def account(self, info: Info) -> Account | None:
        row = await info.context.accounts.load(self.account_id)
        return None if row is None else Account.from_row(row)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FollowUp:
        return cls(
            id=row["follow_up_id"],
            account_id=row["account_id"],
            due=row["due"],
            owner=row["owner"],
            reason=row["reason"],
            follows_kind=FollowedKind(row["follows_kind"]),
            follows_id=row["follows_id"],
            status=FollowUpStatus(row["status"]),
            overdue=row["overdue"],
            manager=row["manager"],
            scheduled_at=row["scheduled_at"],
            scheduled_by=row["scheduled_by"],
            completed_at=row["completed_at"],
            outcome=row["outcome"],
            cancelled_at=row["cancelled_at"],
            cancel_reason=row["cancel_reason"],
            closed_by=row["closed_by"],
            updated_at=row["updated_at"],
            position=row["position"],
        )


@strawberry.type(
    description="A goal agreed with the customer: written down, with its phase, "
    "the person responsible and when it is due."
)
class Goal:
    id: UUID
    account_id: UUID
    description: str = strawberry.field(extensions=personal())
    owner: str = strawberry.field(description="Who is responsible for it.")
    due: date
    phase: str
    status: GoalStatus
    overdue: bool = strawberry.field(
        description="Still agreed, and its due date has passed (as of today)."
    )
    agreed_at: datetime
    agreed_by: str
    achieved_at: datetime | None
    dropped_at: datetime | None
    drop_reason: str | None = strawberry.field(extensions=personal())
    closed_by: str | None = strawberry.field(description="Who achieved or dropped it.")
    updated_at: datetime
    position: Position

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Goal:
        return cls(
            id=row["goal_id"],
            account_id=row["account_id"],
            description=row["description"],
            owner=row["owner"],
            due=row["due"],
            phase=row["phase"],
            status=GoalStatus(row["status"]),
            overdue=row["overdue"],
            agreed_at=row["agreed_at"],
            agreed_by=row["agreed_by"],
            achieved_at=row["achieved_at"],
            dropped_at=row["dropped_at"],
            drop_reason=row["drop_reason"],
            closed_by=row["closed_by"],
            updated_at=row["updated_at"],
            position=row["position"],
        )


async def _load_follow_ups(
    runtime: Runtime, keys: list[tuple[UUID, int]]
) -> list[list[dict[str, Any]]]:
    async with runtime.pool.connection() as conn:
        found = await queries.follow_ups_by_account(conn, [key[0] for key in keys])
    return [found[account_id] for account_id, _ in keys]


async def _load_goals(
    runtime: Runtime, keys: list[tuple[UUID, int]]
) -> list[list[dict[str, Any]]]:
    async with runtime.pool.connection() as conn:
        found = await queries.goals_by_account(conn, [key[0] for key in keys])
    return [found[account_id] for account_id, _ in keys]


async def account_follow_ups(info: Info, account_id: UUID, version: int) -> list[FollowUp]:
    """Every follow-up of the account, batched across the accounts of a request."""
    loader = request_loader(info, "follow_ups", _load_follow_ups)
    return [FollowUp.from_row(row) for row in await loader.load((account_id, version))]


async def account_goals(info: Info, account_id: UUID, version: int) -> list[Goal]:
    """Every goal of the account, batched across the accounts of a request."""
    loader = request_loader(info, "goals", _load_goals)
    return [Goal.from_row(row) for row in await loader.load((account_id, version))]


@strawberry.input
class FollowUpFilter:
    owner: str | None = None
    overdue: bool | None = strawberry.field(
        default=None,
        description="True: open follow-ups past their due moment, as of now. "
        "False: every other one.",
    )
    status: FollowUpStatus | None = None
    account_id: UUID | None = None


@strawberry.type
class FollowUpQueries:
    @strawberry.field(
        description="Follow-ups of the accounts within reach, soonest due first; "
        "keyset-paginated. Overdue is worked out as of the query."
    )
    async def follow_ups(
        self,
        info: Info,
        filter: FollowUpFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[FollowUp]:
        where = filter or FollowUpFilter()
        wanted = queries.FollowUpFilter(
            owner=where.owner,
            status=where.status.value if where.status else None,
            overdue=where.overdue,
            account_id=where.account_id,
            managers=info.context.managers(),
        )
        return await keyset_page(
            info,
            first=first,
            after=after,
            cursor=(datetime.fromisoformat, UUID, UUID),
            fetch=lambda conn, limit, key: queries.list_follow_ups(
                conn, wanted, limit, key
            ),
            node=FollowUp.from_row,
            key=lambda row: (
                row["due"].isoformat(),
                row["account_id"],
                row["follow_up_id"],
            ),
        )


@strawberry.type
class FollowUpScheduled(AccountChange):
    follow_up_id: UUID


@strawberry.type
class GoalAgreed(AccountChange):
    goal_id: UUID


ScheduleFollowUpResult = Annotated[
    FollowUpScheduled
    | ValidationError
    | NotFoundError
    | ConcurrencyConflict
    | RuleViolation,
    strawberry.union("ScheduleFollowUpResult"),
]
AgreeGoalResult = Annotated[
    GoalAgreed | ValidationError | NotFoundError | ConcurrencyConflict | RuleViolation,
    strawberry.union("AgreeGoalResult"),
]


def _now(moment: datetime | None) -> datetime:
    return moment or datetime.now(tz=UTC)


@strawberry.input
class ScheduleFollowUpInput(AccountCommandInput):
    due: datetime = strawberry.field(
        description="With a time zone; up to ten years ahead. Once it passes, an "
        "open follow-up reads as overdue."
    )
    owner: str = strawberry.field(description="Who is to do it.")
    reason: str = strawberry.field(description="What is to be done, and why.")
    follows_kind: FollowedKind
    follows_id: UUID = strawberry.field(
        description="An interaction, deal or complaint of this account."
    )
    follow_up_id: UUID | None = strawberry.field(
        default=None, description="Client-chosen id; a new one when left out."
    )


@strawberry.input
class CompleteFollowUpInput(AccountCommandInput):
    follow_up_id: UUID
    outcome: str = strawberry.field(default="", description="What came of it.")
    completed_at: datetime | None = strawberry.field(
        default=None, description="With a time zone; defaults to now."
    )


@strawberry.input
class CancelFollowUpInput(AccountCommandInput):
    follow_up_id: UUID
    reason: str


@strawberry.input
class AgreeGoalInput(AccountCommandInput):
    description: str = strawberry.field(description="What was agreed.")
    owner: str = strawberry.field(description="Who is responsible for it.")
    due: date = strawberry.field(description="Up to ten years ahead.")
    phase: str = strawberry.field(
        default="", description="Which phase of the plan it belongs to."
    )
    goal_id: UUID | None = strawberry.field(
        default=None, description="Client-chosen id; a new one when left out."
    )


@strawberry.input
class AchieveGoalInput(AccountCommandInput):
    goal_id: UUID
    achieved_at: datetime | None = strawberry.field(
        default=None, description="With a time zone; defaults to now."
    )


@strawberry.input
class DropGoalInput(AccountCommandInput):
    goal_id: UUID
    reason: str


@strawberry.type
class FollowUpMutations:
    @strawberry.mutation(
        description="Schedule a follow-up of an interaction, a deal or a complaint. "
        "Its texts are the account's personal data (erased with the account); "
        "owner, due moment and what it follows are not.",
        extensions=allow(*WRITERS),
    )
    async def schedule_follow_up(
        self, info: Info, input: ScheduleFollowUpInput
    ) -> ScheduleFollowUpResult:
        app = info.context.runtime.app
        outcome = await _execute(
            info,
            lambda meta: app.schedule_follow_up(
                meta,
                input.account_id,
                due=input.due,
                owner=input.owner,
                reason=input.reason,
                follows_kind=input.follows_kind,
                follows_id=input.follows_id,
                expected_version=input.expected_version,
                follow_up_id=input.follow_up_id,
            ),
        )
        if isinstance(outcome, DomainError):
            return error_result(outcome)
        assert outcome.created_id is not None  # noqa: S101 - scheduling creates one
        return FollowUpScheduled(
            follow_up_id=outcome.created_id,
            **await _changed(info, outcome),  # type: ignore[arg-type]
        )

    @strawberry.mutation(
        description="Only an open follow-up; completed is final.",
        extensions=allow(*WRITERS),
    )
    async def complete_follow_up(
        self, info: Info, input: CompleteFollowUpInput
    ) -> AccountResult:
        app = info.context.runtime.app
        completed_at = _now(input.completed_at)
        return await _account_result(
            info,
            lambda meta: app.complete_follow_up(
                meta,
                input.account_id,
                input.follow_up_id,
                completed_at=completed_at,
                outcome=input.outcome,
                expected_version=input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="Only an open follow-up; cancelled is final.",
        extensions=allow(*WRITERS),
    )
    async def cancel_follow_up(
        self, info: Info, input: CancelFollowUpInput
    ) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.cancel_follow_up(
                meta,
                input.account_id,
                input.follow_up_id,
                reason=input.reason,
                expected_version=input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="Write down a goal agreed with the customer. Its description is "
        "the account's personal data; owner, phase and due date are not.",
        extensions=allow(*WRITERS),
    )
    async def agree_goal(self, info: Info, input: AgreeGoalInput) -> AgreeGoalResult:
        app = info.context.runtime.app
        outcome = await _execute(
            info,
            lambda meta: app.agree_goal(
                meta,
                input.account_id,
                description=input.description,
                owner=input.owner,
                due=input.due,
                phase=input.phase,
                expected_version=input.expected_version,
                goal_id=input.goal_id,
            ),
        )
        if isinstance(outcome, DomainError):
            return error_result(outcome)
        assert outcome.created_id is not None  # noqa: S101 - agreeing creates one
        return GoalAgreed(
            goal_id=outcome.created_id,
            **await _changed(info, outcome),  # type: ignore[arg-type]
        )

    @strawberry.mutation(
        description="Only a goal still agreed; achieved is final.",
        extensions=allow(*WRITERS),
    )
    async def achieve_goal(self, info: Info, input: AchieveGoalInput) -> AccountResult:
        app = info.context.runtime.app
        achieved_at = _now(input.achieved_at)
        return await _account_result(
            info,
            lambda meta: app.achieve_goal(
                meta,
                input.account_id,
                input.goal_id,
                achieved_at=achieved_at,
                expected_version=input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="Only a goal still agreed; dropped is final.",
        extensions=allow(*WRITERS),
    )
    async def drop_goal(self, info: Info, input: DropGoalInput) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.drop_goal(
                meta,
                input.account_id,
                input.goal_id,
                reason=input.reason,
                expected_version=input.expected_version,
            ),
        )
