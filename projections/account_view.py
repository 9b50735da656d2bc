"""``account_view``: the current state of every account, one row each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from eventsourcing.dispatch import singledispatchmethod
from psycopg.types.json import Jsonb

from domain.account import CONTACT_PERSONAL, Account
from domain.personal import erased_value
from domain.values import Address, Channel, ContactChannel, ContactChannelKind
from eventstore.recorder import RecordedEvent
from projections.base import NOTHING, View, Writes


def address_json(address: Address) -> Jsonb:
    return Jsonb(asdict(address))


def channels_json(channels: tuple[ContactChannel, ...]) -> Jsonb:
    return Jsonb([{"kind": str(c.kind), "value": c.value} for c in channels])


def contact_json(event: Account.ContactAdded | Account.ContactUpdated) -> dict[str, Any]:
    fields = ("name", "role", "influence", "email", "phone", "preferences")
    card: dict[str, Any] = {"contact_id": str(event.contact_id)}
    card.update({f: getattr(event, f) for f in fields if getattr(event, f) is not None})
    if event.birthday is not None:
        card["birthday"] = event.birthday.isoformat()
    return card


def erased_card(card: dict[str, Any]) -> dict[str, Any]:
    """A contact card as its events read once the contact is erased."""
    card = dict(card, erased=True)
    for name in CONTACT_PERSONAL.fields:
        if name in card:
            card[name] = erased_value(card[name])
    card.pop("birthday", None)  # an erased date reads as none, and none is left out
    return card


class AccountView(View):
    name = "account_view"
    tables = ("account_view",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS account_view (
            account_id uuid PRIMARY KEY,
            name text NOT NULL,
            kind text NOT NULL,
            business_category text NOT NULL,
            address jsonb NOT NULL,
            channels jsonb NOT NULL,
            special_requirements text NOT NULL DEFAULT '',
            purchase_characteristics text NOT NULL DEFAULT '',
            tier text NOT NULL,
            stage text NOT NULL,
            relationship_type text,
            classification text,
            manager text,
            contacts jsonb NOT NULL DEFAULT '{}',
            interaction_count integer NOT NULL DEFAULT 0,
            last_interaction_at timestamptz,
            pending_confirmations integer NOT NULL DEFAULT 0,
            opened_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            version bigint NOT NULL,
            position bigint NOT NULL,
            personal_data_erased boolean NOT NULL DEFAULT false,
            open_complaints integer NOT NULL DEFAULT 0,
            founded_on date)""",
        # Views created before AccountOpened version 2.
        "ALTER TABLE account_view"
        " ADD COLUMN IF NOT EXISTS special_requirements text NOT NULL DEFAULT '',"
        " ADD COLUMN IF NOT EXISTS purchase_characteristics text NOT NULL DEFAULT ''",
        # Views created before erasure.
        "ALTER TABLE account_view"
        " ADD COLUMN IF NOT EXISTS personal_data_erased boolean NOT NULL DEFAULT false",
        # Views created before complaints.
        "ALTER TABLE account_view"
        " ADD COLUMN IF NOT EXISTS open_complaints integer NOT NULL DEFAULT 0",
        # Views created before AccountOpened version 3.
        "ALTER TABLE account_view ADD COLUMN IF NOT EXISTS founded_on date",
        "CREATE INDEX IF NOT EXISTS account_view_name_idx"
        " ON account_view (name, account_id)",
        "CREATE INDEX IF NOT EXISTS account_view_tier_idx"
        " ON account_view (tier, name, account_id)",
        "CREATE INDEX IF NOT EXISTS account_view_stage_idx"
        " ON account_view (stage, name, account_id)",
        "CREATE INDEX IF NOT EXISTS account_view_manager_idx"
        " ON account_view (manager, name, account_id)",
    )

    @staticmethod
    def _touch(
        writes: Writes,
        recorded: RecordedEvent,
        assign: Mapping[str, Any] = NOTHING,
        add: Mapping[str, int] = NOTHING,
        greatest: Mapping[str, Any] = NOTHING,
    ) -> None:
        """Change the account's row, stamping its version and position.

        An account's changes in one batch fold into one UPDATE (``Writes.update``).
        """
        writes.update(
            "account_view",
            {"account_id": recorded.stored.originator_id},
            assign={
                **assign,
                "updated_at": recorded.occurred_at,
                "version": recorded.stored.originator_version,
                "position": recorded.position,
            },
            add=add,
            greatest=greatest,
        )

    @staticmethod
    def _change(
        writes: Writes, recorded: RecordedEvent, assignments: str, **params: Any
    ) -> None:
        """Update the account's row with SQL of its own, stamping its version
        and position: for changes worked out from the row itself (its
        contacts), which do not fold."""
        account_id = recorded.stored.originator_id
        writes.execute(
            f"UPDATE account_view SET {assignments}, updated_at = %(at)s,"  # noqa: S608 - assignments are literals of this module
            " version = %(version)s, position = %(position)s"
            " WHERE account_id = %(account_id)s",
            {
                "account_id": account_id,
                "at": recorded.occurred_at,
                "version": recorded.stored.originator_version,
                "position": recorded.position,
                **params,
            },
            row=("account_view", {"account_id": account_id}),
        )

    @singledispatchmethod
    def apply(self, event: Any, writes: Writes, recorded: RecordedEvent) -> None:
        """Events that do not change the account's current view."""

    @apply.register
    def _(
        self, event: Account.AccountOpened, writes: Writes, recorded: RecordedEvent
    ) -> None:
        writes.execute(
            "INSERT INTO account_view (account_id, name, kind, business_category,"
            " address, channels, special_requirements, purchase_characteristics,"
            " founded_on, tier, stage, opened_at, updated_at, version, position)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'transactional',"
            " 'exploration', %s, %s, %s, %s)",
            (
                event.originator_id,
                event.name,
                event.kind,
                event.business_category,
                address_json(event.address),
                channels_json(event.channels),
                event.special_requirements,
                event.purchase_characteristics,
                event.founded_on,
                event.timestamp,
                event.timestamp,
                event.originator_version,
                recorded.position,
            ),
            row=("account_view", {"account_id": event.originator_id}),
        )

    @apply.register
    def _(
        self, event: Account.ProfileUpdated, writes: Writes, recorded: RecordedEvent
    ) -> None:
        changes = {
            "name": event.name,
            "business_category": event.business_category,
            "address": None if event.address is None else address_json(event.address),
            "channels": None if event.channels is None else channels_json(event.channels),
            "special_requirements": event.special_requirements,
            "purchase_characteristics": event.purchase_characteristics,
            "founded_on": event.founded_on,
        }
        # What the event leaves out (None) stays as it is.
        assign = {column: value for column, value in changes.items() if value is not None}
        self._touch(writes, recorded, assign)

    @apply.register
    def _(
        self, event: Account.ContactAdded, writes: Writes, recorded: RecordedEvent
    ) -> None:
        self._change(
            writes,
            recorded,
            "contacts = contacts || jsonb_build_object(%(id)s::text, %(card)s::jsonb)",
            id=event.contact_id,
            card=Jsonb(contact_json(event)),
        )

    @apply.register
    def _(
        self, event: Account.ContactUpdated, writes: Writes, recorded: RecordedEvent
    ) -> None:
        self._change(
            writes,
            recorded,
            "contacts = jsonb_set(contacts, ARRAY[%(id)s::text],"
            " (contacts -> %(id)s::text) || %(card)s::jsonb)",
            id=event.contact_id,
            card=Jsonb(contact_json(event)),
        )

    @apply.register
    def _(
        self, event: Account.ContactRemoved, writes: Writes, recorded: RecordedEvent
    ) -> None:
        self._change(
            writes, recorded, "contacts = contacts - %(id)s::text", id=event.contact_id
        )

    @apply.register
    def _(
        self,
        event: Account.AccountManagerAssigned,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        self._touch(writes, recorded, {"manager": event.manager})

    @apply.register
    def _(
        self,
        event: Account.ClassificationChanged,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        self._touch(writes, recorded, {"classification": event.classification})

    @apply.register
    def _(
        self,
        event: Account.RelationshipTypeChanged,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        self._touch(writes, recorded, {"relationship_type": event.relationship_type})

    @apply.register
    def _(
        self, event: Account.TierChanged, writes: Writes, recorded: RecordedEvent
    ) -> None:
        self._touch(writes, recorded, {"tier": event.tier})

    @apply.register
    def _(
        self, event: Account.StageChanged, writes: Writes, recorded: RecordedEvent
    ) -> None:
        self._touch(writes, recorded, {"stage": event.stage})

    @apply.register
    def _(
        self,
        event: Account.InteractionLogged,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        self._touch(
            writes,
            recorded,
            add={
                "interaction_count": 1,
                "pending_confirmations": 1 if Channel(event.channel).is_oral else 0,
            },
            greatest={"last_interaction_at": event.occurred_at},
        )

    @apply.register
    def _(
        self,
        event: Account.WrittenConfirmationRecorded,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        self._touch(writes, recorded, add={"pending_confirmations": -1})

    @apply.register
    def _(
        self,
        event: Account.ComplaintFiled
        | Account.ComplaintAcknowledged
        | Account.ComplaintEscalated
        | Account.ComplaintResolved
        | Account.ComplaintReopened
        | Account.ComplaintClosed,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        """Open complaints: filed or reopened, and not (yet again) resolved."""
        opens = isinstance(event, Account.ComplaintFiled | Account.ComplaintReopened)
        delta = 1 if opens else -1 if isinstance(event, Account.ComplaintResolved) else 0
        self._touch(writes, recorded, add={"open_complaints": delta})

    @apply.register
    def _(
        self,
        event: Account.SurveyRecorded | Account.DealClosed,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        """Kept in their own views; the account's row moves to their version."""
        self._touch(writes, recorded)

    @apply.register
    def _(
        self,
        event: Account.FollowUpScheduled
        | Account.FollowUpCompleted
        | Account.FollowUpCancelled
        | Account.GoalAgreed
        | Account.GoalAchieved
        | Account.GoalDropped,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        """Follow-ups and goals are kept in their own views; the account's row
        moves to their version."""
        self._touch(writes, recorded)

    @apply.register
    def _(
        self,
        event: Account.PersonalDataErased,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        row = writes.fetchone(
            "SELECT name, address, channels, special_requirements,"
            " purchase_characteristics, contacts FROM account_view"
            " WHERE account_id = %s FOR UPDATE",
            (event.originator_id,),
        )
        if row is None:  # pragma: no cover - every account has its row
            return
        contacts = row["contacts"]
        if event.contact_id is not None:
            if str(event.contact_id) in contacts:
                contacts[str(event.contact_id)] = erased_card(
                    contacts[str(event.contact_id)]
                )
            self._touch(writes, recorded, {"contacts": Jsonb(contacts)})
            return
        channels = tuple(
            ContactChannel(ContactChannelKind(c["kind"]), c["value"])
            for c in row["channels"]
        )
        self._touch(
            writes,
            recorded,
            {
                "personal_data_erased": True,
                "name": erased_value(row["name"]),
                "address": address_json(erased_value(Address(**row["address"]))),
                "channels": channels_json(erased_value(channels)),
                "special_requirements": erased_value(row["special_requirements"]),
                "purchase_characteristics": erased_value(row["purchase_characteristics"]),
                "contacts": Jsonb({k: erased_card(card) for k, card in contacts.items()}),
                "founded_on": None,  # an erased date reads as none
            },
        )
