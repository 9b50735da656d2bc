"""``stage_history``, ``tier_history`` and ``manager_history``: one row per period.

A period starts when the account enters a value (a stage, a tier, a manager)
and ends when it enters the next one. The ``*_durations`` views add per account
and value the first and last time it was entered and the cumulative time
spent, re-entries included, so "how long do accounts stay in expansion?" is
one query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from domain.account import Account
from domain.values import Stage, Tier
from eventstore.recorder import RecordedEvent
from projections.base import View, Writes

OPENED = "account opened"


def _period_ddl(table: str, durations: str | None) -> tuple[str, ...]:
    statements = (
        f"""CREATE TABLE IF NOT EXISTS {table} (
            account_id uuid NOT NULL,
            period integer NOT NULL,
            value text NOT NULL,
            previous text,
            entered_at timestamptz NOT NULL,
            left_at timestamptz,
            duration interval GENERATED ALWAYS AS (left_at - entered_at) STORED,
            reason text NOT NULL,
            actor text NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (account_id, period))""",
        f"CREATE INDEX IF NOT EXISTS {table}_value_idx ON {table} (value, entered_at)",
    )
    if durations is None:
        return statements
    return (
        *statements,
        f"""CREATE OR REPLACE VIEW {durations} AS
            SELECT account_id, value,
                   count(*) AS times_entered,
                   min(entered_at) AS first_entered_at,
                   max(entered_at) AS last_entered_at,
                   sum(coalesce(left_at, now()) - entered_at) AS time_spent,
                   bool_or(left_at IS NULL) AS is_current
            FROM {table} GROUP BY account_id, value""",  # noqa: S608 - names are constants
    )


class PeriodHistory(View):
    """Periods of one dimension of the account.

    A subclass names the event that moves the dimension (``moved_by``), how to
    read the new and previous value from it, and the value an account opens
    with (``None``: no period until the first move).
    """

    table: ClassVar[str]
    opened_with: ClassVar[str | None] = None
    moved_by: ClassVar[type[Any]]

    @staticmethod
    def values(event: Any) -> tuple[str, str | None]:
        """The value the event moves to, and the one it leaves."""
        raise NotImplementedError

    def __init__(self, datastore: PostgresDatastore, application_name: str) -> None:
        super().__init__(datastore, application_name)
        # One statement per move, not an UPDATE and an INSERT, so that a batch's
        # moves go as one run. Both parts see the table as it was before the
        # statement: the new period stays open, numbered after the last one.
        self._enter = SQL(
            "WITH closed AS (UPDATE {0} SET left_at = %(at)s"
            " WHERE account_id = %(account_id)s AND left_at IS NULL)"
            " INSERT INTO {0} (account_id, period, value, previous, entered_at,"
            " reason, actor, position)"
            " SELECT %(account_id)s, coalesce(max(period), 0) + 1, %(value)s,"
            " %(previous)s, %(at)s, %(reason)s, %(actor)s, %(position)s"
            " FROM {0} WHERE account_id = %(account_id)s"
        ).format(Identifier(self.table))

    def apply(self, event: Any, writes: Writes, recorded: RecordedEvent) -> None:
        if isinstance(event, self.moved_by):
            value, previous = self.values(event)
            self.enter(writes, recorded, value, previous, event.reason, event.timestamp)
        elif isinstance(event, Account.AccountOpened) and self.opened_with is not None:
            self.enter(writes, recorded, self.opened_with, None, OPENED, event.timestamp)

    def enter(
        self,
        writes: Writes,
        recorded: RecordedEvent,
        value: str,
        previous: str | None,
        reason: str,
        at: datetime,
    ) -> None:
        """Close the open period (if any) and open the next one, at ``at``."""
        writes.execute(
            self._enter,
            {
                "account_id": recorded.stored.originator_id,
                "value": value,
                "previous": previous,
                "at": at,
                "reason": reason,
                "actor": recorded.actor,
                "position": recorded.position,
            },
        )


class StageHistory(PeriodHistory):
    name = table = "stage_history"
    tables = (table,)
    ddl = _period_ddl(table, "stage_durations")
    opened_with = Stage.EXPLORATION
    moved_by = Account.StageChanged

    @staticmethod
    def values(event: Account.StageChanged) -> tuple[str, str | None]:
        return event.stage, event.previous


class TierHistory(PeriodHistory):
    name = table = "tier_history"
    tables = (table,)
    ddl = _period_ddl(table, "tier_durations")
    opened_with = Tier.TRANSACTIONAL
    moved_by = Account.TierChanged

    @staticmethod
    def values(event: Account.TierChanged) -> tuple[str, str | None]:
        return event.tier, event.previous


class ManagerHistory(PeriodHistory):
    """Who managed the account when: a departing salesperson's accounts stay findable."""

    name = table = "manager_history"
    tables = (table,)
    ddl = _period_ddl(table, None)
    moved_by = Account.AccountManagerAssigned

    @staticmethod
    def values(event: Account.AccountManagerAssigned) -> tuple[str, str | None]:
        return event.manager, event.previous_manager
