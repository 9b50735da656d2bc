"""Keeps every view current: wakes on LISTEN, applies batches, announces progress.

After each round the runner sends ``NOTIFY rapport_projected, '<position>'``
with the position every view has reached, so readers waiting for their own
write (read-your-writes) wake at once instead of polling.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg.sql import SQL, Composed, Identifier, Literal

from domain.application import Accounts
from eventstore.recorder import RecordedEvent, recorder_of, rendered
from eventstore.sealing import sealing_mapper
from projections.account_view import AccountView
from projections.base import REBUILDS_TABLE, VIEW_LOCK_PREFIX, Batch, View
from projections.complaints import Complaints
from projections.deals import Deals
from projections.follow_ups import FollowUps, Goals
from projections.histories import ManagerHistory, StageHistory, TierHistory
from projections.interaction_timeline import InteractionTimeline
from projections.satisfaction import Surveys
from projections.thank_you import ThankYou, ThankYouPolicy

log = logging.getLogger("rapport.projections")

VIEW_CLASSES: tuple[type[View], ...] = (
    AccountView,
    StageHistory,
    TierHistory,
    ManagerHistory,
    InteractionTimeline,
    Complaints,
    Surveys,
    Deals,
    FollowUps,
    Goals,
)
PROJECTED_CHANNEL = "rapport_projected"
BATCH_SIZE = 1000

Progress = Callable[[int, int], None]


class Projections:
    """The views of one application and the loop that keeps them current.

    The loop also drives the thank-you process (``projections.thank_you``),
    after the views: it writes events, which the views then take in.
    """

    def __init__(
        self,
        app: Accounts,
        database_url: str,
        batch_size: int = BATCH_SIZE,
        thank_you: ThankYouPolicy | None = None,
    ) -> None:
        recorder = recorder_of(app)
        self.app = app
        self.recorder = recorder
        self.database_url = database_url
        self.batch_size = batch_size
        self.views = {cls.name: cls(recorder.datastore, app.name) for cls in VIEW_CLASSES}
        # The lock each view takes for a batch (View.process), tried without waiting.
        self._try_locks = rendered(
            SQL(
                "SELECT name FROM unnest(%s::text[]) AS name"
                " WHERE pg_try_advisory_xact_lock(hashtext({} || name))"
            ).format(VIEW_LOCK_PREFIX)
        )
        self._positions_query = rendered(view_positions_sql(self.views.values(), app.name))
        self.thank_you = ThankYou(app, thank_you or ThankYouPolicy.from_env())
        self._failing: set[str] = set()
        """Views that failed on their own: kept out of the shared transaction,
        which they would roll back, until they succeed alone again."""

    def migrate(self) -> None:
        for view in self.views.values():
            view.create_table()
        self.thank_you.create_table()

    def projected_position_sql(self) -> Composed:
        """The position every view has reached: a read of it sees all writes up to it."""
        return projected_position_sql(self.views.values(), self.app.name)

    def standing_sql(self) -> bytes:
        """Where the views stand, in one value that changes whenever any view's
        rows may have (see ``views_standing_sql``); rendered once."""
        return rendered(views_standing_sql(self.views.values(), self.app.name))

    def accounts_standing_sql(self) -> bytes:
        """For the accounts given (``%s``, an array of UUIDs), the position of
        each one's latest event, in order (``latest``), the position every view
        has reached (``reached``), and how many rebuilds the views have had
        (``rebuilds``); rendered once."""
        return rendered(
            SQL(
                "SELECT ({}) AS reached,"
                " (SELECT coalesce(sum(rebuilds), 0) FROM {}) AS rebuilds,"
                " ARRAY(SELECT coalesce((SELECT e.notification_id"
                " FROM {} e WHERE e.originator_id = a.id"
                " ORDER BY e.originator_version DESC LIMIT 1), 0)"
                " FROM unnest(%s::uuid[]) WITH ORDINALITY AS a(id, n) ORDER BY a.n)"
                " AS latest"
            ).format(
                projected_position_sql(self.views.values(), self.app.name),
                Identifier(REBUILDS_TABLE),
                Identifier(self.recorder.events_table_name),
            )
        )

    def _decode(self, recorded: list[RecordedEvent]) -> list[tuple[Any, RecordedEvent]]:
        events = sealing_mapper(self.app).to_domain_events([r.stored for r in recorded])
        return list(zip(events, recorded, strict=True))

    def catch_up(self, notify: Callable[[int], None] | None = None) -> int:
        """Apply every committed event to every view; return the common position.

        A view that fails is left where it stopped (and logged) until the next
        round; the other views go on. So is a view held by a rebuild.
        """
        positions = self._positions()
        stalled: set[str] = set()
        while moving := {n: p for n, p in positions.items() if n not in stalled}:
            recorded = self.recorder.read_after(min(moving.values()), self.batch_size)
            if not recorded:
                break
            batch = self._decode(recorded)
            due = [n for n, p in moving.items() if p < recorded[-1].position]
            together = [n for n in due if n not in self._failing]
            try:
                reached = self._process_together(together, batch) if together else {}
            except Exception:
                log.warning(
                    "views failed in one transaction; each in its own", exc_info=True
                )
                reached = {}
            for name in due:
                if name in reached:
                    positions[name] = reached[name]
                    continue
                # Held by another runner or a rebuild (process waits LOCK_WAIT
                # for it), failing, or failed with the others: on its own.
                try:
                    positions[name] = self.views[name].process(batch)
                except Exception:
                    self._failing.add(name)
                    log.exception("view %s failed after %d", name, positions[name])
                else:
                    self._failing.discard(name)
            stalled.update(n for n in due if positions[n] == moving[n])
            if notify is not None:
                notify(min(positions.values()))
        return min(positions.values())

    def _positions(self) -> dict[str, int]:
        """Where each view stands, in one query."""
        with self.recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(self._positions_query, prepare=True)
            return {row["name"]: row["position"] for row in cur.fetchall()}

    def _process_together(self, names: list[str], batch: Batch) -> dict[str, int]:
        """Apply ``batch`` to the named views in one transaction (one commit for
        all, where each view alone would take one of its own); return where each
        view got to. A view that another runner, or a rebuild, holds is left
        out, for ``catch_up`` to wait for on its own.
        """
        with self.recorder.datastore.transaction(commit=True) as cur:
            cur.execute(self._try_locks, (names,), prepare=True)
            held = [row["name"] for row in cur.fetchall()]
            cur.execute(self._positions_query, prepare=True)
            tracked = {row["name"]: row["position"] for row in cur.fetchall()}
            return {
                name: self.views[name].apply_batch(cur, batch, tracked[name])
                for name in held
            }

    def run(self, stop: threading.Event, idle_wakeup: float = 1.0) -> None:
        """Catch up, then wait for NOTIFY from writers, until ``stop`` is set."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(SQL("LISTEN {}").format(Identifier(self.recorder.channel_name)))

            def announce(position: int) -> None:
                conn.execute("SELECT pg_notify(%s, %s)", (PROJECTED_CHANNEL, str(position)))

            while not stop.is_set():
                announce(self.catch_up(announce))
                self.run_processes()
                # Writers NOTIFY on commit; the timeout bounds how long a
                # stop request, or a missed notification, can go unnoticed.
                for _ in conn.notifies(timeout=idle_wakeup, stop_after=1):
                    pass

    def run_processes(self) -> None:
        """Let the processes act on the events they have not seen; a failure is
        logged, and what failed is tried again next round."""
        try:
            self.thank_you.catch_up()
        except Exception:
            log.exception("the thank-you process failed; it resumes next round")

    def rebuild(self, names: Iterable[str], progress: Progress | None = None) -> None:
        """Replay every event into the named views from an empty state.

        Each view is rebuilt in one transaction: readers see the old rows until
        the new ones commit, and the live runner waits for it on the view's lock.
        """
        total = self.recorder.max_notification_id() or 0
        views = [self.views[name] for name in names]
        # One pass: each batch is read and decoded once, for every view.
        with contextlib.ExitStack() as transactions:
            cursors = [
                transactions.enter_context(view.datastore.transaction(commit=True))
                for view in views
            ]
            for view, cur in zip(views, cursors, strict=True):
                view.reset(cur)
            positions = [0] * len(views)
            position = 0
            while recorded := self.recorder.read_after(position, self.batch_size):
                batch = self._decode(recorded)
                for i, (view, cur) in enumerate(zip(views, cursors, strict=True)):
                    positions[i] = view.apply_batch(cur, batch, positions[i])
                position = recorded[-1].position
                if progress is not None:
                    progress(position, total)
        for view in views:
            log.info("rebuilt %s up to position %d", view.name, position)


def view_positions_sql(views: Iterable[View], application_name: str) -> Composed:
    """Each view's name and the position it has reached, a row each."""
    return SQL(" UNION ALL ").join(
        SQL(
            "SELECT {} AS name, coalesce(max(notification_id), 0) AS position"
            " FROM {} WHERE application_name = {}"
        ).format(view.name, Identifier(view.tracking_table_name), Literal(application_name))
        for view in views
    )


def projected_position_sql(views: Iterable[View], application_name: str) -> Composed:
    """The position every view has reached: the least of theirs."""
    return SQL("SELECT min(position) AS position FROM ({}) AS reached").format(
        view_positions_sql(views, application_name)
    )


def views_standing_sql(views: Iterable[View], application_name: str) -> Composed:
    """Each view's position and the transaction that last wrote its tracking
    row (its ``xmin``), as one array (``standing``). With eventsourcing's older
    tracking, a row per position, the latest row counts.

    A view's rows change only in a transaction that moves its tracking row, or
    in a rebuild, which writes the row anew: when the array is the same, so is
    every view.
    """
    return SQL("SELECT ARRAY[{}] AS standing").format(
        SQL(", ").join(
            SQL(
                "(SELECT notification_id || ':' || xmin FROM {}"
                " WHERE application_name = {} ORDER BY notification_id DESC LIMIT 1)"
            ).format(Identifier(view.tracking_table_name), Literal(application_name))
            for view in views
        )
    )
