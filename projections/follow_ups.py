"""``follow_ups`` and ``goals``: what is to be done for each account, and what
was agreed with it.

The views keep facts only. Whether an open follow-up is overdue depends on the
current time, so the queries work it out when they read
(``queries.list_follow_ups``): a follow-up shows as overdue as soon as its due
moment passes, with no event needed. The same holds for an agreed goal past
its due date.

The account's manager is kept beside its follow-ups (``follow_up_managers``),
so the view is built from events alone and can be rebuilt on its own; lists
are scoped by it.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from domain.account import Account
from domain.personal import ERASED
from eventstore.recorder import RecordedEvent
from projections.base import View, Writes

# The texts that are the account's personal data (see PERSONAL_DATA).
FOLLOW_UP_PERSONAL_COLUMNS = ("reason", "outcome", "cancel_reason")
GOAL_PERSONAL_COLUMNS = ("description", "drop_reason")


def _erase(table: str, columns: tuple[str, ...]) -> str:
    assignments = ", ".join(
        f"{column} = CASE WHEN coalesce({column}, '') = '' THEN {column}"
        " ELSE %(erased)s END"
        for column in columns
    )
    return f"UPDATE {table} SET {assignments} WHERE account_id = %(account)s"  # noqa: S608 - names are constants


class FollowUps(View):
    name = "follow_ups"
    tables = ("follow_ups", "follow_up_managers")
    ddl = (
        """CREATE TABLE IF NOT EXISTS follow_ups (
            account_id uuid NOT NULL,
            follow_up_id uuid NOT NULL,
            due timestamptz NOT NULL,
            owner text NOT NULL,
            reason text NOT NULL,
            follows_kind text NOT NULL,
            follows_id uuid NOT NULL,
            manager text,
            status text NOT NULL,
            scheduled_at timestamptz NOT NULL,
            scheduled_by text NOT NULL,
            completed_at timestamptz,
            outcome text,
            cancelled_at timestamptz,
            cancel_reason text,
            closed_by text,
            updated_at timestamptz NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (account_id, follow_up_id))""",
        "CREATE INDEX IF NOT EXISTS follow_ups_due_idx"
        " ON follow_ups (due, account_id, follow_up_id)",
        "CREATE INDEX IF NOT EXISTS follow_ups_owner_idx"
        " ON follow_ups (owner, status, due)",
        "CREATE INDEX IF NOT EXISTS follow_ups_account_idx"
        " ON follow_ups (account_id, due, follow_up_id)",
        "CREATE INDEX IF NOT EXISTS follow_ups_manager_idx ON follow_ups (manager, due)",
        """CREATE TABLE IF NOT EXISTS follow_up_managers (
            account_id uuid PRIMARY KEY,
            manager text NOT NULL)""",
    )

    @singledispatchmethod
    def apply(self, event: Any, writes: Writes, recorded: RecordedEvent) -> None:
        """Events that neither touch a follow-up nor the account's manager."""

    @apply.register
    def _(
        self,
        event: Account.AccountManagerAssigned,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        writes.execute(
            "INSERT INTO follow_up_managers (account_id, manager) VALUES (%s, %s)"
            " ON CONFLICT (account_id) DO UPDATE SET manager = excluded.manager",
            (event.originator_id, event.manager),
        )
        writes.execute(
            "UPDATE follow_ups SET manager = %s WHERE account_id = %s",
            (event.manager, event.originator_id),
        )

    @apply.register
    def _(
        self,
        event: Account.FollowUpScheduled,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        writes.execute(
            "INSERT INTO follow_ups (account_id, follow_up_id, due, owner, reason,"
            " follows_kind, follows_id, manager, status, scheduled_at, scheduled_by,"
            " updated_at, position)"
            " VALUES (%(account_id)s, %(follow_up_id)s, %(due)s, %(owner)s, %(reason)s,"
            " %(kind)s, %(follows_id)s,"
            " (SELECT manager FROM follow_up_managers WHERE account_id = %(account_id)s),"
            " 'open', %(at)s, %(actor)s, %(at)s, %(position)s)",
            {
                "account_id": event.originator_id,
                "follow_up_id": event.follow_up_id,
                "due": event.due,
                "owner": event.owner,
                "reason": event.reason,
                "kind": event.follows_kind,
                "follows_id": event.follows_id,
                "actor": recorded.actor,
                "at": recorded.occurred_at,
                "position": recorded.position,
            },
        )

    @apply.register
    def _(
        self,
        event: Account.FollowUpCompleted,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        writes.execute(
            "UPDATE follow_ups SET status = 'completed', completed_at = %s, outcome = %s,"
            " closed_by = %s, updated_at = %s, position = %s"
            " WHERE account_id = %s AND follow_up_id = %s",
            (
                event.completed_at,
                event.outcome,
                recorded.actor,
                recorded.occurred_at,
                recorded.position,
                event.originator_id,
                event.follow_up_id,
            ),
        )

    @apply.register
    def _(
        self,
        event: Account.FollowUpCancelled,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        writes.execute(
            "UPDATE follow_ups SET status = 'cancelled', cancelled_at = %s,"
            " cancel_reason = %s, closed_by = %s, updated_at = %s, position = %s"
            " WHERE account_id = %s AND follow_up_id = %s",
            (
                recorded.occurred_at,
                event.reason,
                recorded.actor,
                recorded.occurred_at,
                recorded.position,
                event.originator_id,
                event.follow_up_id,
            ),
        )

    @apply.register
    def _(
        self,
        event: Account.PersonalDataErased,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        """Follow-up texts are the account's personal data (a contact's erasure
        leaves them): they read as erased, as in the events."""
        if event.contact_id is None:
            writes.execute(
                _ERASE_FOLLOW_UPS, {"erased": ERASED, "account": event.originator_id}
            )


class Goals(View):
    name = "goals"
    tables = ("goals",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS goals (
            account_id uuid NOT NULL,
            goal_id uuid NOT NULL,
            description text NOT NULL,
            owner text NOT NULL,
            due date NOT NULL,
            phase text NOT NULL,
            status text NOT NULL,
            agreed_at timestamptz NOT NULL,
            agreed_by text NOT NULL,
            achieved_at timestamptz,
            dropped_at timestamptz,
            drop_reason text,
            closed_by text,
            updated_at timestamptz NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (account_id, goal_id))""",
        "CREATE INDEX IF NOT EXISTS goals_account_idx ON goals (account_id, due, goal_id)",
    )

    @singledispatchmethod
    def apply(self, event: Any, writes: Writes, recorded: RecordedEvent) -> None:
        """Events that touch no goal."""

    @apply.register
    def _(self, event: Account.GoalAgreed, writes: Writes, recorded: RecordedEvent) -> None:
        writes.execute(
            "INSERT INTO goals (account_id, goal_id, description, owner, due, phase,"
            " status, agreed_at, agreed_by, updated_at, position)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'agreed', %s, %s, %s, %s)",
            (
                event.originator_id,
                event.goal_id,
                event.description,
                event.owner,
                event.due,
                event.phase,
                recorded.occurred_at,
                recorded.actor,
                recorded.occurred_at,
                recorded.position,
            ),
        )

    @apply.register
    def _(
        self, event: Account.GoalAchieved, writes: Writes, recorded: RecordedEvent
    ) -> None:
        writes.execute(
            "UPDATE goals SET status = 'achieved', achieved_at = %s, closed_by = %s,"
            " updated_at = %s, position = %s WHERE account_id = %s AND goal_id = %s",
            (
                event.achieved_at,
                recorded.actor,
                recorded.occurred_at,
                recorded.position,
                event.originator_id,
                event.goal_id,
            ),
        )

    @apply.register
    def _(
        self, event: Account.GoalDropped, writes: Writes, recorded: RecordedEvent
    ) -> None:
        writes.execute(
            "UPDATE goals SET status = 'dropped', dropped_at = %s, drop_reason = %s,"
            " closed_by = %s, updated_at = %s, position = %s"
            " WHERE account_id = %s AND goal_id = %s",
            (
                recorded.occurred_at,
                event.reason,
                recorded.actor,
                recorded.occurred_at,
                recorded.position,
                event.originator_id,
                event.goal_id,
            ),
        )

    @apply.register
    def _(
        self,
        event: Account.PersonalDataErased,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        """A goal's description and why it was dropped are the account's personal
        data: they read as erased once the account's is."""
        if event.contact_id is None:
            writes.execute(_ERASE_GOALS, {"erased": ERASED, "account": event.originator_id})


_ERASE_FOLLOW_UPS = _erase("follow_ups", FOLLOW_UP_PERSONAL_COLUMNS)
_ERASE_GOALS = _erase("goals", GOAL_PERSONAL_COLUMNS)
