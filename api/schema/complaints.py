"""Complaints: filed, acknowledged, escalated, resolved, then closed or reopened,
each timed against its severity's targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import strawberry

from api.context import Info
from api.schema.access import WRITERS, allow, personal
from api.schema.accounts import Account, Contact
from api.schema.errors import (
    ConcurrencyConflict,
    NotFoundError,
    RuleViolation,
    ValidationError,
    error_result,
)
from api.schema.loaders import keyset_page
from api.schema.mutations import (
    AccountChange,
    AccountCommandInput,
    AccountResult,
    _account_result,
    _changed,
    _execute,
)
from api.schema.scalars import Channel, Connection, Position
from domain.errors import DomainError
from domain.values import ComplaintSeverity, ComplaintStatus
from projections import queries

strawberry.enum(ComplaintSeverity)
strawberry.enum(
    ComplaintStatus,
    description="REOPENED: open again after a resolution. CLOSED: final.",
)


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else span.total_seconds()


@strawberry.type(
    description="A complaint as the views show it. Due moments and breaches are "
    "worked out against the targets of its severity when it is read."
)
class Complaint:
    id: UUID
    account_id: UUID
    category: str
    severity: ComplaintSeverity
    status: ComplaintStatus
    description: str = strawberry.field(extensions=personal())
    channel: Channel
    contact_id: UUID | None
    manager: str | None = strawberry.field(description="The account's manager now.")
    filed_at: datetime
    filed_by: str
    acknowledged_at: datetime | None
    escalation_level: int = strawberry.field(description="0 until escalated.")
    escalated_to: str | None
    escalated_at: datetime | None
    escalation_reason: str | None = strawberry.field(extensions=personal())
    resolved_at: datetime | None = strawberry.field(
        description="The resolution that holds; null again once reopened."
    )
    resolution: str | None = strawberry.field(extensions=personal())
    root_cause: str | None = strawberry.field(extensions=personal())
    prevention_action: str | None = strawberry.field(extensions=personal())
    reopen_count: int
    reopened_at: datetime | None
    reopen_reason: str | None = strawberry.field(extensions=personal())
    closed_at: datetime | None
    time_to_acknowledge_seconds: float | None
    time_to_resolve_seconds: float | None = strawberry.field(
        description="From filing to the resolution that holds."
    )
    acknowledge_due_at: datetime
    resolve_due_at: datetime
    acknowledge_breached: bool = strawberry.field(
        description="Acknowledged late, or not yet and already overdue."
    )
    resolve_breached: bool = strawberry.field(
        description="Resolved late, or not yet and already overdue."
    )
    breached: bool = strawberry.field(description="Either target was missed.")
    updated_at: datetime
    position: Position

    @strawberry.field
    async def account(self, info: Info) -> Account | None:
        row = await info.context.accounts.load(self.account_id)
        return None if row is None else Account.from_row(row)

    @strawberry.field(
        description="The contact who complained, as the account knows them now; "
        "null once removed from the account."
    )
    async def contact(self, info: Info) -> Contact | None:
        if self.contact_id is None:
            return None
        row = await info.context.accounts.load(self.account_id)
        card = None if row is None else row["contacts"].get(str(self.contact_id))
        return None if card is None else Contact.from_json(card)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Complaint:
        return cls(
            id=row["complaint_id"],
            account_id=row["account_id"],
            category=row["category"],
            severity=ComplaintSeverity(row["severity"]),
            status=ComplaintStatus(row["status"]),
            description=row["description"],
            channel=Channel(row["channel"]),
            contact_id=row["contact_id"],
            manager=row["manager"],
            filed_at=row["filed_at"],
            filed_by=row["filed_by"],
            acknowledged_at=row["acknowledged_at"],
            escalation_level=row["escalation_level"],
            escalated_to=row["escalated_to"],
            escalated_at=row["escalated_at"],
            escalation_reason=row["escalation_reason"],
            resolved_at=row["resolved_at"],
            resolution=row["resolution"],
            root_cause=row["root_cause"],
            prevention_action=row["prevention_action"],
            reopen_count=row["reopen_count"],
            reopened_at=row["reopened_at"],
            reopen_reason=row["reopen_reason"],
            closed_at=row["closed_at"],
            time_to_acknowledge_seconds=_seconds(row["time_to_acknowledge"]),
            time_to_resolve_seconds=_seconds(row["time_to_resolve"]),
            acknowledge_due_at=row["acknowledge_due_at"],
            resolve_due_at=row["resolve_due_at"],
            acknowledge_breached=row["acknowledge_breached"],
            resolve_breached=row["resolve_breached"],
            breached=row["breached"],
            updated_at=row["updated_at"],
            position=row["position"],
        )


async def account_complaints(info: Info, account_id: UUID) -> list[Complaint]:
    """Every complaint of the account, batched across the accounts of a request."""
    rows = await info.context.complaints.load(account_id)
    return [Complaint.from_row(row) for row in rows]


@strawberry.type(
    description="How soon a complaint of this severity is to be acknowledged and "
    "resolved, counted from its filing (RAPPORT_COMPLAINT_TARGETS)."
)
class ComplaintTarget:
    severity: ComplaintSeverity
    acknowledge_within_seconds: float
    resolve_within_seconds: float


@strawberry.input
class ComplaintFilter:
    status: ComplaintStatus | None = None
    severity: ComplaintSeverity | None = None
    breached: bool | None = strawberry.field(
        default=None,
        description="True: complaints that missed a target, as of now (overdue "
        "ones included). False: those that have missed none so far.",
    )
    account_id: UUID | None = None
    manager: str | None = None


@strawberry.type
class ComplaintQueries:
    @strawberry.field(
        description="Complaints, newest filed first; keyset-paginated. Breaches are "
        "worked out as of the query, so they show as time passes."
    )
    async def complaints(
        self,
        info: Info,
        filter: ComplaintFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[Complaint]:
        where = filter or ComplaintFilter()
        wanted = queries.ComplaintFilter(
            status=where.status.value if where.status else None,
            severity=where.severity.value if where.severity else None,
            breached=where.breached,
            account_id=where.account_id,
            manager=where.manager,
            managers=info.context.managers(),
        )
        targets = info.context.runtime.settings.complaint_targets
        return await keyset_page(
            info,
            first=first,
            after=after,
            cursor=(datetime.fromisoformat, UUID, UUID),
            fetch=lambda conn, limit, key: queries.list_complaints(
                conn, wanted, targets, limit, key
            ),
            node=Complaint.from_row,
            key=lambda row: (
                row["filed_at"].isoformat(),
                row["account_id"],
                row["complaint_id"],
            ),
        )

    @strawberry.field(description="The targets complaints are measured against.")
    def complaint_targets(self, info: Info) -> list[ComplaintTarget]:
        targets = info.context.runtime.settings.complaint_targets
        return [
            ComplaintTarget(
                severity=severity,
                acknowledge_within_seconds=targets.of(severity).acknowledge.total_seconds(),
                resolve_within_seconds=targets.of(severity).resolve.total_seconds(),
            )
            for severity in ComplaintSeverity
        ]


@strawberry.type
class ComplaintFiled(AccountChange):
    complaint_id: UUID


FileComplaintResult = Annotated[
    ComplaintFiled | ValidationError | NotFoundError | ConcurrencyConflict | RuleViolation,
    strawberry.union("FileComplaintResult"),
]


def _moment(moment: datetime | None) -> datetime:
    return moment or datetime.now(tz=UTC)


_DEFAULTS_TO_NOW = (
    "With a time zone; defaults to now. Not before the complaint's last change."
)


@strawberry.input
class FileComplaintInput(AccountCommandInput):
    category: str = strawberry.field(description="What it is about, e.g. delivery.")
    severity: ComplaintSeverity
    description: str
    channel: Channel = strawberry.field(description="How the complaint came in.")
    complaint_id: UUID | None = strawberry.field(
        default=None, description="Client-chosen id; a new one when left out."
    )
    contact_id: UUID | None = strawberry.field(
        default=None, description="The current contact of the account who complained."
    )
    filed_at: datetime | None = strawberry.field(
        default=None,
        description="When the complaint came in, with a time zone; defaults to now. "
        "Its targets count from here.",
    )


@strawberry.input
class AcknowledgeComplaintInput(AccountCommandInput):
    complaint_id: UUID
    acknowledged_at: datetime | None = strawberry.field(
        default=None, description=_DEFAULTS_TO_NOW
    )


@strawberry.input
class EscalateComplaintInput(AccountCommandInput):
    complaint_id: UUID
    escalated_to: str = strawberry.field(description="Who can solve it.")
    level: int | None = strawberry.field(
        default=None,
        description="Higher than the complaint's current level (1 to 10); "
        "one above it when left out.",
    )
    reason: str = ""
    escalated_at: datetime | None = strawberry.field(
        default=None, description=_DEFAULTS_TO_NOW
    )


@strawberry.input
class ResolveComplaintInput(AccountCommandInput):
    complaint_id: UUID
    resolution: str = strawberry.field(description="How it was solved.")
    root_cause: str = strawberry.field(default="", description="What went wrong.")
    prevention_action: str = strawberry.field(
        default="", description="How recurrence is prevented."
    )
    resolved_at: datetime | None = strawberry.field(
        default=None, description=_DEFAULTS_TO_NOW
    )


@strawberry.input
class ReopenComplaintInput(AccountCommandInput):
    complaint_id: UUID
    reason: str
    reopened_at: datetime | None = strawberry.field(
        default=None, description=_DEFAULTS_TO_NOW
    )


@strawberry.input
class CloseComplaintInput(AccountCommandInput):
    complaint_id: UUID
    closed_at: datetime | None = strawberry.field(
        default=None, description=_DEFAULTS_TO_NOW
    )


@strawberry.type
class ComplaintMutations:
    @strawberry.mutation(
        description="Record a complaint. Its texts are the account's personal data "
        "(erased with the account); category, severity and times are not.",
        extensions=allow(*WRITERS),
    )
    async def file_complaint(
        self, info: Info, input: FileComplaintInput
    ) -> FileComplaintResult:
        app = info.context.runtime.app
        filed_at = _moment(input.filed_at)
        outcome = await _execute(
            info,
            lambda meta: app.file_complaint(
                meta,
                input.account_id,
                category=input.category,
                severity=input.severity,
                description=input.description,
                channel=input.channel,
                filed_at=filed_at,
                contact_id=input.contact_id,
                expected_version=input.expected_version,
                complaint_id=input.complaint_id,
            ),
        )
        if isinstance(outcome, DomainError):
            return error_result(outcome)
        assert outcome.created_id is not None  # noqa: S101 - file_complaint creates one
        return ComplaintFiled(
            complaint_id=outcome.created_id,
            **await _changed(info, outcome),  # type: ignore[arg-type]
        )

    @strawberry.mutation(
        description="Once; the time to acknowledge stops here.", extensions=allow(*WRITERS)
    )
    async def acknowledge_complaint(
        self, info: Info, input: AcknowledgeComplaintInput
    ) -> AccountResult:
        app = info.context.runtime.app
        acknowledged_at = _moment(input.acknowledged_at)
        return await _account_result(
            info,
            lambda meta: app.acknowledge_complaint(
                meta,
                input.account_id,
                input.complaint_id,
                acknowledged_at=acknowledged_at,
                expected_version=input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="While unresolved, each time to a higher level.",
        extensions=allow(*WRITERS),
    )
    async def escalate_complaint(
        self, info: Info, input: EscalateComplaintInput
    ) -> AccountResult:
        app = info.context.runtime.app
        escalated_at = _moment(input.escalated_at)
        return await _account_result(
            info,
            lambda meta: app.escalate_complaint(
                meta,
                input.account_id,
                input.complaint_id,
                escalated_to=input.escalated_to,
                escalated_at=escalated_at,
                level=input.level,
                reason=input.reason,
                expected_version=input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="Only an acknowledged complaint is resolved.",
        extensions=allow(*WRITERS),
    )
    async def resolve_complaint(
        self, info: Info, input: ResolveComplaintInput
    ) -> AccountResult:
        app = info.context.runtime.app
        resolved_at = _moment(input.resolved_at)
        return await _account_result(
            info,
            lambda meta: app.resolve_complaint(
                meta,
                input.account_id,
                input.complaint_id,
                resolution=input.resolution,
                resolved_at=resolved_at,
                root_cause=input.root_cause,
                prevention_action=input.prevention_action,
                expected_version=input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="A resolved complaint whose resolution did not hold; a closed "
        "one is final (file a new complaint).",
        extensions=allow(*WRITERS),
    )
    async def reopen_complaint(
        self, info: Info, input: ReopenComplaintInput
    ) -> AccountResult:
        app = info.context.runtime.app
        reopened_at = _moment(input.reopened_at)
        return await _account_result(
            info,
            lambda meta: app.reopen_complaint(
                meta,
                input.account_id,
                input.complaint_id,
                reason=input.reason,
                reopened_at=reopened_at,
                expected_version=input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="Only a resolved complaint; closed is final.",
        extensions=allow(*WRITERS),
    )
    async def close_complaint(
        self, info: Info, input: CloseComplaintInput
    ) -> AccountResult:
        app = info.context.runtime.app
        closed_at = _moment(input.closed_at)
        return await _account_result(
            info,
            lambda meta: app.close_complaint(
                meta,
                input.account_id,
                input.complaint_id,
                closed_at=closed_at,
                expected_version=input.expected_version,
            ),
        )
