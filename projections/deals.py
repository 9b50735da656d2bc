"""``deals``: every deal an account closed, one row each, its amount exact.

Amounts are ``numeric`` (never a float) beside their ISO 4217 currency.
Lifetime values, counts and the trend of the last days are sums over this
table per currency, worked out when they are read (``queries.deal_summaries``);
amounts in different currencies are never added together.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from domain.account import Account
from eventstore.recorder import RecordedEvent
from projections.base import View, Writes


class Deals(View):
    name = "deals"
    tables = ("deals",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS deals (
            account_id uuid NOT NULL,
            deal_id uuid NOT NULL,
            amount numeric NOT NULL CHECK (amount > 0),
            currency text NOT NULL,
            product text NOT NULL,
            place text NOT NULL,
            closed_at timestamptz NOT NULL,
            closed_by text NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (account_id, deal_id))""",
        "CREATE INDEX IF NOT EXISTS deals_account_idx"
        " ON deals (account_id, closed_at DESC, deal_id DESC)",
    )

    @singledispatchmethod
    def apply(self, event: Any, writes: Writes, recorded: RecordedEvent) -> None:
        """Events that close no deal."""

    @apply.register
    def _(self, event: Account.DealClosed, writes: Writes, recorded: RecordedEvent) -> None:
        writes.execute(
            "INSERT INTO deals (account_id, deal_id, amount, currency, product, place,"
            " closed_at, closed_by, position)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                event.originator_id,
                event.deal_id,
                event.amount,
                event.currency,
                event.product,
                event.place,
                event.closed_at,
                recorded.actor,
                recorded.position,
            ),
        )
