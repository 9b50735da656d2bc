"""Time travel for auditors: an account's state at a past version or moment,
and what changed between two versions, computed by replaying its events."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.context import Info
from api.schema.access import AUDITORS, allow
from api.schema.accounts import AccountProfile, Address, Contact, ContactChannel
from api.schema.scalars import (
    InvalidArgument,
    Position,
)
from domain.account import Account
from domain.errors import AccountNotFound, InvalidValue
from eventstore.audit import FieldChange, jsonable
from eventstore.integrity import verify


@strawberry.type(description="An account's state replayed from its events.")
class AccountState(AccountProfile):
    as_of: datetime = strawberry.field(description="When this version's event occurred.")
    contacts: list[Contact]

    @classmethod
    def from_account(cls, account: Account) -> AccountState:
        contacts = sorted(
            account.contacts.values(), key=lambda c: (c.name.lower(), c.contact_id)
        )
        return cls(
            id=account.id,
            version=account.version,
            as_of=account.modified_on,
            name=account.name,
            kind=account.kind,
            business_category=account.business_category,
            address=Address(**jsonable(account.address)),
            channels=[ContactChannel(kind=c.kind, value=c.value) for c in account.channels],
            special_requirements=account.special_requirements,
            purchase_characteristics=account.purchase_characteristics,
            founded_on=account.founded_on,
            tier=account.tier,
            stage=account.stage,
            relationship_type=account.relationship_type,
            classification=account.classification,
            manager=account.manager,
            contacts=[Contact.from_json(jsonable(c)) for c in contacts],
            interaction_count=len(account.interactions),
            pending_written_confirmations=account.unconfirmed_oral_interactions,
            personal_data_erased=account.personal_data_erased,
        )


@strawberry.type(description="One field one event changed.")
class Change:
    version: int
    type: str
    field: str
    before: JSON | None
    after: JSON | None
    actor: str
    occurred_at: datetime

    @classmethod
    def from_change(cls, change: FieldChange) -> Change:
        return cls(
            version=change.version,
            type=change.type,
            field=change.field,
            before=change.before,
            after=change.after,
            actor=change.actor,
            occurred_at=change.occurred_at,
        )


async def _audit(info: Info, method: Any, *args: Any, **kwargs: Any) -> Any:
    runtime = info.context.runtime
    try:
        return await runtime.call(method, *args, **kwargs)
    except InvalidValue as error:
        raise InvalidArgument(str(error)) from None


@strawberry.type
class BrokenLink:
    position: Position
    account_id: UUID
    version: int
    problem: str


@strawberry.type(description="The result of recomputing the events' hash chain.")
class AuditReport:
    intact: bool
    events_checked: int
    head_position: Position | None
    head_hash: str | None = strawberry.field(
        description="SHA-256 of the newest event, hex."
    )
    first_break: BrokenLink | None


@strawberry.type
class AuditQueries:
    @strawberry.field(
        description="Recompute the hash chain over every stored event.",
        extensions=allow(*AUDITORS),
    )
    async def audit_report(self, info: Info) -> AuditReport:
        runtime = info.context.runtime
        report = await runtime.call(verify, runtime.audit.recorder)
        broken = report.first_break
        return AuditReport(
            intact=report.intact,
            events_checked=report.events,
            head_position=None
            if report.head_position is None
            else Position(report.head_position),
            head_hash=report.head_hash,
            first_break=None
            if broken is None
            else BrokenLink(
                position=Position(broken.position),
                account_id=broken.account_id,
                version=broken.version,
                problem=broken.problem,
            ),
        )

    @strawberry.field(
        description="The account at a past version, or as it stood at a moment; "
        "null if it did not exist yet.",
        extensions=allow(*AUDITORS),
    )
    async def account_at(
        self,
        info: Info,
        id: UUID,
        version: int | None = None,
        at: datetime | None = None,
    ) -> AccountState | None:
        try:
            account = await _audit(
                info, info.context.runtime.audit.state_at, id, version=version, at=at
            )
        except AccountNotFound:
            return None
        return AccountState.from_account(account)

    @strawberry.field(
        description="Field by field, what changed after fromVersion up to toVersion, "
        "and who changed it.",
        extensions=allow(*AUDITORS),
    )
    async def account_changes(
        self, info: Info, id: UUID, from_version: int, to_version: int
    ) -> list[Change]:
        try:
            changes = await _audit(
                info, info.context.runtime.audit.changes, id, from_version, to_version
            )
        except AccountNotFound:
            return []
        return [Change.from_change(c) for c in changes]
