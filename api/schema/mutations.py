"""One mutation per command. Each answers with the account as the views show it
after the change (read-your-writes), or with a typed error and nothing written."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

import psycopg
import strawberry
from graphql import ObjectValueNode, StringValueNode, ValueNode, VariableNode

from api.context import Info
from api.schema.access import (
    ADMINS,
    REASSIGNERS,
    WRITERS,
    Forbidden,
    allow,
    principal_of,
)
from api.schema.accounts import Account
from api.schema.errors import (
    ConcurrencyConflict,
    NotFoundError,
    RuleViolation,
    ValidationError,
    error_result,
)
from api.schema.scalars import (
    AccountKind,
    Channel,
    Classification,
    ContactChannelKind,
    Direction,
    Influence,
    MoneyInput,
    OccasionKind,
    Position,
    RelationshipType,
    Stage,
    Tier,
)
from domain import values
from domain.account import Occasion
from domain.application import CommandMeta, Outcome
from domain.errors import DomainError
from projections import queries


@strawberry.interface(description="What every successful command answers.")
class AccountChange:
    account_id: UUID
    version: int = strawberry.field(description="Pass as expectedVersion next time.")
    position: Position
    projected: bool = strawberry.field(
        description="False if the views had not caught up within the wait; "
        "`account` may then be older than this change."
    )
    account: Account | None


@strawberry.type
class AccountChanged(AccountChange):
    pass


@strawberry.type
class ContactAdded(AccountChange):
    contact_id: UUID


@strawberry.type
class InteractionLogged(AccountChange):
    interaction_id: UUID


AccountResult = Annotated[
    AccountChanged | ValidationError | NotFoundError | ConcurrencyConflict | RuleViolation,
    strawberry.union("AccountResult"),
]
AddContactResult = Annotated[
    ContactAdded | ValidationError | NotFoundError | ConcurrencyConflict | RuleViolation,
    strawberry.union("AddContactResult"),
]
LogInteractionResult = Annotated[
    InteractionLogged
    | ValidationError
    | NotFoundError
    | ConcurrencyConflict
    | RuleViolation,
    strawberry.union("LogInteractionResult"),
]

Command = Callable[[CommandMeta], Outcome]

log = logging.getLogger("rapport.api")


def _command_id(info: Info) -> UUID | None:
    """The mutation's ``input.commandId`` as the request gave it: in the document
    or in a variable, for the input or for the field itself."""
    raw = info._raw_info  # noqa: SLF001 - strawberry's own handle on graphql-core's info
    given_values: Any = raw.variable_values
    variables: dict[str, Any] = dict(getattr(given_values, "coerced", given_values) or {})

    def value(node: ValueNode | None) -> Any:
        if isinstance(node, VariableNode):
            return variables.get(node.name.value)
        if isinstance(node, ObjectValueNode):
            return {field.name.value: value(field.value) for field in node.fields}
        if isinstance(node, StringValueNode):
            return node.value
        return None

    arguments = raw.field_nodes[0].arguments or ()
    given = next((a.value for a in arguments if a.name.value == "input"), None)
    command_id = (value(given) or {}).get("commandId")
    return None if command_id is None else UUID(str(command_id))


async def _execute(info: Info, command: Command) -> Outcome | DomainError:
    context = info.context
    try:
        meta = context.command_meta(_command_id(info))
        return await context.runtime.call(command, meta)
    except DomainError as error:
        return error


async def _changed(info: Info, outcome: Outcome) -> dict[str, object]:
    """The fields every success payload shares, once the views show the change."""
    runtime = info.context.runtime
    projected = await runtime.watermark.wait(
        outcome.position, runtime.settings.read_wait_seconds
    )
    row = None
    try:
        async with runtime.pool.connection() as conn:
            rows = await queries.accounts_by_id(conn, [outcome.account_id])
        row = rows.get(outcome.account_id)
    except psycopg.Error:
        # The command is committed: answer with its outcome, not an error, so a
        # client never retries a write that happened.
        log.exception("reading back account %s failed", outcome.account_id)
        projected = False
    return {
        "account_id": outcome.account_id,
        "version": outcome.version,
        "position": outcome.position,
        "projected": projected,
        "account": None if row is None else Account.from_row(row),
    }


async def _account_result(info: Info, command: Command) -> AccountResult:
    outcome = await _execute(info, command)
    if isinstance(outcome, DomainError):
        return error_result(outcome)
    return AccountChanged(**await _changed(info, outcome))  # type: ignore[arg-type]


def _opening_manager(info: Info, manager: str | None) -> str | None:
    """Agents and managers open accounts within their reach, by default their own."""
    principal = principal_of(info)
    if principal.managers() is None:
        return manager
    chosen = manager or principal.actor
    if not principal.may_act_on(chosen):
        msg = f"as {principal.role}, {principal.actor} cannot open an account for {chosen}"
        raise Forbidden(msg)
    return chosen


COMMAND_ID = (
    "Makes the command idempotent: a retry with the same id writes nothing and "
    "answers with the first attempt's outcome (version, position, created ids), "
    "also when retries race."
)


@strawberry.input
class AccountCommandInput:
    """What every command on an existing account carries."""

    account_id: UUID
    expected_version: int | None = strawberry.field(
        default=None,
        description="The version the client based the command on; a mismatch is a "
        "ConcurrencyConflict and nothing is written.",
    )
    command_id: UUID | None = strawberry.field(default=None, description=COMMAND_ID)


@strawberry.input
class AddressInput:
    street: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = ""

    def to_value(self) -> values.Address:
        return values.Address(
            street=self.street,
            city=self.city,
            postal_code=self.postal_code,
            country=self.country,
        )


@strawberry.input
class ContactChannelInput:
    kind: ContactChannelKind
    value: str


def _channels(
    channels: list[ContactChannelInput] | None,
) -> tuple[values.ContactChannel, ...] | None:
    if channels is None:
        return None
    return tuple(values.ContactChannel(kind=c.kind, value=c.value) for c in channels)


@strawberry.input
class OpenAccountInput:
    name: str
    special_requirements: str = ""
    purchase_characteristics: str = ""
    id: UUID | None = strawberry.field(
        default=None, description="Client-chosen id; a new one when left out."
    )
    kind: AccountKind
    business_category: str = ""
    address: AddressInput | None = None
    channels: list[ContactChannelInput] | None = None
    founded_on: date | None = strawberry.field(
        default=None, description="When the customer was founded, if known."
    )
    manager: str | None = strawberry.field(
        default=None,
        description="Who manages it from the start. Agents and managers open "
        "accounts they manage: left out, it is themselves.",
    )
    command_id: UUID | None = strawberry.field(default=None, description=COMMAND_ID)


@strawberry.input
class UpdateProfileInput(AccountCommandInput):
    name: str | None = None
    business_category: str | None = None
    address: AddressInput | None = None
    channels: list[ContactChannelInput] | None = None
    special_requirements: str | None = None
    purchase_characteristics: str | None = None
    founded_on: date | None = None


@strawberry.input
class AddContactInput(AccountCommandInput):
    name: str
    contact_id: UUID | None = strawberry.field(
        default=None, description="Client-chosen id; a new one when left out."
    )
    role: str = ""
    influence: Influence = Influence.MEDIUM
    email: str | None = None
    phone: str | None = None
    birthday: date | None = None
    preferences: str = ""


@strawberry.input(
    description="Fields left out stay as they are; an empty string clears a text field."
)
class UpdateContactInput(AccountCommandInput):
    contact_id: UUID
    name: str | None = None
    role: str | None = None
    influence: Influence | None = None
    email: str | None = None
    phone: str | None = None
    birthday: date | None = None
    preferences: str | None = None


@strawberry.input
class RemoveContactInput(AccountCommandInput):
    contact_id: UUID
    reason: str


@strawberry.input
class EraseSubjectInput(AccountCommandInput):
    contact_id: UUID | None = strawberry.field(
        default=None,
        description="The contact to erase; without one, the account's own personal "
        "data and every contact's.",
    )
    reason: str = strawberry.field(
        description="Why, for the audit trail: a request reference, not a name."
    )


@strawberry.input
class AssignAccountManagerInput(AccountCommandInput):
    manager: str
    reason: str = ""


@strawberry.input
class ChangeClassificationInput(AccountCommandInput):
    classification: Classification
    reason: str = ""


@strawberry.input
class ChangeRelationshipTypeInput(AccountCommandInput):
    relationship_type: RelationshipType
    reason: str = ""


@strawberry.input
class ChangeTierInput(AccountCommandInput):
    tier: Tier
    reason: str


@strawberry.input
class ChangeStageInput(AccountCommandInput):
    stage: Stage
    reason: str = ""


@strawberry.input(description="The occasion a greeting marks.")
class OccasionInput:
    kind: OccasionKind
    year: int = strawberry.field(
        description="The year of the occasion greeted (see upcomingOccasions)."
    )
    contact_id: UUID | None = strawberry.field(
        default=None, description="Whose birthday; left out for the account's own."
    )

    def to_value(self) -> Occasion:
        return Occasion(kind=self.kind, year=self.year, contact_id=self.contact_id)


@strawberry.input
class LogInteractionInput(AccountCommandInput):
    channel: Channel
    interaction_id: UUID | None = strawberry.field(
        default=None, description="Client-chosen id; a new one when left out."
    )
    direction: Direction
    occurred_at: datetime = strawberry.field(description="With a time zone.")
    participants: list[str] = strawberry.field(default_factory=list)
    summary: str = ""
    outcome: str = ""
    effort_minutes: int = 0
    occasion: OccasionInput | None = strawberry.field(
        default=None,
        description="For a GREETING: the occasion it marks. Each occasion is greeted "
        "once a year; a second greeting is refused (OCCASION_ALREADY_GREETED).",
    )
    cost: MoneyInput | None = strawberry.field(
        default=None,
        description="For a GIFT: what it cost; counted in the cost of serving.",
    )


@strawberry.input
class RecordWrittenConfirmationInput(AccountCommandInput):
    interaction_id: UUID
    channel: Channel = Channel.EMAIL
    confirmed_at: datetime | None = strawberry.field(
        default=None, description="Defaults to now."
    )
    note: str = ""


@strawberry.type
class AccountMutations:
    @strawberry.mutation(extensions=allow(*WRITERS))
    async def open_account(self, info: Info, input: OpenAccountInput) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.open_account(
                meta,
                account_id=input.id,
                name=input.name,
                kind=input.kind,
                business_category=input.business_category,
                address=input.address.to_value() if input.address else None,
                channels=_channels(input.channels) or (),
                special_requirements=input.special_requirements,
                purchase_characteristics=input.purchase_characteristics,
                founded_on=input.founded_on,
                manager=_opening_manager(info, input.manager),
            ),
        )

    @strawberry.mutation(extensions=allow(*WRITERS))
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.update_profile(
                meta,
                input.account_id,
                input.expected_version,
                name=input.name,
                business_category=input.business_category,
                address=input.address.to_value() if input.address else None,
                channels=_channels(input.channels),
                special_requirements=input.special_requirements,
                purchase_characteristics=input.purchase_characteristics,
                founded_on=input.founded_on,
            ),
        )

    @strawberry.mutation(extensions=allow(*WRITERS))
    async def add_contact(self, info: Info, input: AddContactInput) -> AddContactResult:
        app = info.context.runtime.app
        outcome = await _execute(
            info,
            lambda meta: app.add_contact(
                meta,
                input.account_id,
                input.expected_version,
                contact_id=input.contact_id,
                name=input.name,
                role=input.role,
                influence=input.influence,
                email=input.email,
                phone=input.phone,
                birthday=input.birthday,
                preferences=input.preferences,
            ),
        )
        if isinstance(outcome, DomainError):
            return error_result(outcome)
        assert outcome.created_id is not None  # noqa: S101 - add_contact creates one
        return ContactAdded(contact_id=outcome.created_id, **await _changed(info, outcome))  # type: ignore[arg-type]

    @strawberry.mutation(extensions=allow(*WRITERS))
    async def update_contact(self, info: Info, input: UpdateContactInput) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.update_contact(
                meta,
                input.account_id,
                input.contact_id,
                input.expected_version,
                name=input.name,
                role=input.role,
                influence=input.influence,
                email=input.email,
                phone=input.phone,
                birthday=input.birthday,
                preferences=input.preferences,
            ),
        )

    @strawberry.mutation(extensions=allow(*WRITERS))
    async def remove_contact(self, info: Info, input: RemoveContactInput) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.remove_contact(
                meta,
                input.account_id,
                input.contact_id,
                input.reason,
                input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="Erase a person's personal data (GDPR article 17): the key that "
        "sealed it is destroyed as the erasure is recorded. History still replays, "
        "with the values reading [erased]; tiers, stages, times and amounts stay. "
        "The erasure is itself an event, PersonalDataErased. Admins only.",
        extensions=allow(*ADMINS),
    )
    async def erase_subject(self, info: Info, input: EraseSubjectInput) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.erase_personal_data(
                meta,
                input.account_id,
                contact_id=input.contact_id,
                reason=input.reason,
                expected_version=input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="Ownership changes are kept in managerHistory. Managers (within "
        "their team) and admins.",
        extensions=allow(*REASSIGNERS),
    )
    async def assign_account_manager(
        self,
        info: Info,
        input: AssignAccountManagerInput,
    ) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.assign_manager(
                meta, input.account_id, input.manager, input.reason, input.expected_version
            ),
        )

    @strawberry.mutation(extensions=allow(*WRITERS))
    async def change_classification(
        self,
        info: Info,
        input: ChangeClassificationInput,
    ) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.change_classification(
                meta,
                input.account_id,
                input.classification,
                input.reason,
                input.expected_version,
            ),
        )

    @strawberry.mutation(extensions=allow(*WRITERS))
    async def change_relationship_type(
        self,
        info: Info,
        input: ChangeRelationshipTypeInput,
    ) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.change_relationship_type(
                meta,
                input.account_id,
                input.relationship_type,
                input.reason,
                input.expected_version,
            ),
        )

    @strawberry.mutation(
        description="Any direction; a reason is required.", extensions=allow(*WRITERS)
    )
    async def change_tier(self, info: Info, input: ChangeTierInput) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.change_tier(
                meta, input.account_id, input.tier, input.reason, input.expected_version
            ),
        )

    @strawberry.mutation(
        description="One step forward (exploration → awareness → expansion → "
        "commitment), dissolution from any stage, exploration again from dissolution.",
        extensions=allow(*WRITERS),
    )
    async def change_stage(self, info: Info, input: ChangeStageInput) -> AccountResult:
        app = info.context.runtime.app
        return await _account_result(
            info,
            lambda meta: app.change_stage(
                meta, input.account_id, input.stage, input.reason, input.expected_version
            ),
        )

    @strawberry.mutation(extensions=allow(*WRITERS))
    async def log_interaction(
        self,
        info: Info,
        input: LogInteractionInput,
    ) -> LogInteractionResult:
        app = info.context.runtime.app
        outcome = await _execute(
            info,
            lambda meta: app.log_interaction(
                meta,
                input.account_id,
                channel=input.channel,
                direction=input.direction,
                occurred_at=input.occurred_at,
                participants=tuple(input.participants),
                summary=input.summary,
                outcome=input.outcome,
                effort_minutes=input.effort_minutes,
                expected_version=input.expected_version,
                interaction_id=input.interaction_id,
                occasion=input.occasion.to_value() if input.occasion else None,
                cost=(input.cost.amount, input.cost.currency) if input.cost else None,
            ),
        )
        if isinstance(outcome, DomainError):
            return error_result(outcome)
        assert outcome.created_id is not None  # noqa: S101 - log_interaction creates one
        return InteractionLogged(
            interaction_id=outcome.created_id,
            **await _changed(info, outcome),  # type: ignore[arg-type]
        )

    @strawberry.mutation(
        description="Only for oral interactions: call, meeting, visit, video.",
        extensions=allow(*WRITERS),
    )
    async def record_written_confirmation(
        self,
        info: Info,
        input: RecordWrittenConfirmationInput,
    ) -> AccountResult:
        app = info.context.runtime.app
        confirmed_at = input.confirmed_at or datetime.now(tz=UTC)
        return await _account_result(
            info,
            lambda meta: app.record_written_confirmation(
                meta,
                input.account_id,
                input.interaction_id,
                confirmed_at=confirmed_at,
                channel=input.channel,
                note=input.note,
                expected_version=input.expected_version,
            ),
        )
