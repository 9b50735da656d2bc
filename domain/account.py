"""The Account aggregate: the customer file and the relationship's history.

Commands (public methods) check the rules and then trigger an event; each
event's ``apply`` only mutates state, so replaying history never re-runs a
rule and never raises.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, SafeUUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as AggregateSnapshot

from domain.errors import (
    AlreadyConfirmed,
    ComplaintAlreadyAcknowledged,
    ComplaintAlreadyClosed,
    ComplaintAlreadyResolved,
    ComplaintNotAcknowledged,
    ComplaintNotFound,
    ComplaintNotResolved,
    ConfirmationNotApplicable,
    ContactNotFound,
    DealNotFound,
    EscalationLevelNotHigher,
    FollowUpAlreadyCancelled,
    FollowUpAlreadyCompleted,
    FollowUpExists,
    FollowUpNotFound,
    GoalAlreadyAchieved,
    GoalAlreadyDropped,
    GoalNotFound,
    InteractionNotFound,
    InvalidValue,
    OccasionAlreadyGreeted,
    OccasionNotFound,
    StageTransitionNotAllowed,
    SubjectErased,
    UnchangedValue,
)
from domain.money import amount_in, currency_code
from domain.personal import PersonalFields, Rewrite, erased_value
from domain.values import (
    RECOMMEND_SCALE,
    AccountKind,
    Address,
    Channel,
    Classification,
    ComplaintSeverity,
    ComplaintStatus,
    ContactChannel,
    Direction,
    FollowedKind,
    FollowUpStatus,
    GoalStatus,
    Influence,
    OccasionKind,
    PurchaseIntent,
    RelationshipType,
    SatisfactionLevel,
    Stage,
    Tier,
    bounded_text,
    due_date,
    due_moment,
    email_address,
    past_date,
    past_moment,
    phone_number,
    required_text,
    stage_transition_allowed,
    valid_address,
    valid_channels,
)

MAX_EFFORT_MINUTES = 24 * 60
MAX_TEXT = 4000
MAX_PARTICIPANTS = 100
MAX_ESCALATION_LEVEL = 10


@dataclass(frozen=True)
class Contact:
    """A key person at the customer, as the account currently knows them."""

    contact_id: UUID
    name: str
    role: str
    influence: Influence
    email: str | None
    phone: str | None
    birthday: date | None
    preferences: str
    erased: bool = False

    def erase(self) -> Contact:
        return replace(
            self,
            erased=True,
            **{name: erased_value(getattr(self, name)) for name in CONTACT_PERSONAL.fields},
        )


@dataclass(frozen=True)
class InteractionRecord:
    """What the rules need to remember about a logged interaction: its channel,
    and, for a call, meeting, visit or video call (which await a written
    confirmation), when it happened and whether it was confirmed."""

    channel: Channel
    occurred_at: datetime | None
    """None for an interaction in writing: nothing awaits its confirmation."""
    confirmed: bool

    @classmethod
    def logged(cls, channel: Channel, occurred_at: datetime) -> InteractionRecord:
        """The record of a newly logged interaction (one shared record per
        written channel: an account of many e-mails holds no moment for each)."""
        return _WRITTEN.get(channel) or cls(channel, occurred_at, confirmed=False)


_CHANNELS = {str(channel): channel for channel in Channel}
_WRITTEN = {
    channel: InteractionRecord(channel, None, confirmed=False)
    for channel in Channel
    if not channel.is_oral
}


def pack_interactions(records: dict[UUID, InteractionRecord]) -> dict[str, list[Any]]:
    """The interaction records as a snapshot keeps them: one list per field.

    An account may hold thousands of records. As plain lists of strings they
    decode at the JSON parser's own speed, where a JSON object per record (and
    per moment in it) costs a call into the transcoder each.
    """
    return {
        "ids": [key.hex for key in records],
        "channels": [str(record.channel) for record in records.values()],
        "occurred_at": [
            None if record.occurred_at is None else record.occurred_at.isoformat()
            for record in records.values()
        ],
        "confirmed": [record.confirmed for record in records.values()],
    }


_UNKNOWN_SAFETY = SafeUUID.unknown


def uuid_of_hex(digits: str) -> UUID:
    """``UUID(hex=digits)`` for digits known to be a UUID's 32, as the store
    writes them (a snapshot's packed ids, an event's ``uuid_hex`` values).

    Built the way CPython's ``UUID._from_int`` (3.14) builds one, without the
    parsing and checks that make ``UUID()`` the larger part of unpacking.
    """
    uuid = object.__new__(UUID)
    object.__setattr__(uuid, "int", int(digits, 16))
    object.__setattr__(uuid, "is_safe", _UNKNOWN_SAFETY)
    return uuid


def unpack_interactions(packed: dict[str, list[Any]]) -> dict[UUID, InteractionRecord]:
    uuid, moment, written = uuid_of_hex, datetime.fromisoformat, _WRITTEN
    return {
        uuid(key): written.get(channel) or InteractionRecord(channel, moment(at), confirmed)
        for key, channel, at, confirmed in zip(
            packed["ids"],
            map(_CHANNELS.__getitem__, packed["channels"]),
            packed["occurred_at"],
            packed["confirmed"],
            strict=True,
        )
    }


@dataclass(frozen=True)
class ComplaintRecord:
    """What the rules need to remember about a complaint; its texts stay in
    the events (they are the account's personal data)."""

    status: ComplaintStatus
    escalation_level: int
    updated_at: datetime
    """The latest moment of its lifecycle: the next one cannot precede it."""


@dataclass(frozen=True)
class Occasion:
    """What a greeting marks: a contact's birthday (``contact_id``), or the
    account's founding day or first deal's anniversary, in ``year``."""

    kind: OccasionKind
    year: int
    contact_id: UUID | None = None


def occasion_key(kind: OccasionKind, contact_id: UUID | None, year: int) -> str:
    return f"{kind}:{contact_id or '-'}:{year}"


def _reason(reason: str) -> str:
    return required_text("reason", reason, max_length=MAX_TEXT)


class Account(Aggregate):
    """A customer the company serves, and everything that shaped the relationship."""

    class Snapshot(AggregateSnapshot):
        """The state as JSON can hold it: maps keyed by id become lists."""

        @classmethod
        def take(cls, aggregate: Any) -> Account.Snapshot:
            snapshot: Account.Snapshot = super().take(aggregate)
            snapshot.state["contacts"] = list(aggregate.contacts.values())
            snapshot.state["former_contacts"] = list(aggregate.former_contacts.values())
            snapshot.state["interactions"] = pack_interactions(aggregate.interactions)
            for name in (
                "complaints",
                "surveys",
                "deals",
                "follow_ups",
                "goals",
            ):
                snapshot.state[name] = [
                    [str(key), record] for key, record in getattr(aggregate, name).items()
                ]
            return snapshot

        def mutate(self, _: None) -> Account:
            account = super().mutate(None)
            assert isinstance(account, Account)  # noqa: S101 - this class's own snapshot
            state = vars(account)
            for name in ("contacts", "former_contacts"):
                state[name] = {c.contact_id: c for c in state[name]}
            state["interactions"] = unpack_interactions(state["interactions"])
            for name in ("complaints", "surveys", "deals"):
                state[name] = {UUID(k): r for k, r in state[name]}
            state["follow_ups"] = {
                UUID(k): FollowUpStatus(v) for k, v in state["follow_ups"]
            }
            state["goals"] = {UUID(k): GoalStatus(v) for k, v in state["goals"]}
            state["channels"] = tuple(state["channels"])
            state["kind"] = AccountKind(state["kind"])
            state["tier"] = Tier(state["tier"])
            state["stage"] = Stage(state["stage"])
            for name, vocabulary in (
                ("relationship_type", RelationshipType),
                ("classification", Classification),
            ):
                if state[name] is not None:
                    state[name] = vocabulary(state[name])
            return account

    # Version 2 of the state keeps the customer file's special requirements
    # and purchase characteristics (snapshots of version 1 lack them).
    # Version 3 keeps removed contacts (they may still be erased) and whether
    # the account's personal data was erased. Version 4 keeps complaints.
    # Version 5 keeps the ids of surveys and deals. Version 6 keeps follow-ups
    # and goals (where each stands). Version 7 keeps the founding date and the
    # occasions greeted. Version 8 keeps the interaction records as one list
    # per field (``pack_interactions``), not a JSON object per record, and no
    # moment for an interaction in writing.
    class_version = 8

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["special_requirements"] = ""
        state["purchase_characteristics"] = ""

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["former_contacts"] = []
        state["personal_data_erased"] = False

    @staticmethod
    def upcast_v3_v4(state: dict[str, Any]) -> None:
        state["complaints"] = []

    @staticmethod
    def upcast_v4_v5(state: dict[str, Any]) -> None:
        state["surveys"] = []
        state["deals"] = []

    @staticmethod
    def upcast_v5_v6(state: dict[str, Any]) -> None:
        state["follow_ups"] = []
        state["goals"] = []

    @staticmethod
    def upcast_v6_v7(state: dict[str, Any]) -> None:
        state["founded_on"] = None
        state["greetings"] = {}

    @staticmethod
    def upcast_v7_v8(state: dict[str, Any]) -> None:
        state["interactions"] = pack_interactions(
            {UUID(key): record for key, record in state["interactions"]}
        )

    class AccountOpened(Aggregate.Created):
        """Version 2 adds special requirements and purchase characteristics;
        version 3 the founding date (the founding day is an occasion to greet)."""

        class_version = 3

        name: str
        kind: AccountKind
        business_category: str
        address: Address
        channels: tuple[ContactChannel, ...]
        special_requirements: str
        purchase_characteristics: str
        founded_on: date | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["special_requirements"] = ""
            state["purchase_characteristics"] = ""

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["founded_on"] = None

    def __init__(
        self,
        *,
        name: str,
        kind: AccountKind,
        business_category: str,
        address: Address,
        channels: tuple[ContactChannel, ...],
        special_requirements: str,
        purchase_characteristics: str,
        founded_on: date | None,
    ) -> None:
        self.name = name
        self.kind = AccountKind(kind)
        self.business_category = business_category
        self.address = address
        self.channels = tuple(channels)
        self.special_requirements = special_requirements
        self.purchase_characteristics = purchase_characteristics
        self.founded_on = founded_on
        self.tier = Tier.TRANSACTIONAL
        self.stage = Stage.EXPLORATION
        self.relationship_type: RelationshipType | None = None
        self.classification: Classification | None = None
        self.manager: str | None = None
        self.contacts: dict[UUID, Contact] = {}
        self.former_contacts: dict[UUID, Contact] = {}
        self.personal_data_erased = False
        self.interactions: dict[UUID, InteractionRecord] = {}
        self.complaints: dict[UUID, ComplaintRecord] = {}
        self.surveys: dict[UUID, datetime] = {}
        """When each survey was answered, by survey id."""
        self.deals: dict[UUID, datetime] = {}
        """When each deal was closed, by deal id."""
        self.follow_ups: dict[UUID, FollowUpStatus] = {}
        self.goals: dict[UUID, GoalStatus] = {}
        self.greetings: dict[str, UUID] = {}
        """The interaction that greeted each occasion, by ``occasion_key``."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Account:
        """A copy for a command, cheap however long the history: every value
        the state holds is immutable, so only its containers are copied."""
        copy = object.__new__(type(self))
        copy.__dict__.update(
            {
                name: type(value)(value) if isinstance(value, dict | list | set) else value
                for name, value in self.__dict__.items()
            }
        )
        return copy

    @classmethod
    def open(
        cls,
        *,
        account_id: UUID | None = None,
        name: str,
        kind: AccountKind,
        business_category: str = "",
        address: Address | None = None,
        channels: tuple[ContactChannel, ...] = (),
        special_requirements: str = "",
        purchase_characteristics: str = "",
        founded_on: date | None = None,
    ) -> Account:
        return cls._create(
            cls.AccountOpened,
            id=account_id or uuid4(),
            name=required_text("name", name),
            kind=AccountKind(kind),
            business_category=bounded_text("businessCategory", business_category, 200),
            address=valid_address("address", address or Address()),
            channels=valid_channels("channels", tuple(channels)),
            special_requirements=bounded_text(
                "specialRequirements", special_requirements, MAX_TEXT
            ),
            purchase_characteristics=bounded_text(
                "purchaseCharacteristics", purchase_characteristics, MAX_TEXT
            ),
            founded_on=past_date("foundedOn", founded_on),
        )

    # -- profile ---------------------------------------------------------------

    class ProfileUpdated(Aggregate.Event):
        """Only the fields that changed are set; ``None`` means unchanged.

        Version 2 adds special requirements and purchase characteristics;
        version 3 the founding date.
        """

        class_version = 3

        name: str | None
        business_category: str | None
        address: Address | None
        channels: tuple[ContactChannel, ...] | None
        special_requirements: str | None
        purchase_characteristics: str | None
        founded_on: date | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["special_requirements"] = None
            state["purchase_characteristics"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["founded_on"] = None

        def apply(self, aggregate: Account) -> None:
            if self.name is not None:
                aggregate.name = self.name
            if self.business_category is not None:
                aggregate.business_category = self.business_category
            if self.address is not None:
                aggregate.address = self.address
            if self.channels is not None:
                aggregate.channels = tuple(self.channels)
            if self.special_requirements is not None:
                aggregate.special_requirements = self.special_requirements
            if self.purchase_characteristics is not None:
                aggregate.purchase_characteristics = self.purchase_characteristics
            if self.founded_on is not None:
                aggregate.founded_on = self.founded_on

    def update_profile(
        self,
        *,
        name: str | None = None,
        business_category: str | None = None,
        address: Address | None = None,
        channels: tuple[ContactChannel, ...] | None = None,
        special_requirements: str | None = None,
        purchase_characteristics: str | None = None,
        founded_on: date | None = None,
    ) -> None:
        self._keeps_personal_data()
        changes: dict[str, Any] = {
            "name": None if name is None else required_text("name", name),
            "business_category": None
            if business_category is None
            else bounded_text("businessCategory", business_category, 200),
            "address": None if address is None else valid_address("address", address),
            "channels": None if channels is None else valid_channels("channels", channels),
            "special_requirements": None
            if special_requirements is None
            else bounded_text("specialRequirements", special_requirements, MAX_TEXT),
            "purchase_characteristics": None
            if purchase_characteristics is None
            else bounded_text(
                "purchaseCharacteristics", purchase_characteristics, MAX_TEXT
            ),
            "founded_on": past_date("foundedOn", founded_on),
        }
        changes = {k: (v if v != getattr(self, k) else None) for k, v in changes.items()}
        if all(v is None for v in changes.values()):
            raise UnchangedValue("the profile update changes nothing")
        self.trigger_event(self.ProfileUpdated, **changes)

    # -- contacts --------------------------------------------------------------

    class ContactAdded(Aggregate.Event):
        contact_id: UUID
        name: str
        role: str
        influence: Influence
        email: str | None
        phone: str | None
        birthday: date | None
        preferences: str

        def apply(self, aggregate: Account) -> None:
            aggregate.contacts[self.contact_id] = Contact(
                contact_id=self.contact_id,
                name=self.name,
                role=self.role,
                influence=Influence(self.influence),
                email=self.email,
                phone=self.phone,
                birthday=self.birthday,
                preferences=self.preferences,
            )

    def add_contact(
        self,
        *,
        contact_id: UUID,
        name: str,
        role: str = "",
        influence: Influence = Influence.MEDIUM,
        email: str | None = None,
        phone: str | None = None,
        birthday: date | None = None,
        preferences: str = "",
    ) -> None:
        self._keeps_personal_data()
        if contact_id in self.contacts or contact_id in self.former_contacts:
            raise InvalidValue("contactId", f"contact {contact_id} already exists")
        if contact_id == self.id:
            # The account's own personal data is a subject of that id.
            raise InvalidValue("contactId", "a contact cannot have the account's id")
        self.trigger_event(
            self.ContactAdded,
            contact_id=contact_id,
            name=required_text("name", name),
            role=bounded_text("role", role, 200),
            influence=Influence(influence),
            email=email_address("email", email),
            phone=phone_number("phone", phone),
            birthday=past_date("birthday", birthday),
            preferences=bounded_text("preferences", preferences, MAX_TEXT),
        )

    class ContactUpdated(Aggregate.Event):
        """Only the fields that changed are set; ``None`` means unchanged."""

        contact_id: UUID
        name: str | None
        role: str | None
        influence: Influence | None
        email: str | None
        phone: str | None
        birthday: date | None
        preferences: str | None

        def apply(self, aggregate: Account) -> None:
            contact = aggregate.contacts[self.contact_id]
            changes = {
                field: getattr(self, field)
                for field in _CONTACT_FIELDS
                if getattr(self, field) is not None
            }
            if "influence" in changes:
                changes["influence"] = Influence(changes["influence"])
            aggregate.contacts[self.contact_id] = replace(contact, **changes)

    def update_contact(
        self,
        *,
        contact_id: UUID,
        name: str | None = None,
        role: str | None = None,
        influence: Influence | None = None,
        email: str | None = None,
        phone: str | None = None,
        birthday: date | None = None,
        preferences: str | None = None,
    ) -> None:
        contact = self._contact(contact_id)
        proposed: dict[str, Any] = {
            "name": None if name is None else required_text("name", name),
            "role": None if role is None else bounded_text("role", role, 200),
            "influence": None if influence is None else Influence(influence),
            "email": None if email is None else email_address("email", email) or "",
            "phone": None if phone is None else phone_number("phone", phone) or "",
            "birthday": past_date("birthday", birthday),
            "preferences": None
            if preferences is None
            else bounded_text("preferences", preferences, MAX_TEXT),
        }
        changes = {
            k: (v if v != getattr(contact, k) else None) for k, v in proposed.items()
        }
        if all(v is None for v in changes.values()):
            raise UnchangedValue("the contact update changes nothing")
        self.trigger_event(self.ContactUpdated, contact_id=contact_id, **changes)

    class ContactRemoved(Aggregate.Event):
        contact_id: UUID
        reason: str

        def apply(self, aggregate: Account) -> None:
            contact = aggregate.contacts.pop(self.contact_id)
            aggregate.former_contacts[self.contact_id] = contact

    def remove_contact(self, *, contact_id: UUID, reason: str) -> None:
        self._contact(contact_id)
        self.trigger_event(
            self.ContactRemoved, contact_id=contact_id, reason=_reason(reason)
        )

    def _contact(self, contact_id: UUID) -> Contact:
        try:
            contact = self.contacts[contact_id]
        except KeyError:
            raise ContactNotFound(f"contact {contact_id} is not on this account") from None
        if contact.erased:
            raise SubjectErased(f"contact {contact_id}'s personal data was erased")
        return contact

    def _keeps_personal_data(self) -> None:
        if self.personal_data_erased:
            raise SubjectErased(
                "this account's personal data was erased; it records no new personal data"
            )

    # -- erasure of personal data ------------------------------------------------

    class PersonalDataErased(Aggregate.Event):
        """A contact's (or, with no contact, the whole account's) personal data
        was erased: the event store destroys the subject's key as this event is
        recorded, and earlier events read back with the values erased.
        """

        contact_id: UUID | None
        reason: str

        def apply(self, aggregate: Account) -> None:
            if self.contact_id is None:
                aggregate.personal_data_erased = True
                for name in ACCOUNT_PERSONAL.fields:
                    setattr(aggregate, name, erased_value(getattr(aggregate, name)))
                targets = [*aggregate.contacts, *aggregate.former_contacts]
            else:
                targets = [self.contact_id]
            for contacts in (aggregate.contacts, aggregate.former_contacts):
                for contact_id in targets:
                    if contact_id in contacts:
                        contacts[contact_id] = contacts[contact_id].erase()

    def erase_personal_data(self, *, contact_id: UUID | None = None, reason: str) -> None:
        """Erase one contact's personal data, or with no contact the account's."""
        reason = _reason(reason)
        if contact_id is None:
            self._keeps_personal_data()
        else:
            contact = self.contacts.get(contact_id) or self.former_contacts.get(contact_id)
            if contact is None:
                raise ContactNotFound(f"contact {contact_id} was never on this account")
            if contact.erased:
                raise SubjectErased(
                    f"contact {contact_id}'s personal data is already erased"
                )
        self.trigger_event(self.PersonalDataErased, contact_id=contact_id, reason=reason)

    # -- ownership and classification -------------------------------------------

    class AccountManagerAssigned(Aggregate.Event):
        """Ownership changes are history: the previous manager is kept."""

        manager: str
        previous_manager: str | None
        reason: str

        def apply(self, aggregate: Account) -> None:
            aggregate.manager = self.manager

    def assign_manager(self, *, manager: str, reason: str = "") -> None:
        manager = required_text("manager", manager)
        if manager == self.manager:
            raise UnchangedValue(f"{manager} already manages this account")
        self.trigger_event(
            self.AccountManagerAssigned,
            manager=manager,
            previous_manager=self.manager,
            reason=bounded_text("reason", reason, MAX_TEXT),
        )

    class ClassificationChanged(Aggregate.Event):
        classification: Classification
        previous: Classification | None
        reason: str

        def apply(self, aggregate: Account) -> None:
            aggregate.classification = Classification(self.classification)

    def change_classification(
        self, *, classification: Classification, reason: str = ""
    ) -> None:
        classification = Classification(classification)
        if classification is self.classification:
            raise UnchangedValue(f"the account is already class {classification}")
        self.trigger_event(
            self.ClassificationChanged,
            classification=classification,
            previous=self.classification,
            reason=bounded_text("reason", reason, MAX_TEXT),
        )

    class RelationshipTypeChanged(Aggregate.Event):
        relationship_type: RelationshipType
        previous: RelationshipType | None
        reason: str

        def apply(self, aggregate: Account) -> None:
            aggregate.relationship_type = RelationshipType(self.relationship_type)

    def change_relationship_type(
        self, *, relationship_type: RelationshipType, reason: str = ""
    ) -> None:
        relationship_type = RelationshipType(relationship_type)
        if relationship_type is self.relationship_type:
            raise UnchangedValue(f"the account is already served as {relationship_type}")
        self.trigger_event(
            self.RelationshipTypeChanged,
            relationship_type=relationship_type,
            previous=self.relationship_type,
            reason=bounded_text("reason", reason, MAX_TEXT),
        )

    # -- tier and stage ---------------------------------------------------------

    class TierChanged(Aggregate.Event):
        tier: Tier
        previous: Tier
        reason: str

        def apply(self, aggregate: Account) -> None:
            aggregate.tier = Tier(self.tier)

    def change_tier(self, *, tier: Tier, reason: str) -> None:
        """Any direction is allowed; a relationship may deepen or be scaled back."""
        tier = Tier(tier)
        if tier is self.tier:
            raise UnchangedValue(f"the account is already at tier {tier}")
        self.trigger_event(
            self.TierChanged, tier=tier, previous=self.tier, reason=_reason(reason)
        )

    class StageChanged(Aggregate.Event):
        stage: Stage
        previous: Stage
        reason: str

        def apply(self, aggregate: Account) -> None:
            aggregate.stage = Stage(self.stage)

    def change_stage(self, *, stage: Stage, reason: str = "") -> None:
        stage = Stage(stage)
        if not stage_transition_allowed(self.stage, stage):
            raise StageTransitionNotAllowed(
                f"an account cannot move from {self.stage} to {stage}"
            )
        self.trigger_event(
            self.StageChanged,
            stage=stage,
            previous=self.stage,
            reason=bounded_text("reason", reason, MAX_TEXT),
        )

    # -- interactions -----------------------------------------------------------

    class InteractionLogged(Aggregate.Event):
        """Version 2 adds the occasion a greeting marks (its kind, the contact
        for a birthday, and the year of the occasion) and what a gift cost (an
        exact decimal amount in an ISO 4217 currency); both are ``None``
        otherwise, and in version 1 events."""

        class_version = 2

        interaction_id: UUID
        channel: Channel
        direction: Direction
        occurred_at: datetime
        participants: tuple[str, ...]
        summary: str
        outcome: str
        effort_minutes: int
        occasion_kind: OccasionKind | None
        occasion_contact_id: UUID | None
        occasion_year: int | None
        cost_amount: Decimal | None
        cost_currency: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            for name in (
                "occasion_kind",
                "occasion_contact_id",
                "occasion_year",
                "cost_amount",
                "cost_currency",
            ):
                state[name] = None

        def apply(self, aggregate: Account) -> None:
            aggregate.interactions[self.interaction_id] = InteractionRecord.logged(
                Channel(self.channel), self.occurred_at
            )
            if self.occasion_kind is not None and self.occasion_year is not None:
                key = occasion_key(
                    OccasionKind(self.occasion_kind),
                    self.occasion_contact_id,
                    self.occasion_year,
                )
                aggregate.greetings[key] = self.interaction_id

    def log_interaction(
        self,
        *,
        interaction_id: UUID,
        channel: Channel,
        direction: Direction,
        occurred_at: datetime,
        participants: tuple[str, ...] = (),
        summary: str = "",
        outcome: str = "",
        effort_minutes: int = 0,
        occasion: Occasion | None = None,
        cost: tuple[Decimal | str, str] | None = None,
    ) -> None:
        """A greeting (channel ``greeting``) may mark an occasion, once a year
        each; a gift (channel ``gift``) may carry what it cost (an amount and
        its ISO 4217 currency)."""
        self._keeps_personal_data()
        if interaction_id in self.interactions:
            raise InvalidValue("interactionId", f"interaction {interaction_id} exists")
        if not 0 <= effort_minutes <= MAX_EFFORT_MINUTES:
            raise InvalidValue(
                "effortMinutes", f"effort must be 0 to {MAX_EFFORT_MINUTES} minutes"
            )
        if len(participants) > MAX_PARTICIPANTS:
            msg = f"at most {MAX_PARTICIPANTS} participants"
            raise InvalidValue("participants", msg)
        channel = Channel(channel)
        occurred_at = past_moment("occurredAt", occurred_at)
        if occasion is not None:
            self._greetable(channel, occasion, occurred_at)
        amount, currency = self._gift_cost(channel, cost)
        self.trigger_event(
            self.InteractionLogged,
            interaction_id=interaction_id,
            channel=channel,
            direction=Direction(direction),
            occurred_at=occurred_at,
            participants=tuple(required_text("participants", p, 200) for p in participants),
            summary=bounded_text("summary", summary, MAX_TEXT),
            outcome=bounded_text("outcome", outcome, MAX_TEXT),
            effort_minutes=effort_minutes,
            occasion_kind=None if occasion is None else occasion.kind,
            occasion_contact_id=None if occasion is None else occasion.contact_id,
            occasion_year=None if occasion is None else occasion.year,
            cost_amount=amount,
            cost_currency=currency,
        )

    def _greetable(
        self, channel: Channel, occasion: Occasion, occurred_at: datetime
    ) -> None:
        """A greeting marks an occasion of this account, for a year from the one
        after the occasion began to the one after the greeting; once."""
        if channel is not Channel.GREETING:
            raise InvalidValue("occasion", "only a greeting marks an occasion")
        kind = OccasionKind(occasion.kind)
        began = self._occasion_began(kind, occasion.contact_id)
        if not began.year < occasion.year <= occurred_at.year + 1:
            raise InvalidValue(
                "occasion.year",
                f"the occasion's year must be from {began.year + 1} to "
                f"{occurred_at.year + 1}",
            )
        if occasion_key(kind, occasion.contact_id, occasion.year) in self.greetings:
            raise OccasionAlreadyGreeted(
                f"the {kind.replace('_', ' ')} of {occasion.year} was greeted before"
            )

    def _occasion_began(self, kind: OccasionKind, contact_id: UUID | None) -> date:
        """The date the occasion recurs from."""
        if kind is OccasionKind.BIRTHDAY:
            if contact_id is None:
                raise InvalidValue("occasion.contactId", "a birthday is a contact's")
            birthday = self._contact(contact_id).birthday
            if birthday is None:
                raise OccasionNotFound(f"contact {contact_id} has no birthday on file")
            return birthday
        if contact_id is not None:
            raise InvalidValue(
                "occasion.contactId", f"the {kind.replace('_', ' ')} is the account's"
            )
        if kind is OccasionKind.FOUNDING_DAY:
            if self.founded_on is None:
                raise OccasionNotFound("the account has no founding date on file")
            return self.founded_on
        if not self.deals:
            raise OccasionNotFound("the account never closed a deal")
        return min(self.deals.values()).astimezone(UTC).date()

    @staticmethod
    def _gift_cost(
        channel: Channel, cost: tuple[Decimal | str, str] | None
    ) -> tuple[Decimal | None, str | None]:
        if cost is None:
            return None, None
        if channel is not Channel.GIFT:
            raise InvalidValue("cost", "only a gift carries a cost")
        amount, currency = cost
        code = currency_code("cost.currency", currency)
        return amount_in("cost.amount", amount, code), code

    class WrittenConfirmationRecorded(Aggregate.Event):
        """The content and next steps of an oral conversation, put in writing."""

        interaction_id: UUID
        confirmed_at: datetime
        channel: Channel
        note: str

        def apply(self, aggregate: Account) -> None:
            record = aggregate.interactions[self.interaction_id]
            aggregate.interactions[self.interaction_id] = replace(record, confirmed=True)

    def record_written_confirmation(
        self,
        *,
        interaction_id: UUID,
        confirmed_at: datetime,
        channel: Channel = Channel.EMAIL,
        note: str = "",
    ) -> None:
        self._keeps_personal_data()
        try:
            record = self.interactions[interaction_id]
        except KeyError:
            raise InteractionNotFound(
                f"interaction {interaction_id} is not on this account"
            ) from None
        if not record.channel.is_oral:
            raise ConfirmationNotApplicable(
                f"a {record.channel} is already in writing; only calls, meetings, "
                "visits and video calls are confirmed"
            )
        if record.confirmed:
            raise AlreadyConfirmed(f"interaction {interaction_id} is already confirmed")
        channel = Channel(channel)
        if channel.is_oral:
            raise InvalidValue("channel", "a written confirmation cannot be oral")
        confirmed_at = past_moment("confirmedAt", confirmed_at)
        occurred_at = record.occurred_at
        assert occurred_at is not None  # noqa: S101 - an oral interaction's record has it
        if confirmed_at < occurred_at:
            raise InvalidValue(
                "confirmedAt", "a confirmation cannot precede its interaction"
            )
        self.trigger_event(
            self.WrittenConfirmationRecorded,
            interaction_id=interaction_id,
            confirmed_at=confirmed_at,
            channel=channel,
            note=bounded_text("note", note, MAX_TEXT),
        )

    @property
    def unconfirmed_oral_interactions(self) -> int:
        return sum(
            1 for r in self.interactions.values() if r.channel.is_oral and not r.confirmed
        )

    # -- complaints ---------------------------------------------------------------
    #
    # filed → acknowledged → resolved → closed, or reopened → resolved again.
    # Escalation (to a higher level each time) is open while the complaint is
    # unresolved. A closed complaint is final: a recurrence is a new complaint.

    class ComplaintFiled(Aggregate.Event):
        """A complaint from the customer: what about, how serious, how it came in."""

        complaint_id: UUID
        category: str
        severity: ComplaintSeverity
        description: str
        channel: Channel
        contact_id: UUID | None
        filed_at: datetime

        def apply(self, aggregate: Account) -> None:
            aggregate.complaints[self.complaint_id] = ComplaintRecord(
                status=ComplaintStatus.FILED, escalation_level=0, updated_at=self.filed_at
            )

    def file_complaint(
        self,
        *,
        complaint_id: UUID,
        category: str,
        severity: ComplaintSeverity,
        description: str,
        channel: Channel,
        filed_at: datetime,
        contact_id: UUID | None = None,
    ) -> None:
        self._keeps_personal_data()
        if complaint_id in self.complaints:
            raise InvalidValue("complaintId", f"complaint {complaint_id} exists")
        if contact_id is not None:
            self._contact(contact_id)
        self.trigger_event(
            self.ComplaintFiled,
            complaint_id=complaint_id,
            category=required_text("category", category),
            severity=ComplaintSeverity(severity),
            description=required_text("description", description, MAX_TEXT),
            channel=Channel(channel),
            contact_id=contact_id,
            filed_at=past_moment("filedAt", filed_at),
        )

    class ComplaintAcknowledged(Aggregate.Event):
        """Someone took the complaint on: the time to acknowledge stops."""

        complaint_id: UUID
        acknowledged_at: datetime

        def apply(self, aggregate: Account) -> None:
            _move_complaint(
                aggregate,
                self.complaint_id,
                self.acknowledged_at,
                ComplaintStatus.ACKNOWLEDGED,
            )

    def acknowledge_complaint(
        self, *, complaint_id: UUID, acknowledged_at: datetime
    ) -> None:
        record = self._complaint(complaint_id)
        if record.status is not ComplaintStatus.FILED:
            raise ComplaintAlreadyAcknowledged(
                f"complaint {complaint_id} is already acknowledged"
            )
        self.trigger_event(
            self.ComplaintAcknowledged,
            complaint_id=complaint_id,
            acknowledged_at=_complaint_moment("acknowledgedAt", acknowledged_at, record),
        )

    class ComplaintEscalated(Aggregate.Event):
        """Handed up to someone who can solve it, at a higher level than before."""

        complaint_id: UUID
        escalated_to: str
        level: int
        reason: str
        escalated_at: datetime

        def apply(self, aggregate: Account) -> None:
            record = aggregate.complaints[self.complaint_id]
            aggregate.complaints[self.complaint_id] = replace(
                record, escalation_level=self.level, updated_at=self.escalated_at
            )

    def escalate_complaint(
        self,
        *,
        complaint_id: UUID,
        escalated_to: str,
        escalated_at: datetime,
        level: int | None = None,
        reason: str = "",
    ) -> None:
        """Without a level, one above the current one."""
        record = self._complaint(complaint_id)
        if record.status is ComplaintStatus.RESOLVED:
            raise ComplaintAlreadyResolved(
                f"complaint {complaint_id} is resolved; reopen it to escalate it"
            )
        level = record.escalation_level + 1 if level is None else level
        if not 1 <= level <= MAX_ESCALATION_LEVEL:
            raise InvalidValue("level", f"level must be 1 to {MAX_ESCALATION_LEVEL}")
        if level <= record.escalation_level:
            raise EscalationLevelNotHigher(
                f"complaint {complaint_id} is already at level {record.escalation_level}"
            )
        self.trigger_event(
            self.ComplaintEscalated,
            complaint_id=complaint_id,
            escalated_to=required_text("escalatedTo", escalated_to),
            level=level,
            reason=self._complaint_text("reason", reason, required=False),
            escalated_at=_complaint_moment("escalatedAt", escalated_at, record),
        )

    class ComplaintResolved(Aggregate.Event):
        """How it was solved, what went wrong, and how recurrence is prevented."""

        complaint_id: UUID
        resolution: str
        root_cause: str
        prevention_action: str
        resolved_at: datetime

        def apply(self, aggregate: Account) -> None:
            _move_complaint(
                aggregate, self.complaint_id, self.resolved_at, ComplaintStatus.RESOLVED
            )

    def resolve_complaint(
        self,
        *,
        complaint_id: UUID,
        resolution: str,
        resolved_at: datetime,
        root_cause: str = "",
        prevention_action: str = "",
    ) -> None:
        record = self._complaint(complaint_id)
        if record.status is ComplaintStatus.FILED:
            raise ComplaintNotAcknowledged(
                f"complaint {complaint_id} is acknowledged before it is resolved"
            )
        if record.status is ComplaintStatus.RESOLVED:
            raise ComplaintAlreadyResolved(f"complaint {complaint_id} is already resolved")
        self.trigger_event(
            self.ComplaintResolved,
            complaint_id=complaint_id,
            resolution=self._complaint_text("resolution", resolution, required=True),
            root_cause=self._complaint_text("rootCause", root_cause, required=False),
            prevention_action=self._complaint_text(
                "preventionAction", prevention_action, required=False
            ),
            resolved_at=_complaint_moment("resolvedAt", resolved_at, record),
        )

    class ComplaintReopened(Aggregate.Event):
        """The resolution did not hold: the complaint is open again."""

        complaint_id: UUID
        reason: str
        reopened_at: datetime

        def apply(self, aggregate: Account) -> None:
            _move_complaint(
                aggregate, self.complaint_id, self.reopened_at, ComplaintStatus.REOPENED
            )

    def reopen_complaint(
        self, *, complaint_id: UUID, reason: str, reopened_at: datetime
    ) -> None:
        record = self._resolved_complaint(complaint_id, "reopened")
        self.trigger_event(
            self.ComplaintReopened,
            complaint_id=complaint_id,
            reason=self._complaint_text("reason", reason, required=True),
            reopened_at=_complaint_moment("reopenedAt", reopened_at, record),
        )

    class ComplaintClosed(Aggregate.Event):
        """The resolution held: the complaint is done, for good."""

        complaint_id: UUID
        closed_at: datetime

        def apply(self, aggregate: Account) -> None:
            _move_complaint(
                aggregate, self.complaint_id, self.closed_at, ComplaintStatus.CLOSED
            )

    def close_complaint(self, *, complaint_id: UUID, closed_at: datetime) -> None:
        record = self._resolved_complaint(complaint_id, "closed")
        self.trigger_event(
            self.ComplaintClosed,
            complaint_id=complaint_id,
            closed_at=_complaint_moment("closedAt", closed_at, record),
        )

    def _complaint(self, complaint_id: UUID) -> ComplaintRecord:
        """A complaint that was filed and is not closed."""
        try:
            record = self.complaints[complaint_id]
        except KeyError:
            raise ComplaintNotFound(
                f"complaint {complaint_id} was never filed on this account"
            ) from None
        if record.status is ComplaintStatus.CLOSED:
            raise ComplaintAlreadyClosed(
                f"complaint {complaint_id} is closed; file a new one if it recurs"
            )
        return record

    def _resolved_complaint(self, complaint_id: UUID, verb: str) -> ComplaintRecord:
        record = self._complaint(complaint_id)
        if record.status is not ComplaintStatus.RESOLVED:
            raise ComplaintNotResolved(
                f"complaint {complaint_id} is {record.status}; only a resolved "
                f"complaint is {verb}"
            )
        return record

    def _complaint_text(self, field: str, value: str, *, required: bool) -> str:
        """Texts about a complaint are the account's personal data. Once that was
        erased, a complaint still goes through its lifecycle, without text."""
        if self.personal_data_erased:
            if value.strip():
                raise SubjectErased(
                    "this account's personal data was erased; it records no new "
                    f"personal data ({field} must be left empty)"
                )
            return ""
        if required:
            return required_text(field, value, MAX_TEXT)
        return bounded_text(field, value, MAX_TEXT)

    # -- satisfaction --------------------------------------------------------------

    class SurveyRecorded(Aggregate.Event):
        """A satisfaction survey the customer answered: how satisfied (five
        levels), whether they mean to buy again, how likely they are to
        recommend the company (0 to 10, from which NPS is computed)."""

        survey_id: UUID
        satisfaction: SatisfactionLevel
        intent_to_buy_again: PurchaseIntent
        likelihood_to_recommend: int
        comment: str
        contact_id: UUID | None
        answered_at: datetime

        def apply(self, aggregate: Account) -> None:
            aggregate.surveys[self.survey_id] = self.answered_at

    def record_survey(
        self,
        *,
        survey_id: UUID,
        satisfaction: SatisfactionLevel,
        intent_to_buy_again: PurchaseIntent,
        likelihood_to_recommend: int,
        answered_at: datetime,
        comment: str = "",
        contact_id: UUID | None = None,
    ) -> None:
        """Scores are not personal data; the comment is the account's. Once the
        account's personal data was erased, surveys are still recorded, without
        a comment."""
        if survey_id in self.surveys:
            raise InvalidValue("surveyId", f"survey {survey_id} exists")
        if likelihood_to_recommend not in RECOMMEND_SCALE:
            raise InvalidValue(
                "likelihoodToRecommend", "likelihoodToRecommend must be 0 to 10"
            )
        if contact_id is not None:
            self._contact(contact_id)
        if self.personal_data_erased and comment.strip():
            raise SubjectErased(
                "this account's personal data was erased; it records no new "
                "personal data (comment must be left empty)"
            )
        self.trigger_event(
            self.SurveyRecorded,
            survey_id=survey_id,
            satisfaction=SatisfactionLevel(satisfaction),
            intent_to_buy_again=PurchaseIntent(intent_to_buy_again),
            likelihood_to_recommend=likelihood_to_recommend,
            comment=bounded_text("comment", comment.strip(), MAX_TEXT),
            contact_id=contact_id,
            answered_at=past_moment("answeredAt", answered_at),
        )

    # -- deals ---------------------------------------------------------------------

    class DealClosed(Aggregate.Event):
        """A deal won: its value (an exact decimal amount in an ISO 4217
        currency), the product or category, when and where."""

        deal_id: UUID
        amount: Decimal
        currency: str
        product: str
        closed_at: datetime
        place: str

        def apply(self, aggregate: Account) -> None:
            aggregate.deals[self.deal_id] = self.closed_at

    def close_deal(
        self,
        *,
        deal_id: UUID,
        amount: Decimal | str,
        currency: str,
        product: str,
        closed_at: datetime,
        place: str = "",
    ) -> None:
        if deal_id in self.deals:
            raise InvalidValue("dealId", f"deal {deal_id} exists")
        currency = currency_code("currency", currency)
        self.trigger_event(
            self.DealClosed,
            deal_id=deal_id,
            amount=amount_in("amount", amount, currency),
            currency=currency,
            product=required_text("product", product),
            closed_at=past_moment("closedAt", closed_at),
            place=bounded_text("place", place.strip(), 200),
        )

    # -- follow-ups ------------------------------------------------------------------
    #
    # open → completed, or open → cancelled; both are final. A follow-up follows
    # an interaction, a deal or a complaint of the account, and has an owner and
    # a due moment. Its texts (reason, outcome, why it was cancelled) can name
    # people: they are the account's personal data.

    class FollowUpScheduled(Aggregate.Event):
        """Something to do by ``due``, by ``owner``, after an interaction, a deal
        or a complaint (``follows_kind`` and ``follows_id``)."""

        follow_up_id: UUID
        due: datetime
        owner: str
        reason: str
        follows_kind: FollowedKind
        follows_id: UUID

        def apply(self, aggregate: Account) -> None:
            aggregate.follow_ups[self.follow_up_id] = FollowUpStatus.OPEN

    def schedule_follow_up(
        self,
        *,
        follow_up_id: UUID,
        due: datetime,
        owner: str,
        reason: str,
        follows_kind: FollowedKind,
        follows_id: UUID,
    ) -> None:
        """Once the account's personal data was erased, follow-ups are still
        scheduled, without a reason."""
        if follow_up_id in self.follow_ups:
            raise FollowUpExists(follow_up_id)
        follows_kind = FollowedKind(follows_kind)
        self._followed(follows_kind, follows_id)
        self.trigger_event(
            self.FollowUpScheduled,
            follow_up_id=follow_up_id,
            due=due_moment("due", due),
            owner=required_text("owner", owner),
            reason=self._personal_text("reason", reason, required=True),
            follows_kind=follows_kind,
            follows_id=follows_id,
        )

    class FollowUpCompleted(Aggregate.Event):
        """Done: what came of it, and when."""

        follow_up_id: UUID
        outcome: str
        completed_at: datetime

        def apply(self, aggregate: Account) -> None:
            aggregate.follow_ups[self.follow_up_id] = FollowUpStatus.COMPLETED

    def complete_follow_up(
        self, *, follow_up_id: UUID, completed_at: datetime, outcome: str = ""
    ) -> None:
        self._open_follow_up(follow_up_id)
        self.trigger_event(
            self.FollowUpCompleted,
            follow_up_id=follow_up_id,
            outcome=self._personal_text("outcome", outcome, required=False),
            completed_at=past_moment("completedAt", completed_at),
        )

    class FollowUpCancelled(Aggregate.Event):
        """Not needed any more, and why."""

        follow_up_id: UUID
        reason: str

        def apply(self, aggregate: Account) -> None:
            aggregate.follow_ups[self.follow_up_id] = FollowUpStatus.CANCELLED

    def cancel_follow_up(self, *, follow_up_id: UUID, reason: str) -> None:
        self._open_follow_up(follow_up_id)
        self.trigger_event(
            self.FollowUpCancelled,
            follow_up_id=follow_up_id,
            reason=self._personal_text("reason", reason, required=True),
        )

    def _open_follow_up(self, follow_up_id: UUID) -> None:
        status = self.follow_ups.get(follow_up_id)
        if status is None:
            raise FollowUpNotFound(
                f"follow-up {follow_up_id} was never scheduled on this account"
            )
        if status is FollowUpStatus.COMPLETED:
            raise FollowUpAlreadyCompleted(f"follow-up {follow_up_id} is completed")
        if status is FollowUpStatus.CANCELLED:
            raise FollowUpAlreadyCancelled(
                f"follow-up {follow_up_id} is cancelled; schedule a new one if needed"
            )

    def _followed(self, kind: FollowedKind, followed_id: UUID) -> None:
        """What a follow-up follows must be on this account."""
        if kind is FollowedKind.INTERACTION:
            if followed_id not in self.interactions:
                raise InteractionNotFound(
                    f"interaction {followed_id} is not on this account"
                )
        elif kind is FollowedKind.DEAL:
            if followed_id not in self.deals:
                raise DealNotFound(f"deal {followed_id} was never closed on this account")
        elif followed_id not in self.complaints:
            raise ComplaintNotFound(
                f"complaint {followed_id} was never filed on this account"
            )

    # -- goals and agreements -----------------------------------------------------------
    #
    # agreed → achieved, or agreed → dropped; both are final. A goal is written
    # down with its phase, the person responsible and when it is due. Its
    # description and why it was dropped are the account's personal data.

    class GoalAgreed(Aggregate.Event):
        """A goal agreed with the customer: what, who is responsible, by when,
        and in which phase of the plan."""

        goal_id: UUID
        description: str
        owner: str
        due: date
        phase: str

        def apply(self, aggregate: Account) -> None:
            aggregate.goals[self.goal_id] = GoalStatus.AGREED

    def agree_goal(
        self,
        *,
        goal_id: UUID,
        description: str,
        owner: str,
        due: date,
        phase: str = "",
    ) -> None:
        self._keeps_personal_data()
        if goal_id in self.goals:
            raise InvalidValue("goalId", f"goal {goal_id} exists")
        self.trigger_event(
            self.GoalAgreed,
            goal_id=goal_id,
            description=required_text("description", description, MAX_TEXT),
            owner=required_text("owner", owner),
            due=due_date("due", due),
            phase=bounded_text("phase", phase.strip(), 200),
        )

    class GoalAchieved(Aggregate.Event):
        goal_id: UUID
        achieved_at: datetime

        def apply(self, aggregate: Account) -> None:
            aggregate.goals[self.goal_id] = GoalStatus.ACHIEVED

    def achieve_goal(self, *, goal_id: UUID, achieved_at: datetime) -> None:
        self._agreed_goal(goal_id)
        self.trigger_event(
            self.GoalAchieved,
            goal_id=goal_id,
            achieved_at=past_moment("achievedAt", achieved_at),
        )

    class GoalDropped(Aggregate.Event):
        goal_id: UUID
        reason: str

        def apply(self, aggregate: Account) -> None:
            aggregate.goals[self.goal_id] = GoalStatus.DROPPED

    def drop_goal(self, *, goal_id: UUID, reason: str) -> None:
        self._agreed_goal(goal_id)
        self.trigger_event(
            self.GoalDropped,
            goal_id=goal_id,
            reason=self._personal_text("reason", reason, required=True),
        )

    def _agreed_goal(self, goal_id: UUID) -> None:
        status = self.goals.get(goal_id)
        if status is None:
            raise GoalNotFound(f"goal {goal_id} was never agreed on this account")
        if status is GoalStatus.ACHIEVED:
            raise GoalAlreadyAchieved(f"goal {goal_id} is achieved")
        if status is GoalStatus.DROPPED:
            raise GoalAlreadyDropped(
                f"goal {goal_id} was dropped; agree a new one if it matters again"
            )

    def _personal_text(self, field: str, value: str, *, required: bool) -> str:
        """A text that is the account's personal data. Once that was erased, the
        lifecycle goes on without text."""
        if self.personal_data_erased:
            if value.strip():
                raise SubjectErased(
                    "this account's personal data was erased; it records no new "
                    f"personal data ({field} must be left empty)"
                )
            return ""
        if required:
            return required_text(field, value, MAX_TEXT)
        return bounded_text(field, value.strip(), MAX_TEXT)


def _move_complaint(
    account: Account, complaint_id: UUID, moment: datetime, status: ComplaintStatus
) -> None:
    record = account.complaints[complaint_id]
    account.complaints[complaint_id] = replace(
        record, status=ComplaintStatus(status), updated_at=moment
    )


def _complaint_moment(field: str, moment: datetime, record: ComplaintRecord) -> datetime:
    moment = past_moment(field, moment)
    if moment < record.updated_at:
        raise InvalidValue(field, f"{field} cannot precede the complaint's last change")
    return moment


_CONTACT_FIELDS = (
    "name",
    "role",
    "influence",
    "email",
    "phone",
    "birthday",
    "preferences",
)


# -- personal data ---------------------------------------------------------------

ACCOUNT_PERSONAL = PersonalFields(
    (
        "name",
        "address",
        "channels",
        "special_requirements",
        "purchase_characteristics",
        "founded_on",
    )
)
CONTACT_PERSONAL = PersonalFields(
    ("name", "email", "phone", "birthday", "preferences"), subject="contact_id"
)
PERSONAL_DATA: dict[type, PersonalFields] = {
    Account.AccountOpened: ACCOUNT_PERSONAL,
    Account.ProfileUpdated: ACCOUNT_PERSONAL,
    Account.ContactAdded: CONTACT_PERSONAL,
    Account.ContactUpdated: CONTACT_PERSONAL,
    Account.ContactRemoved: PersonalFields(("reason",), subject="contact_id"),
    Account.InteractionLogged: PersonalFields(("participants", "summary", "outcome")),
    Account.WrittenConfirmationRecorded: PersonalFields(("note",)),
    Account.ComplaintFiled: PersonalFields(("description",)),
    Account.ComplaintEscalated: PersonalFields(("reason",)),
    Account.ComplaintResolved: PersonalFields(
        ("resolution", "root_cause", "prevention_action")
    ),
    Account.ComplaintReopened: PersonalFields(("reason",)),
    Account.SurveyRecorded: PersonalFields(("comment",)),
    Account.FollowUpScheduled: PersonalFields(("reason",)),
    Account.FollowUpCompleted: PersonalFields(("outcome",)),
    Account.FollowUpCancelled: PersonalFields(("reason",)),
    Account.GoalAgreed: PersonalFields(("description",)),
    Account.GoalDropped: PersonalFields(("reason",)),
}


_SNAPSHOT = PersonalFields(())
_FIELDS_OF: dict[type, PersonalFields | None] = {}


def rewrite_personal_data(
    cls: type, state: dict[str, Any], account_id: UUID, fn: Rewrite
) -> None:
    """Replace each personal value in an event's (or snapshot's) state by
    ``fn(value, subject_id)``, in place. The event store seals and opens
    personal data through this one description.
    """
    try:
        fields = _FIELDS_OF[cls]
    except KeyError:
        # issubclass on eventsourcing's classes is slow: once per class.
        snapshot = issubclass(cls, Account.Snapshot)
        fields = _FIELDS_OF[cls] = _SNAPSHOT if snapshot else PERSONAL_DATA.get(cls)
    if fields is _SNAPSHOT:
        inner = state["state"] = dict(state["state"])
        ACCOUNT_PERSONAL.rewrite(inner, account_id, fn)
        for name in ("contacts", "former_contacts"):
            inner[name] = [_rewrite_contact(c, fn) for c in inner.get(name, ())]
    elif fields is not None:
        fields.rewrite(state, account_id, fn)


def _rewrite_contact(contact: Contact, fn: Rewrite) -> Contact:
    return replace(
        contact,
        **{
            name: fn(getattr(contact, name), contact.contact_id)
            for name in CONTACT_PERSONAL.fields
        },
    )
