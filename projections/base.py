"""A view: Postgres tables built only from events, with its own tracking row.

Each view is an eventsourcing ``PostgresTrackingRecorder``: the rows it writes
for a batch of events and its new tracking position commit in one
transaction, so every event is applied exactly once even across crashes.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor
from psycopg.abc import Params, QueryNoTemplate
from psycopg.errors import LockNotAvailable
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from eventstore.recorder import RecordedEvent

Batch = Sequence[tuple[Any, RecordedEvent]]
LOCK_WAIT = 2
VIEW_LOCK_PREFIX = "rapport-view:"
"""Each view's advisory lock is on the hash of this and its name."""
RowKey = tuple[str, Mapping[str, Any]]
"""A table and the primary key of one of its rows."""
NOTHING: Mapping[str, Any] = MappingProxyType({})
"""No changes: a default that cannot be changed in place."""
Handler = Callable[[Any, "Writes", RecordedEvent], None]


REBUILDS_TABLE = "view_rebuilds"
REBUILDS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {REBUILDS_TABLE}"
    " (view_name text PRIMARY KEY, rebuilds bigint NOT NULL)"
)
"""How many times each view was emptied for a rebuild: its rows change with
no new event then, and readers that keep answers need to know (``api.answers``)."""
COUNT_REBUILD = SQL(
    f"INSERT INTO {REBUILDS_TABLE} (view_name, rebuilds) VALUES (%s, 1)"  # noqa: S608 - a constant
    f" ON CONFLICT (view_name) DO UPDATE SET rebuilds = {REBUILDS_TABLE}.rebuilds + 1"
)


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
            Composed([SQL(statement)]) for statement in (REBUILDS_DDL, *self.ddl)
        )
        key = f"{VIEW_LOCK_PREFIX}{self.name}"
        self._lock = SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(key)
        self._lock_wait = SQL("SET LOCAL lock_timeout = {}").format(f"{LOCK_WAIT}s")
        self._handlers: dict[type[Any], Handler] = {}

    @singledispatchmethod
    def apply(self, event: Any, writes: Writes, recorded: RecordedEvent) -> None:
        """Events this view does not need are passed over."""

    def _handler(self, kind: type[Any]) -> Handler:
        """What ``apply`` does with events of type ``kind``, found once per type
        instead of once per event and view."""
        apply = inspect.getattr_static(self, "apply")
        if not isinstance(apply, functools.singledispatchmethod):
            return self.apply
        self.apply  # noqa: B018 - eventsourcing registers some handlers on first use
        handler = apply.dispatcher.dispatch(kind)
        return handler.__get__(self, type(self))  # type: ignore[no-any-return]

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

        The handlers queue their statements (``Writes``), sent once they have
        seen the whole batch: a few round trips and statements for the batch,
        rather than one or two statements per event.
        """
        if batch and batch[0][1].position > position:  # positions ascend
            fresh = batch
        else:
            fresh = [(e, r) for e, r in batch if r.position > position]
        if not fresh:
            return position
        writes = Writes(cur)
        handlers = self._handlers
        for event, recorded in fresh:
            kind = type(event)
            handler = handlers.get(kind)
            if handler is None:
                handler = handlers[kind] = self._handler(kind)
            handler(event, writes, recorded)
        writes.flush()
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
        cur.execute(COUNT_REBUILD, (self.name,))


class Writes:
    """The statements a view makes for one batch, queued, and sent in runs.

    A statement costs the client tens of microseconds, pipelined or not, often
    more than it costs the server. Queued, a run of one statement goes as one
    ``executemany``, and a run of rows for one table as one binary ``COPY``
    (``insert``), a few microseconds a row. Runs go in the order they were
    queued.

    ``update`` folds the changes of several events to one row into one UPDATE,
    queued when the batch is sent, or before the next statement that may touch
    the row: any statement but those that name another row (``row``).
    """

    def __init__(self, cur: Cursor[DictRow]) -> None:
        self.cur = cur
        self._runs: list[_Run] = []
        self._updates: dict[_RowId, _Update] = {}

    def execute(
        self,
        statement: QueryNoTemplate,
        params: Params | None = None,
        *,
        row: RowKey | None = None,
    ) -> None:
        """Queue ``statement``; ``row``: the one row it touches, if only one."""
        if row is None:
            self._settle_all()
        elif self._updates:
            self._settle(_row_id(*row))
        self._queue(statement, params)

    def insert(self, into: Insert, values: Sequence[Any]) -> None:
        """Queue a row to insert, its ``values`` in the order of ``into.columns``."""
        self._settle_all()
        self._queue(into, values)

    def update(
        self,
        table: str,
        key: Mapping[str, Any],
        *,
        assign: Mapping[str, Any] = NOTHING,
        add: Mapping[str, int] = NOTHING,
        greatest: Mapping[str, Any] = NOTHING,
    ) -> None:
        """Change the row of ``table`` whose primary key is ``key``, as
        ``UPDATE table SET a = v, n = n + k, m = greatest(m, w) WHERE key``."""
        row = _row_id(table, key)
        pending = self._updates.get(row)
        if pending is not None and pending.merge(assign, add, greatest):
            return
        if pending is not None:  # a column would change in two ways: one at a time
            self._settle(row)
        pending = self._updates[row] = _Update()
        pending.merge(assign, add, greatest)

    def fetchone(
        self, statement: QueryNoTemplate, params: Params | None = None
    ) -> DictRow | None:
        """Send what is queued, then run a query and return its first row."""
        self.flush()
        self.cur.execute(statement, params)
        return self.cur.fetchone()

    def flush(self) -> None:
        """Send every queued statement, in order."""
        self._settle_all()
        runs, self._runs = self._runs, []
        cur = self.cur
        for copies, group in itertools.groupby(
            runs, lambda run: isinstance(run.statement, Insert)
        ):
            # The statements between two COPYs go in one pipeline; a COPY cannot.
            with contextlib.nullcontext() if copies else cur.connection.pipeline():
                for run in group:
                    if isinstance(run.statement, Insert):
                        with cur.copy(run.statement.sql) as copy:
                            copy.set_types(run.statement.types)
                            for values in run.params:
                                copy.write_row(values)
                    elif len(run.params) == 1:
                        cur.execute(run.statement, run.params[0])
                    else:
                        cur.executemany(run.statement, run.params)

    def _queue(self, statement: QueryNoTemplate | Insert, params: Any) -> None:
        runs = self._runs
        if runs and runs[-1].statement == statement:
            runs[-1].params.append(params)
        else:
            runs.append(_Run(statement, [params]))

    def _settle(self, row: _RowId) -> None:
        pending = self._updates.pop(row, None)
        if pending is not None:
            self._queue(*pending.statement(row))

    def _settle_all(self) -> None:
        """Queue every pending update, those of one statement together: they
        are for distinct rows, so their order does not matter."""
        if not self._updates:
            return
        statements = [pending.statement(row) for row, pending in self._updates.items()]
        self._updates.clear()
        statements.sort(key=lambda statement: id(statement[0]))
        for statement, params in statements:
            self._queue(statement, params)


class Insert:
    """Rows for a table, as ``Writes.insert`` sends them: binary COPY, which
    needs each column's type exactly as the table has it."""

    __slots__ = ("columns", "sql", "table", "types")

    def __init__(self, table: str, columns: Mapping[str, str]) -> None:
        """``columns``: the name and Postgres type of each column given."""
        self.table = table
        self.columns = tuple(columns)
        self.types = tuple(columns.values())
        self.sql = SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            Identifier(table), SQL(", ").join(map(Identifier, self.columns))
        )


class _Run:
    __slots__ = ("params", "statement")

    def __init__(self, statement: QueryNoTemplate | Insert, params: list[Any]) -> None:
        self.statement = statement
        self.params = params


_RowId = tuple[str, tuple[tuple[str, Any], ...]]


def _row_id(table: str, key: Mapping[str, Any]) -> _RowId:
    return table, tuple(key.items())


class _Update:
    """Pending changes to one row: values assigned (the last one wins), numbers
    added up, and the greatest of the values given (moments or numbers, which
    Python orders as Postgres does)."""

    __slots__ = ("add", "assign", "greatest")

    def __init__(self) -> None:
        self.assign: dict[str, Any] = {}
        self.add: dict[str, int] = {}
        self.greatest: dict[str, Any] = {}

    def merge(
        self,
        assign: Mapping[str, Any],
        add: Mapping[str, int],
        greatest: Mapping[str, Any],
    ) -> bool:
        """Fold changes in; False, folding nothing, if a column would then take
        two kinds of change (one UPDATE says one per column)."""
        if not (
            self.add.keys().isdisjoint(assign)
            and self.greatest.keys().isdisjoint(assign)
            and self.assign.keys().isdisjoint(add)
            and self.greatest.keys().isdisjoint(add)
            and self.assign.keys().isdisjoint(greatest)
            and self.add.keys().isdisjoint(greatest)
        ):
            return False
        self.assign.update(assign)
        for column, amount in add.items():
            self.add[column] = self.add.get(column, 0) + amount
        for column, value in greatest.items():
            known = self.greatest.get(column)
            # As greatest() in SQL, a null is passed over.
            self.greatest[column] = (
                value if known is None else known if value is None else max(known, value)
            )
        return True

    def statement(self, row: _RowId) -> tuple[Composed, list[Any]]:
        """The UPDATE of ``row`` and its parameters."""
        table, key = row
        assigned = tuple(sorted(self.assign))
        added = tuple(sorted(self.add))
        greatest = tuple(sorted(self.greatest))
        params = [self.assign[c] for c in assigned]
        params.extend(self.add[c] for c in added)
        params.extend(self.greatest[c] for c in greatest)
        params.extend(value for _, value in key)
        columns = tuple(column for column, _ in key)
        return _update_sql(table, columns, assigned, added, greatest), params


@functools.lru_cache(maxsize=1024)
def _update_sql(
    table: str,
    key: tuple[str, ...],
    assigned: tuple[str, ...],
    added: tuple[str, ...],
    greatest: tuple[str, ...],
) -> Composed:
    """The UPDATE of one row with the changes named; cached, as few shapes recur."""
    assignments = [SQL("{} = %s").format(Identifier(c)) for c in assigned]
    assignments += [SQL("{0} = {0} + %s").format(Identifier(c)) for c in added]
    assignments += [SQL("{0} = greatest({0}, %s)").format(Identifier(c)) for c in greatest]
    return SQL("UPDATE {} SET {} WHERE {}").format(
        Identifier(table),
        SQL(", ").join(assignments),
        SQL(" AND ").join(SQL("{} = %s").format(Identifier(c)) for c in key),
    )
