"""A view: Postgres tables built only from events, with its own tracking row.

Each view is an eventsourcing ``PostgresTrackingRecorder``: the rows it writes
for a batch of events and its new tracking position commit in one
transaction, so every event is applied exactly once even across crashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor
from psycopg.errors import LockNotAvailable
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from eventstore.recorder import RecordedEvent

Batch = Sequence[tuple[Any, RecordedEvent]]
LOCK_WAIT = 2


class View(PostgresTrackingRecorder):
    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    """Tables this view owns, emptied by a rebuild."""
    ddl: ClassVar[tuple[str, ...]]
    """Idempotent statements that create the tables."""

    def __init__(self, datastore: PostgresDatastore, application_name: str) -> None:
        super().__init__(datastore, tracking_table_name=f"{self.name}_tracking")
        self.application_name = application_name
        self.sql_create_statements.extend(
            Composed([SQL(statement)]) for statement in self.ddl
        )
        key = f"rapport-view:{self.name}"
        self._lock = SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(key)
        self._lock_wait = SQL("SET LOCAL lock_timeout = {}").format(f"{LOCK_WAIT}s")

    @singledispatchmethod
    def apply(self, event: Any, cur: Cursor[DictRow], recorded: RecordedEvent) -> None:
        """Events this view does not need are passed over."""

    def process(self, batch: Batch) -> int:
        """Apply the events of ``batch`` this view has not seen; return its position.

        Another runner holds the view's lock for a batch; a rebuild holds it
        for the whole replay. After LOCK_WAIT the batch is left for the next
        round: the rebuild replays it anyway, and the other views keep moving.
        """
        try:
            with self.datastore.transaction(commit=True) as cur:
                cur.execute(self._lock_wait)
                cur.execute(self._lock)
                cur.execute("SET LOCAL lock_timeout = 0")
                position = self._max_tracking_id(self.application_name, cur) or 0
                return self.apply_batch(cur, batch, position)
        except OperationalError as error:
            if not isinstance(error.__cause__, LockNotAvailable):
                raise
            return self.position()

    def apply_batch(self, cur: Cursor[DictRow], batch: Batch, position: int) -> int:
        """Apply the events after ``position`` and track the last one, in ``cur``.

        In pipeline mode: the statements go to the server without waiting for
        each answer (a handler that reads waits for its own).
        """
        fresh = [(e, r) for e, r in batch if r.position > position]
        apply = self.apply  # bound once: binding a dispatching method has a cost
        with cur.connection.pipeline():
            for event, recorded in fresh:
                apply(event, cur, recorded)
        if not fresh:
            return position
        position = fresh[-1][1].position
        self._insert_tracking(cur, Tracking(self.application_name, position))
        return position

    def position(self) -> int:
        return self.max_tracking_id(self.application_name) or 0

    def reset(self, cur: Cursor[DictRow]) -> None:
        """Empty the view and forget its position, inside the caller's transaction.

        DELETE, not TRUNCATE: TRUNCATE would lock readers out until the caller
        commits, where DELETE lets them read the old rows meanwhile.
        """
        cur.execute(self._lock)
        for table in self.tables:
            cur.execute(SQL("DELETE FROM {}").format(Identifier(table)))
        cur.execute(
            SQL("DELETE FROM {} WHERE application_name = %s").format(
                Identifier(self.tracking_table_name)
            ),
            (self.application_name,),
        )
