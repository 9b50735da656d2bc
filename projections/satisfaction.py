"""``surveys``: every satisfaction survey an account answered, one row each.

The view keeps the answers only. CSAT and NPS depend on a rolling window and
on the current time, so the queries work them out in SQL when they read
(``queries.satisfaction_by_account``, ``queries.portfolio``): a survey leaves
the window as time passes, with no event needed.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from domain.account import Account
from domain.personal import ERASED
from eventstore.recorder import RecordedEvent
from projections.base import View, Writes


class Surveys(View):
    name = "surveys"
    tables = ("surveys",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS surveys (
            account_id uuid NOT NULL,
            survey_id uuid NOT NULL,
            satisfaction text NOT NULL,
            intent_to_buy_again text NOT NULL,
            likelihood_to_recommend smallint NOT NULL,
            comment text NOT NULL,
            contact_id uuid,
            answered_at timestamptz NOT NULL,
            recorded_by text NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (account_id, survey_id))""",
        "CREATE INDEX IF NOT EXISTS surveys_account_idx"
        " ON surveys (account_id, answered_at DESC, survey_id DESC)",
        "CREATE INDEX IF NOT EXISTS surveys_answered_idx ON surveys (answered_at)",
    )

    @singledispatchmethod
    def apply(self, event: Any, writes: Writes, recorded: RecordedEvent) -> None:
        """Events that record no survey."""

    @apply.register
    def _(
        self, event: Account.SurveyRecorded, writes: Writes, recorded: RecordedEvent
    ) -> None:
        writes.execute(
            "INSERT INTO surveys (account_id, survey_id, satisfaction,"
            " intent_to_buy_again, likelihood_to_recommend, comment, contact_id,"
            " answered_at, recorded_by, position)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                event.originator_id,
                event.survey_id,
                event.satisfaction,
                event.intent_to_buy_again,
                event.likelihood_to_recommend,
                event.comment,
                event.contact_id,
                event.answered_at,
                recorded.actor,
                recorded.position,
            ),
        )

    @apply.register
    def _(
        self,
        event: Account.PersonalDataErased,
        writes: Writes,
        recorded: RecordedEvent,
    ) -> None:
        """A comment is the account's personal data (a contact's erasure leaves
        it): it reads as erased, as in the events; the scores stay."""
        if event.contact_id is None:
            writes.execute(
                "UPDATE surveys SET comment = %s WHERE account_id = %s AND comment <> ''",
                (ERASED, event.originator_id),
            )
