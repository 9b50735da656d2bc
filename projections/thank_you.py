"""The thank-you process: after a sale, follow up at once.

For every ``DealClosed`` the process schedules a follow-up on the account: thank
the customer for the deal and check their satisfaction, due a configurable
delay after the deal was closed (``RAPPORT_THANK_YOU_DELAY_HOURS``), owned by
the account's manager at the time of the deal (or, for an account without one,
``RAPPORT_THANK_YOU_FALLBACK_OWNER``). Its events say who made them:
``process:thank-you``, caused by the deal's event.

It reads the event log after its own tracked position (``thank_you_tracking``,
one row like a view's) and runs in the projection runner, after the views.
Exactly once per deal: the follow-up's id is derived from the deal's id
(``thank_you_follow_up_id``) and the account refuses a second follow-up with
that id, so a run that crashed between scheduling and recording its position,
a restart from an earlier position, or two runners at once schedule nothing
twice; the position only saves the work of looking again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.utils import get_topic
from psycopg.errors import LockNotAvailable
from psycopg.sql import SQL

from domain.account import Account
from domain.application import Accounts, CommandMeta
from domain.errors import FollowUpExists, SubjectErased
from domain.values import FollowedKind
from eventstore.recorder import RecordedEvent, recorder_of

log = logging.getLogger("rapport.thank_you")

ACTOR = "process:thank-you"
NAMESPACE = uuid5(NAMESPACE_URL, "https://rapport.invalid/thank-you")
BATCH_SIZE = 1000
LOCK_WAIT = 2
MAX_DELAY_HOURS = 24 * 365
_DEAL_CLOSED = get_topic(Account.DealClosed)


def thank_you_follow_up_id(deal_id: UUID) -> UUID:
    """The id of a deal's thank-you follow-up: the same for every run."""
    return uuid5(NAMESPACE, str(deal_id))


@dataclass(frozen=True)
class ThankYouPolicy:
    delay: timedelta = timedelta(hours=24)
    """How long after the deal was closed the follow-up is due."""
    fallback_owner: str = "unassigned"
    """Who owns it when the account had no manager at the time of the deal."""

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.delay <= timedelta(hours=MAX_DELAY_HOURS):
            msg = f"the thank-you delay must be 0 to {MAX_DELAY_HOURS} hours"
            raise ValueError(msg)
        if not self.fallback_owner.strip():
            msg = "the thank-you fallback owner must not be empty"
            raise ValueError(msg)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ThankYouPolicy:
        env = os.environ if environ is None else environ
        hours = env.get("RAPPORT_THANK_YOU_DELAY_HOURS", "").strip()
        owner = env.get("RAPPORT_THANK_YOU_FALLBACK_OWNER", "").strip()
        return cls(
            delay=timedelta(hours=float(hours)) if hours else cls.delay,
            fallback_owner=owner or cls.fallback_owner,
        )


class ThankYou(PostgresTrackingRecorder):
    """Schedules each deal's thank-you follow-up; tracks how far it has read."""

    name = "thank_you"

    def __init__(
        self, app: Accounts, policy: ThankYouPolicy, batch_size: int = BATCH_SIZE
    ) -> None:
        self.recorder = recorder_of(app)
        super().__init__(self.recorder.datastore, tracking_table_name="thank_you_tracking")
        self.app = app
        self.policy = policy
        self.batch_size = batch_size
        key = f"rapport-process:{self.name}"
        self._lock = SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(key)
        self._lock_wait = SQL("SET LOCAL lock_timeout = {}").format(f"{LOCK_WAIT}s")

    def position(self) -> int:
        return self.max_tracking_id(self.app.name) or 0

    def catch_up(self) -> int:
        """Schedule the follow-up of every deal after the tracked position;
        return the new position.

        A batch is worked through under the process's lock (another runner
        waits, or leaves it for its next round), and its position recorded
        when it is done. A deal that fails stops the batch there: the position
        of the events before it is recorded, and it is tried again next round.
        """
        while True:
            try:
                with self.datastore.transaction(commit=True) as cur:
                    cur.execute(self._lock_wait)
                    cur.execute(self._lock)
                    cur.execute("SET LOCAL lock_timeout = 0")
                    position = self._max_tracking_id(self.app.name, cur) or 0
                    # Positions commit in order: every event up to the head seen
                    # now is visible, so the deals among them are all there are.
                    head = self.recorder.max_notification_id() or 0
                    if head <= position:
                        return position
                    deals = self.recorder.read_after(
                        position, self.batch_size, topics=[_DEAL_CLOSED], up_to=head
                    )
                    # A full batch may stop short of the head; otherwise all is read.
                    full = len(deals) == self.batch_size
                    reached = deals[-1].position if full else head
                    done, failure = self._work_through(deals, position, reached)
                    if done > position:
                        self._insert_tracking(cur, Tracking(self.app.name, done))
            except OperationalError as error:
                if not isinstance(error.__cause__, LockNotAvailable):
                    raise
                return self.position()
            if failure is not None:
                raise failure

    def _work_through(
        self, deals: list[RecordedEvent], position: int, reached: int
    ) -> tuple[int, Exception | None]:
        """The position up to which the batch is done (``reached`` when every
        deal went through), and what stopped it."""
        for deal in deals:
            try:
                self.thank(deal)
            except Exception as error:  # noqa: BLE001 - recorded, raised by the caller
                return position, error
            position = deal.position
        return reached, None

    def thank(self, recorded: RecordedEvent) -> None:
        """Schedule the thank-you follow-up of one ``DealClosed``, unless it is."""
        deal = self.app.mapper.to_domain_event(recorded.stored)
        assert isinstance(deal, Account.DealClosed)  # noqa: S101 - chosen by topic
        account_id = deal.originator_id
        follow_up_id = thank_you_follow_up_id(deal.deal_id)
        if follow_up_id in self.app.get_account(account_id).follow_ups:
            return
        manager = self.app.get_account(account_id, deal.originator_version).manager
        meta = CommandMeta(
            actor=ACTOR,
            correlation_id=recorded.correlation_id or recorded.event_id,
            causation_id=recorded.event_id,
        )
        reason = (
            f"Thank the customer for deal {deal.deal_id} ({deal.product}) "
            "and check their satisfaction"
        )
        for text in (reason, ""):
            try:
                self.app.schedule_follow_up(
                    meta,
                    account_id,
                    follow_up_id=follow_up_id,
                    due=deal.closed_at + self.policy.delay,
                    owner=manager or self.policy.fallback_owner,
                    reason=text,
                    follows_kind=FollowedKind.DEAL,
                    follows_id=deal.deal_id,
                )
            except FollowUpExists:
                return  # scheduled meanwhile, by another runner
            except SubjectErased:
                continue  # the account's personal data was erased: no reason
            log.info(
                "thank-you follow-up %s scheduled for deal %s", follow_up_id, deal.deal_id
            )
            return
