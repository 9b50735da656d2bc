"""``complaints``: every complaint, one row each, with its lifecycle's times.

The view keeps facts only: when each step happened and the times to
acknowledge and to resolve. Whether a complaint breached its targets depends
on the targets (configuration) and on the current time, so the queries work
it out when they read (``queries.list_complaints``), and a breach shows as
soon as time passes a due moment, with no event needed.

The account's manager is kept beside its complaints (``complaint_managers``),
so the view is built from events alone, like every view, and can be rebuilt on
its own.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from domain.account import Account
from domain.personal import ERASED
from eventstore.recorder import RecordedEvent
from projections.base import View, Writes

# The complaint texts that are the account's personal data (see PERSONAL_DATA).
PERSONAL_COLUMNS = (
    "description",
    "escalation_reason",
    "resolution",
    "root_cause",
    "prevention_action",
    "reopen_reason",
)


class Complaints(View):
    name = "complaints"
    tables = ("complaints", "complaint_managers")
    ddl = (
        """CREATE TABLE IF NOT EXISTS complaints (
            account_id uuid NOT NULL,
            complaint_id uuid NOT NULL,
            category text NOT NULL,
            severity text NOT NULL,
            description text NOT NULL,
            channel text NOT NULL,
            contact_id uuid,
            manager text,
            status text NOT NULL,
            filed_at timestamptz NOT NULL,
            filed_by text NOT NULL,
            acknowledged_at timestamptz,
            escalation_level integer NOT NULL DEFAULT 0,
            escalated_to text,
            escalated_at timestamptz,
            escalation_reason text,
            resolved_at timestamptz,
            resolution text,
            root_cause text,
            prevention_action text,
            reopen_count integer NOT NULL DEFAULT 0,
            reopened_at timestamptz,
            reopen_reason text,
            closed_at timestamptz,
            time_to_acknowledge interval
                GENERATED ALWAYS AS (acknowledged_at - filed_at) STORED,
            time_to_resolve interval GENERATED ALWAYS AS (resolved_at - filed_at) STORED,
            updated_at timestamptz NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (account_id, complaint_id))""",
        "CREATE INDEX IF NOT EXISTS complaints_filed_idx"
        " ON complaints (filed_at DESC, account_id DESC, complaint_id DESC)",
        "CREATE INDEX IF NOT EXISTS complaints_account_idx"
        " ON complaints (account_id, filed_at DESC, complaint_id DESC)",
        "CREATE INDEX IF NOT EXISTS complaints_status_idx"
        " ON complaints (status, filed_at DESC)",
        "CREATE INDEX IF NOT EXISTS complaints_manager_idx"
        " ON complaints (manager, filed_at DESC)",
        """CREATE TABLE IF NOT EXISTS complaint_managers (
            account_id uuid PRIMARY KEY,
            manager text NOT NULL)""",
    )

    @singledispatchmethod
    def apply(self, event: Any, writes: Writes, recorded: RecordedEvent) -> None:
        """Events that neither touch a complaint nor the account's manager."""

    @staticmethod
    def _update(
        writes: Writes,
        recorded: RecordedEvent,
        complaint_id: Any,
        assignments: str,
        **params: Any,
    ) -> None:
        writes.execute(
            f"UPDATE complaints SET {assignments}, updated_at = %(at)s,"  # noqa: S608 - assignments are literals of this module
            " position = %(position)s"
            " WHERE account_id = %(account_id)s AND complaint_id = %(complaint_id)s",
            {
                "account_id": recorded.stored.originator_id,
                "complaint_id": complaint_id,
                "at": recorded.occurred_at,
                "position": recorded.position,
                **params,
            },
        )

    @apply.register
    def _(
        self,
        event: Account.AccountManagerAssigned,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        writes.execute(
            "INSERT INTO complaint_managers (account_id, manager) VALUES (%s, %s)"
            " ON CONFLICT (account_id) DO UPDATE SET manager = excluded.manager",
            (event.originator_id, event.manager),
        )
        writes.execute(
            "UPDATE complaints SET manager = %s WHERE account_id = %s",
            (event.manager, event.originator_id),
        )

    @apply.register
    def _(
        self, event: Account.ComplaintFiled, writes: Writes, recorded: RecordedEvent
    ) -> None:
        writes.execute(
            "INSERT INTO complaints (account_id, complaint_id, category, severity,"
            " description, channel, contact_id, manager, status, filed_at, filed_by,"
            " updated_at, position)"
            " VALUES (%(account_id)s, %(complaint_id)s, %(category)s, %(severity)s,"
            " %(description)s, %(channel)s, %(contact_id)s,"
            " (SELECT manager FROM complaint_managers WHERE account_id = %(account_id)s),"
            " 'filed', %(filed_at)s, %(actor)s, %(at)s, %(position)s)",
            {
                "account_id": event.originator_id,
                "complaint_id": event.complaint_id,
                "category": event.category,
                "severity": event.severity,
                "description": event.description,
                "channel": event.channel,
                "contact_id": event.contact_id,
                "filed_at": event.filed_at,
                "actor": recorded.actor,
                "at": recorded.occurred_at,
                "position": recorded.position,
            },
        )

    @apply.register
    def _(
        self,
        event: Account.ComplaintAcknowledged,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        self._update(
            writes,
            recorded,
            event.complaint_id,
            "status = 'acknowledged', acknowledged_at = %(moment)s",
            moment=event.acknowledged_at,
        )

    @apply.register
    def _(
        self,
        event: Account.ComplaintEscalated,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        self._update(
            writes,
            recorded,
            event.complaint_id,
            "escalation_level = %(level)s, escalated_to = %(to)s,"
            " escalated_at = %(moment)s, escalation_reason = %(reason)s",
            level=event.level,
            to=event.escalated_to,
            moment=event.escalated_at,
            reason=event.reason,
        )

    @apply.register
    def _(
        self,
        event: Account.ComplaintResolved,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        self._update(
            writes,
            recorded,
            event.complaint_id,
            "status = 'resolved', resolved_at = %(moment)s, resolution = %(resolution)s,"
            " root_cause = %(cause)s, prevention_action = %(prevention)s",
            moment=event.resolved_at,
            resolution=event.resolution,
            cause=event.root_cause,
            prevention=event.prevention_action,
        )

    @apply.register
    def _(
        self,
        event: Account.ComplaintReopened,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        """Open again: the resolution that did not hold stays in the history only,
        and the time to resolve runs on from the filing."""
        self._update(
            writes,
            recorded,
            event.complaint_id,
            "status = 'reopened', reopen_count = reopen_count + 1,"
            " reopened_at = %(moment)s, reopen_reason = %(reason)s,"
            " resolved_at = NULL, resolution = NULL, root_cause = NULL,"
            " prevention_action = NULL",
            moment=event.reopened_at,
            reason=event.reason,
        )

    @apply.register
    def _(
        self,
        event: Account.ComplaintClosed,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        self._update(
            writes,
            recorded,
            event.complaint_id,
            "status = 'closed', closed_at = %(moment)s",
            moment=event.closed_at,
        )

    @apply.register
    def _(
        self,
        event: Account.PersonalDataErased,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        """Complaint texts are the account's personal data (a contact's erasure
        leaves them): they read as erased, as in the events."""
        if event.contact_id is None:
            writes.execute(_ERASE, {"erased": ERASED, "account": event.originator_id})


_ERASE = "UPDATE complaints SET {} WHERE account_id = %(account)s".format(  # noqa: S608 - column names are constants
    ", ".join(
        f"{column} = CASE WHEN coalesce({column}, '') = '' THEN {column}"
        " ELSE %(erased)s END"
        for column in PERSONAL_COLUMNS
    )
)
