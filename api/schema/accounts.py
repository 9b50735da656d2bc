"""Accounts as front-ends read them: the current view, its histories, its timeline."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import strawberry

from api.context import Info
from api.schema.access import personal
from api.schema.history import HistoryEvent, account_history
from api.schema.loaders import keyset_page
from api.schema.scalars import (
    AccountKind,
    Channel,
    Classification,
    Connection,
    ContactChannelKind,
    Direction,
    Influence,
    OccasionKind,
    Position,
    RelationshipType,
    Stage,
    Tier,
    connection,
    decode_cursor,
    page_size,
)
from projections import queries

if TYPE_CHECKING:
    from api.schema.complaints import Complaint
    from api.schema.deals import Deal, DealTrend, Money
    from api.schema.follow_ups import FollowUp, Goal
    from api.schema.health import Cadence, Economics, Health
    from api.schema.surveys import Satisfaction, Survey


@strawberry.type
class Address:
    street: str = strawberry.field(extensions=personal())
    city: str = strawberry.field(extensions=personal())
    postal_code: str = strawberry.field(extensions=personal())
    country: str = strawberry.field(extensions=personal())


@strawberry.type
class ContactChannel:
    kind: ContactChannelKind
    value: str


@strawberry.type
class Contact:
    id: UUID
    name: str = strawberry.field(extensions=personal())
    role: str
    influence: Influence
    email: str | None = strawberry.field(extensions=personal())
    phone: str | None = strawberry.field(extensions=personal())
    birthday: date | None = strawberry.field(extensions=personal())
    preferences: str = strawberry.field(extensions=personal())
    erased: bool = strawberry.field(
        description="The contact's personal data was erased: its fields read [erased]."
    )

    @classmethod
    def from_json(cls, card: dict[str, Any]) -> Contact:
        birthday = card.get("birthday")
        return cls(
            id=UUID(card["contact_id"]),
            name=card["name"],
            role=card.get("role", ""),
            influence=Influence(card.get("influence", "medium")),
            email=card.get("email") or None,
            phone=card.get("phone") or None,
            birthday=date.fromisoformat(birthday) if birthday else None,
            preferences=card.get("preferences", ""),
            erased=card.get("erased", False),
        )


@strawberry.type(description="One period in which the account held a value.")
class Period:
    value: str
    previous: str | None
    entered_at: datetime
    left_at: datetime | None
    reason: str
    actor: str
    position: Position

    @strawberry.field(description="Seconds in the period; open periods count until now.")
    def duration_seconds(self) -> float:
        end = self.left_at or datetime.now(tz=UTC)
        return (end - self.entered_at).total_seconds()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Period:
        return cls(
            value=row["value"],
            previous=row["previous"],
            entered_at=row["entered_at"],
            left_at=row["left_at"],
            reason=row["reason"],
            actor=row["actor"],
            position=row["position"],
        )


@strawberry.type(
    description="Time an account spent at one stage or tier, re-entries included."
)
class TimeSpent:
    value: str
    times_entered: int
    first_entered_at: datetime
    last_entered_at: datetime
    total_seconds: float
    is_current: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TimeSpent:
        spent: timedelta = row["time_spent"]
        return cls(
            value=row["value"],
            times_entered=row["times_entered"],
            first_entered_at=row["first_entered_at"],
            last_entered_at=row["last_entered_at"],
            total_seconds=spent.total_seconds(),
            is_current=row["is_current"],
        )


@strawberry.type(description="The occasion a greeting marked.")
class GreetedOccasion:
    kind: OccasionKind
    contact_id: UUID | None = strawberry.field(
        description="Whose birthday; null for the account's own occasions."
    )
    year: int


@strawberry.type
class Interaction:
    id: UUID
    channel: Channel
    direction: Direction
    occurred_at: datetime
    participants: list[str] = strawberry.field(extensions=personal())
    summary: str = strawberry.field(extensions=personal())
    outcome: str = strawberry.field(extensions=personal())
    effort_minutes: int
    oral: bool
    logged_by: str
    confirmed_at: datetime | None
    confirmation_channel: Channel | None
    confirmation_note: str | None = strawberry.field(extensions=personal())
    occasion: GreetedOccasion | None = strawberry.field(
        description="For a greeting: the occasion it marked, if any."
    )
    _cost: strawberry.Private[tuple[Decimal, str] | None]

    @strawberry.field(description="An oral interaction not yet confirmed in writing.")
    def awaiting_confirmation(self) -> bool:
        return self.oral and self.confirmed_at is None

    @strawberry.field(description="For a gift: what it cost, if recorded.")
    def cost(self) -> Annotated[Money, strawberry.lazy("api.schema.deals")] | None:
        from api.schema.deals import Money  # noqa: PLC0415 - it imports this module

        return None if self._cost is None else Money.of(*self._cost)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Interaction:
        channel = row["confirmation_channel"]
        return cls(
            id=row["interaction_id"],
            channel=Channel(row["channel"]),
            direction=Direction(row["direction"]),
            occurred_at=row["occurred_at"],
            participants=row["participants"],
            summary=row["summary"],
            outcome=row["outcome"],
            effort_minutes=row["effort_minutes"],
            oral=row["oral"],
            logged_by=row["logged_by"],
            confirmed_at=row["confirmed_at"],
            confirmation_channel=Channel(channel) if channel else None,
            confirmation_note=row["confirmation_note"],
            occasion=None
            if row["occasion_kind"] is None
            else GreetedOccasion(
                kind=OccasionKind(row["occasion_kind"]),
                contact_id=row["occasion_contact_id"],
                year=row["occasion_year"],
            ),
            _cost=None
            if row["cost_amount"] is None
            else (row["cost_amount"], row["cost_currency"]),
        )


@strawberry.interface(
    description="What the current view and a replayed past state both tell of an account."
)
class AccountProfile:
    id: UUID
    version: int
    name: str = strawberry.field(extensions=personal())
    kind: AccountKind
    business_category: str
    address: Address
    channels: list[ContactChannel] = strawberry.field(extensions=personal())
    special_requirements: str = strawberry.field(extensions=personal())
    purchase_characteristics: str = strawberry.field(extensions=personal())
    founded_on: date | None = strawberry.field(
        extensions=personal(),
        description="When the customer was founded: its founding day is an occasion "
        "to greet. Personal data, like the rest of the account's profile.",
    )
    tier: Tier
    stage: Stage
    relationship_type: RelationshipType | None
    classification: Classification | None
    manager: str | None
    interaction_count: int
    pending_written_confirmations: int = strawberry.field(
        description="Oral interactions (call, meeting, visit, video) still waiting "
        "for their written confirmation."
    )
    personal_data_erased: bool = strawberry.field(
        description="The account's personal data was erased: its name, address, "
        "channels, contacts and interaction texts read [erased]."
    )


@strawberry.type
class Account(AccountProfile):
    last_interaction_at: datetime | None
    open_complaints: int = strawberry.field(
        description="Complaints filed or reopened and not yet resolved."
    )
    opened_at: datetime
    updated_at: datetime
    position: Position
    _contacts: strawberry.Private[list[dict[str, Any]]]

    @strawberry.field
    def contacts(self) -> list[Contact]:
        cards = sorted(self._contacts, key=lambda c: (c["name"].lower(), c["contact_id"]))
        return [Contact.from_json(card) for card in cards]

    @strawberry.field(description="Whole days since the latest interaction, if any.")
    def days_since_last_contact(self) -> int | None:
        if self.last_interaction_at is None:
            return None
        return max(0, (datetime.now(tz=UTC) - self.last_interaction_at).days)

    @strawberry.field
    async def stage_history(self, info: Info) -> list[Period]:
        return await _periods(info, "stage_history", self.id)

    @strawberry.field
    async def tier_history(self, info: Info) -> list[Period]:
        return await _periods(info, "tier_history", self.id)

    @strawberry.field(description="Every manager the account had, kept on reassignment.")
    async def manager_history(self, info: Info) -> list[Period]:
        return await _periods(info, "manager_history", self.id)

    @strawberry.field
    async def time_in_stages(self, info: Info) -> list[TimeSpent]:
        rows = await info.context.periods["stage_durations"].load(self.id)
        return [TimeSpent.from_row(row) for row in rows]

    @strawberry.field
    async def time_in_tiers(self, info: Info) -> list[TimeSpent]:
        rows = await info.context.periods["tier_durations"].load(self.id)
        return [TimeSpent.from_row(row) for row in rows]

    @strawberry.field(description="Every event of the account, oldest first.")
    async def history(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
        types: list[str] | None = None,
    ) -> Connection[HistoryEvent]:
        return await account_history(info, self.id, first, after, types or [])

    @strawberry.field(description="Interactions, newest first.")
    async def interactions(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[Interaction]:
        limit = page_size(first, info.context.runtime.settings.max_page_size)
        if after is None:
            # The first page, batched across every account of the request.
            rows = await info.context.first_interactions.load((self.id, limit + 1))
        else:
            key = decode_cursor(after, datetime.fromisoformat, UUID)
            async with info.context.runtime.pool.connection() as conn:
                rows = await queries.interactions(conn, self.id, limit + 1, key)
        return connection(
            [Interaction.from_row(row) for row in rows],
            [(row["occurred_at"].isoformat(), row["interaction_id"]) for row in rows],
            limit,
            after=after,
        )

    @strawberry.field(
        description="Complaints, newest filed first; breaches as of the query."
    )
    async def complaints(
        self, info: Info
    ) -> list[Annotated[Complaint, strawberry.lazy("api.schema.complaints")]]:
        from api.schema.complaints import (  # noqa: PLC0415 - it imports this module
            account_complaints,
        )

        return await account_complaints(info, self.id)

    # Satisfaction and deals: their modules import this one, hence the lazy types.
    @strawberry.field(description="CSAT and NPS in the rolling window, with the trend.")
    async def satisfaction(
        self, info: Info
    ) -> Annotated[Satisfaction, strawberry.lazy("api.schema.surveys")]:
        from api.schema.surveys import account_satisfaction  # noqa: PLC0415

        return await account_satisfaction(info, self.id, self.version)

    @strawberry.field(description="Surveys, newest answered first.")
    async def surveys(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[Annotated[Survey, strawberry.lazy("api.schema.surveys")]]:
        from api.schema.surveys import account_surveys  # noqa: PLC0415

        return await account_surveys(info, self.id, self.version, first, after)

    @strawberry.field(description="Deals, newest closed first.")
    async def deals(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[Annotated[Deal, strawberry.lazy("api.schema.deals")]]:
        from api.schema.deals import account_deals  # noqa: PLC0415

        return await account_deals(info, self.id, self.version, first, after)

    @strawberry.field(description="The value of every deal, one sum per currency.")
    async def lifetime_value(
        self, info: Info
    ) -> list[Annotated[Money, strawberry.lazy("api.schema.deals")]]:
        from api.schema.deals import lifetime_value  # noqa: PLC0415

        return await lifetime_value(info, self.id, self.version)

    @strawberry.field
    async def deal_count(self, info: Info) -> int:
        from api.schema.deals import deal_summary  # noqa: PLC0415

        count: int = (await deal_summary(info, self.id, self.version))["deal_count"]
        return count

    @strawberry.field(description="When the latest deal was closed, if any.")
    async def last_deal_at(self, info: Info) -> datetime | None:
        from api.schema.deals import deal_summary  # noqa: PLC0415

        last: datetime | None = (await deal_summary(info, self.id, self.version))[
            "last_deal_at"
        ]
        return last

    @strawberry.field(
        description="Per currency with deals in the last 180 days: the last 90 days' "
        "value against the 90 before."
    )
    async def deal_trend(
        self, info: Info
    ) -> list[Annotated[DealTrend, strawberry.lazy("api.schema.deals")]]:
        from api.schema.deals import deal_trend  # noqa: PLC0415

        return await deal_trend(info, self.id, self.version)

    @strawberry.field(description="Follow-ups, soonest due first; overdue as of the query.")
    async def follow_ups(
        self, info: Info
    ) -> list[Annotated[FollowUp, strawberry.lazy("api.schema.follow_ups")]]:
        from api.schema.follow_ups import account_follow_ups  # noqa: PLC0415

        return await account_follow_ups(info, self.id, self.version)

    @strawberry.field(description="Goals agreed with the customer, soonest due first.")
    async def goals(
        self, info: Info
    ) -> list[Annotated[Goal, strawberry.lazy("api.schema.follow_ups")]]:
        from api.schema.follow_ups import account_goals  # noqa: PLC0415

        return await account_goals(info, self.id, self.version)

    # Cadence, health and economics: worked out as of the query (api.schema.health).
    @strawberry.field(description="Contact against the tier's cadence, as of the query.")
    async def cadence(
        self, info: Info
    ) -> Annotated[Cadence, strawberry.lazy("api.schema.health")]:
        from api.schema.health import account_cadence  # noqa: PLC0415

        return await account_cadence(info, self.id, self.version)

    @strawberry.field(description="A health score 0-100 with the factors that made it.")
    async def health(
        self, info: Info
    ) -> Annotated[Health, strawberry.lazy("api.schema.health")]:
        from api.schema.health import account_health  # noqa: PLC0415

        return await account_health(info, self.id, self.version)

    @strawberry.field(description="Cost of serving against deal value; luxury flag.")
    async def economics(
        self, info: Info
    ) -> Annotated[Economics, strawberry.lazy("api.schema.health")]:
        from api.schema.health import account_economics  # noqa: PLC0415

        return await account_economics(info, self.id, self.version)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Account:
        address = row["address"]
        return cls(
            id=row["account_id"],
            name=row["name"],
            kind=AccountKind(row["kind"]),
            business_category=row["business_category"],
            address=Address(
                street=address.get("street", ""),
                city=address.get("city", ""),
                postal_code=address.get("postal_code", ""),
                country=address.get("country", ""),
            ),
            channels=[
                ContactChannel(kind=ContactChannelKind(c["kind"]), value=c["value"])
                for c in row["channels"]
            ],
            special_requirements=row["special_requirements"],
            purchase_characteristics=row["purchase_characteristics"],
            founded_on=row["founded_on"],
            tier=Tier(row["tier"]),
            stage=Stage(row["stage"]),
            relationship_type=RelationshipType(row["relationship_type"])
            if row["relationship_type"]
            else None,
            classification=Classification(row["classification"])
            if row["classification"]
            else None,
            manager=row["manager"],
            interaction_count=row["interaction_count"],
            last_interaction_at=row["last_interaction_at"],
            pending_written_confirmations=row["pending_confirmations"],
            personal_data_erased=row["personal_data_erased"],
            open_complaints=row["open_complaints"],
            opened_at=row["opened_at"],
            updated_at=row["updated_at"],
            version=row["version"],
            position=row["position"],
            _contacts=list(row["contacts"].values()),
        )


async def _periods(info: Info, table: str, account_id: UUID) -> list[Period]:
    rows = await info.context.periods[table].load(account_id)
    return [Period.from_row(row) for row in rows]


@strawberry.input
class AccountFilter:
    tier: Tier | None = None
    stage: Stage | None = None
    manager: str | None = None
    search: str | None = strawberry.field(
        default=None, description="Part of the account's name, case-insensitive."
    )


@strawberry.type
class AccountQueries:
    @strawberry.field
    async def account(self, info: Info, id: UUID) -> Account | None:
        row = await info.context.accounts.load(id)
        return None if row is None else Account.from_row(row)

    @strawberry.field(description="Accounts by name; keyset-paginated, no offset limit.")
    async def accounts(
        self,
        info: Info,
        filter: AccountFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[Account]:
        where = filter or AccountFilter()
        wanted = queries.AccountFilter(
            tier=where.tier.value if where.tier else None,
            stage=where.stage.value if where.stage else None,
            manager=where.manager,
            search=where.search,
            managers=info.context.managers(),
        )

        def node(row: dict[str, Any]) -> Account:
            info.context.accounts.prime(row["account_id"], row)
            return Account.from_row(row)

        return await keyset_page(
            info,
            first=first,
            after=after,
            cursor=(str, UUID),
            fetch=lambda conn, limit, key: queries.list_accounts(conn, wanted, limit, key),
            node=node,
            key=lambda row: (row["name"], row["account_id"]),
        )
