"""``interaction_timeline``: every contact with the account, newest first."""

from __future__ import annotations

from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from domain.account import Account
from domain.personal import ERASED
from domain.values import Channel
from eventstore.recorder import RecordedEvent
from projections.base import Insert, View, Writes


class InteractionTimeline(View):
    name = "interaction_timeline"
    tables = ("interaction_timeline",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS interaction_timeline (
            account_id uuid NOT NULL,
            interaction_id uuid NOT NULL,
            channel text NOT NULL,
            direction text NOT NULL,
            occurred_at timestamptz NOT NULL,
            participants text[] NOT NULL,
            summary text NOT NULL,
            outcome text NOT NULL,
            effort_minutes integer NOT NULL,
            oral boolean NOT NULL,
            logged_by text NOT NULL,
            logged_at timestamptz NOT NULL,
            confirmed_at timestamptz,
            confirmation_channel text,
            confirmation_note text,
            position bigint NOT NULL,
            occasion_kind text,
            occasion_contact_id uuid,
            occasion_year integer,
            cost_amount numeric CHECK (cost_amount > 0),
            cost_currency text,
            PRIMARY KEY (account_id, interaction_id))""",
        # Views created before InteractionLogged version 2.
        "ALTER TABLE interaction_timeline"
        " ADD COLUMN IF NOT EXISTS occasion_kind text,"
        " ADD COLUMN IF NOT EXISTS occasion_contact_id uuid,"
        " ADD COLUMN IF NOT EXISTS occasion_year integer,"
        " ADD COLUMN IF NOT EXISTS cost_amount numeric CHECK (cost_amount > 0),"
        " ADD COLUMN IF NOT EXISTS cost_currency text",
        "CREATE INDEX IF NOT EXISTS interaction_timeline_account_idx"
        " ON interaction_timeline (account_id, occurred_at DESC, interaction_id DESC)",
        "CREATE INDEX IF NOT EXISTS interaction_timeline_greeting_idx"
        " ON interaction_timeline (account_id, occasion_kind, occasion_year)"
        " WHERE occasion_kind IS NOT NULL",
    )

    @singledispatchmethod
    def apply(self, event: Any, writes: Writes, recorded: RecordedEvent) -> None:
        """Events that are not interactions."""

    @apply.register
    def _(
        self,
        event: Account.InteractionLogged,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        writes.insert(
            LOGGED,
            (
                event.interaction_id,
                event.originator_id,
                event.channel,
                event.direction,
                event.occurred_at,
                list(event.participants),
                event.summary,
                event.outcome,
                event.effort_minutes,
                Channel(event.channel).is_oral,
                recorded.actor,
                event.timestamp,
                recorded.position,
                event.occasion_kind,
                event.occasion_contact_id,
                event.occasion_year,
                event.cost_amount,
                event.cost_currency,
            ),
        )

    @apply.register
    def _(
        self,
        event: Account.WrittenConfirmationRecorded,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        writes.execute(
            "UPDATE interaction_timeline SET confirmed_at = %s,"
            " confirmation_channel = %s, confirmation_note = %s"
            " WHERE account_id = %s AND interaction_id = %s",
            (
                event.confirmed_at,
                event.channel,
                event.note,
                event.originator_id,
                event.interaction_id,
            ),
        )

    @apply.register
    def _(
        self,
        event: Account.PersonalDataErased,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        """The account's interactions are its own personal data (a contact's
        erasure leaves them): their free text reads as erased, as in the events.
        """
        if event.contact_id is not None:
            return
        writes.execute(
            "UPDATE interaction_timeline SET"
            " participants = ARRAY(SELECT CASE WHEN p = '' THEN p ELSE %(erased)s END"
            " FROM unnest(participants) WITH ORDINALITY AS x(p, n) ORDER BY n),"
            " summary = CASE WHEN summary = '' THEN summary ELSE %(erased)s END,"
            " outcome = CASE WHEN outcome = '' THEN outcome ELSE %(erased)s END,"
            # No note (not confirmed) stays no note.
            " confirmation_note = CASE WHEN coalesce(confirmation_note, '') = ''"
            " THEN confirmation_note ELSE %(erased)s END"
            " WHERE account_id = %(account)s",
            {"erased": ERASED, "account": event.originator_id},
        )


LOGGED = Insert(
    "interaction_timeline",
    {
        "interaction_id": "uuid",
        "account_id": "uuid",
        "channel": "text",
        "direction": "text",
        "occurred_at": "timestamptz",
        "participants": "text[]",
        "summary": "text",
        "outcome": "text",
        "effort_minutes": "integer",
        "oral": "boolean",
        "logged_by": "text",
        "logged_at": "timestamptz",
        "position": "bigint",
        "occasion_kind": "text",
        "occasion_contact_id": "uuid",
        "occasion_year": "integer",
        "cost_amount": "numeric",
        "cost_currency": "text",
    },
)
"""The row of an InteractionLogged, the types as in the table (``ddl`` above)."""
