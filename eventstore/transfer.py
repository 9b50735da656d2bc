"""Export the event log as NDJSON, and import it into an empty store.

One JSON object per line, in position order, with every column of the events
table; ``state`` is the event's stored JSON. An import keeps positions, ids,
times and actors, and refuses the whole file if an event's content no longer
matches its exported hash (an edited export does not import). A whole-store
export also keeps its chain: the imported hashes equal the exported ones, and a
missing line is refused. An account's export starts a new chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.sql import SQL, Composed

from eventstore.recorder import RapportRecorder

COLUMNS = (
    "notification_id",
    "event_id",
    "originator_id",
    "originator_version",
    "topic",
    "state",
    "occurred_at",
    "recorded_at",
    "actor",
    "correlation_id",
    "causation_id",
    "command_id",
    "prev_hash",
    "hash",
)
BATCH = 1000

Progress = Callable[[int], None]


class ImportRefused(Exception):
    """The target is not empty, or the file is not an intact export."""


def export_query(
    recorder: RapportRecorder, account_id: UUID | None
) -> tuple[Composed, list[Any]]:
    query = (
        SQL("SELECT {} FROM ").format(SQL(", ").join(map(SQL, COLUMNS))) + recorder.table
    )
    params: list[Any] = []
    if account_id is not None:
        query += SQL(" WHERE originator_id = %s")
        params.append(account_id)
    return query + SQL(" ORDER BY notification_id"), params


def to_line(row: dict[str, Any]) -> str:
    record = {
        "position": row["notification_id"],
        "event_id": str(row["event_id"]),
        "account_id": str(row["originator_id"]),
        "version": row["originator_version"],
        "type": row["topic"].rsplit(".", 1)[-1],
        "topic": row["topic"],
        "occurred_at": row["occurred_at"].isoformat(),
        "recorded_at": row["recorded_at"].isoformat(),
        "actor": row["actor"],
        "correlation_id": _text(row["correlation_id"]),
        "causation_id": _text(row["causation_id"]),
        "command_id": _text(row["command_id"]),
        "prev_hash": _hex(row["prev_hash"]),
        "hash": _hex(row["hash"]),
        "state": json.loads(bytes(row["state"])),
    }
    return json.dumps(record, ensure_ascii=False)


def export_lines(
    recorder: RapportRecorder, account_id: UUID | None = None
) -> Iterator[str]:
    """Lines of the export, read through a server-side cursor (constant memory)."""
    query, params = export_query(recorder, account_id)
    with recorder.datastore.transaction(commit=False) as cur:
        named = cur.connection.cursor(name="rapport_export")
        named.execute(query, params)
        while rows := named.fetchmany(BATCH):
            yield from (to_line(row) for row in rows)


def import_lines(
    recorder: RapportRecorder, lines: Iterable[str], progress: Progress | None = None
) -> int:
    """Insert an export into an empty events table, in one transaction."""
    insert = (
        SQL("INSERT INTO ")
        + recorder.table
        + SQL(
            " (notification_id, event_id, originator_id, originator_version, topic,"
            " state, occurred_at, recorded_at, actor, correlation_id, causation_id,"
            " command_id) SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::uuid[],"
            " %s::bigint[], %s::text[], %s::bytea[], %s::timestamptz[],"
            " %s::timestamptz[], %s::text[], %s::uuid[], %s::uuid[], %s::uuid[])"
            " RETURNING prev_hash"
        )
    )
    # Each event's content, checked against the hash it was exported with.
    check = (
        SQL("SELECT p.position FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[])")
        + SQL(" AS p(position, prev, hash) JOIN ")
        + recorder.table
        + SQL(" e ON e.notification_id = p.position WHERE ")
        + recorder.digest
        + SQL("(p.prev, e) IS DISTINCT FROM p.hash ORDER BY p.position LIMIT 1")
    )
    count = last_position = 0
    with recorder.datastore.transaction(commit=True) as cur:
        recorder._lock_table(cur)  # noqa: SLF001 - the writers' own lock
        cur.execute(SQL("SELECT 1 FROM ") + recorder.table + SQL(" LIMIT 1"))
        if cur.fetchone() is not None:
            raise ImportRefused("the events table is not empty; import into a new database")
        whole_store: bool | None = None
        for batch in _batches(lines):
            if whole_store is None:
                whole_store = batch[0].get("prev_hash") is None
            cur.execute(insert, _columns(batch))
            chained = cur.fetchall()
            cur.execute(check, _hashes(batch))
            altered = cur.fetchone()
            if altered is not None:
                raise ImportRefused(
                    f"position {altered['position']}: its content does not match its "
                    "hash; the export was altered"
                )
            for record, row in zip(batch, chained, strict=True):
                if whole_store and record["prev_hash"] != _hex(row["prev_hash"]):
                    raise ImportRefused(
                        f"position {record['position']}: the event before it in "
                        "the export is missing or out of place"
                    )
            count += len(batch)
            last_position = batch[-1]["position"]
            if progress is not None:
                progress(count)
        if last_position:
            # New events continue after the imported ones.
            cur.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                (
                    f"{recorder.datastore.schema}.{recorder.events_table_name}",
                    last_position,
                ),
            )
    return count


def _batches(lines: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            batch.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ImportRefused(f"line {number} is not JSON: {error}") from None
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _columns(batch: list[dict[str, Any]]) -> list[list[Any]]:
    try:
        return [
            [r["position"] for r in batch],
            [r["event_id"] for r in batch],
            [r["account_id"] for r in batch],
            [r["version"] for r in batch],
            [r["topic"] for r in batch],
            [_state(r["state"]) for r in batch],
            [datetime.fromisoformat(r["occurred_at"]) for r in batch],
            [datetime.fromisoformat(r["recorded_at"]) for r in batch],
            [r["actor"] for r in batch],
            [r["correlation_id"] for r in batch],
            [r["causation_id"] for r in batch],
            [r["command_id"] for r in batch],
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise ImportRefused(f"not an export line: {error!r}") from None


def _hashes(batch: list[dict[str, Any]]) -> list[list[Any]]:
    try:
        return [
            [r["position"] for r in batch],
            [
                None if r["prev_hash"] is None else bytes.fromhex(r["prev_hash"])
                for r in batch
            ],
            [bytes.fromhex(r["hash"]) for r in batch],
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise ImportRefused(f"not an export line: {error!r}") from None


def _hex(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).hex()


def _state(state: Any) -> bytes:
    # The same encoding eventsourcing's JSON transcoder writes.
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)
