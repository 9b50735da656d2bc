"""Export the event log as NDJSON, and import it into an empty store.

One JSON object per line: a header (format, scope), the events in position
order with every column of the events table (``state`` is the event's stored
JSON, personal values in it sealed), the keys that open those values (one
``subject_key`` line per subject; an erased subject's key is null), and an end
line with the counts and the last event's hash. An export with its keys is as
sensitive as the database; one without them reads every personal value as
erased.

An import keeps positions, ids, times and actors. It refuses the whole file,
writing nothing, if an event's content no longer matches its exported hash, if
events are out of order, or if the count or last hash differs from the end
line. A whole-store export also
keeps its chain, so the imported hashes equal the exported ones. An account's
export starts a new chain.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.sql import SQL, Composed

from eventstore.recorder import RapportRecorder, event_type

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
KEY_COLUMNS = ("account_id", "subject_id", "key", "created_at", "erased_at", "erased_by")
BATCH = 1000
FORMAT = 1

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
        "type": event_type(row["topic"]),
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


def key_line(row: dict[str, Any]) -> str:
    key = None if row["key"] is None else base64.b64encode(row["key"]).decode()
    return json.dumps(
        {
            "subject_key": {
                "account_id": str(row["account_id"]),
                "subject_id": str(row["subject_id"]),
                "key": key,
                "created_at": row["created_at"].isoformat(),
                "erased_at": _iso(row["erased_at"]),
                "erased_by": _text(row["erased_by"]),
            }
        }
    )


def export_lines(
    recorder: RapportRecorder, account_id: UUID | None = None, *, keys: bool = True
) -> Iterator[str]:
    """A header line, the events, their keys, and an end line with the counts.

    Read in one snapshot through a server-side cursor (constant memory).
    Without ``keys`` the export carries no key, and its personal values stay
    sealed wherever it is imported.
    """
    query, params = export_query(recorder, account_id)
    yield json.dumps(
        {
            "rapport_export": FORMAT,
            "scope": "store" if account_id is None else "account",
            "account_id": _text(account_id),
        }
    )
    count, last, key_count = 0, None, 0
    with recorder.datastore.transaction(commit=False) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        named = cur.connection.cursor(name="rapport_export")
        named.execute(query, params)
        while rows := named.fetchmany(BATCH):
            count, last = count + len(rows), rows[-1]
            yield from (to_line(row) for row in rows)
        named.close()
        if keys:
            key_query, key_params = keys_query(recorder, account_id)
            cur.execute(key_query, key_params)
            for row in cur:
                key_count += 1
                yield key_line(row)
    yield json.dumps(
        {
            "end": True,
            "events": count,
            "keys": key_count,
            "last_position": None if last is None else last["notification_id"],
            "last_hash": None if last is None else _hex(last["hash"]),
        }
    )


def keys_query(
    recorder: RapportRecorder, account_id: UUID | None
) -> tuple[Composed, list[Any]]:
    query = (
        SQL("SELECT {} FROM ").format(SQL(", ").join(map(SQL, KEY_COLUMNS)))
        + recorder.keys_table
    )
    params: list[Any] = []
    if account_id is not None:
        query += SQL(" WHERE account_id = %s")
        params.append(account_id)
    return query + SQL(" ORDER BY account_id, subject_id"), params


class _Export:
    """Reads an export's lines: the header, batches of events, the end line."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = (
            (number, line) for number, line in enumerate(lines, start=1) if line.strip()
        )
        self.header = self._header()
        self.end: dict[str, Any] | None = None
        self.count = 0
        self.last: dict[str, Any] | None = None
        self.keys: list[dict[str, Any]] = []

    @property
    def whole_store(self) -> bool:
        return bool(self.header["scope"] == "store")

    def _header(self) -> dict[str, Any]:
        first = next(self.lines, None)
        header = None if first is None else _json(*first)
        if header is None or header.get("rapport_export") != FORMAT:
            raise ImportRefused("not a Rapport export: the header line is missing")
        if header.get("scope") not in {"store", "account"}:
            raise ImportRefused(f"unknown export scope: {header.get('scope')!r}")
        return header

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        for number, line in self.lines:
            record = _json(number, line)
            if self.end is not None:
                raise ImportRefused(f"line {number} follows the end line")
            if record.get("end") is True:
                self.end = record
                continue
            if isinstance(record.get("subject_key"), dict):
                self.keys.append(record["subject_key"])
                continue
            if self.keys:
                raise ImportRefused(f"line {number}: an event follows the keys")
            self._check_order(number, record)
            batch.append(record)
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
        self._check_end()

    def _check_order(self, number: int, record: dict[str, Any]) -> None:
        position = record.get("position")
        if not isinstance(position, int):
            raise ImportRefused(f"line {number} is not an event of an export")
        if self.last is None and self.whole_store and record.get("prev_hash") is not None:
            raise ImportRefused("the export's first events are missing")
        if self.last is not None and position <= self.last["position"]:
            raise ImportRefused(f"line {number}: position {position} is out of order")
        self.last = record
        self.count += 1

    def _check_end(self) -> None:
        if self.end is None:
            raise ImportRefused("the export is incomplete: its end line is missing")
        last_hash = None if self.last is None else self.last.get("hash")
        if self.end.get("keys", 0) != len(self.keys):
            raise ImportRefused(
                f"the end line counts {self.end.get('keys')} keys; the file holds "
                f"{len(self.keys)}: keys are missing"
            )
        if (self.end.get("events"), self.end.get("last_hash")) != (self.count, last_hash):
            raise ImportRefused(
                f"the end line counts {self.end.get('events')} events ending in hash "
                f"{self.end.get('last_hash')}; the file holds {self.count} ending in "
                f"{last_hash}: events are missing"
            )


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
    export = _Export(lines)
    with recorder.datastore.transaction(commit=True) as cur:
        recorder._lock_table(cur)  # noqa: SLF001 - the writers' own lock
        cur.execute(
            SQL("SELECT EXISTS (SELECT FROM ")
            + recorder.table
            + SQL(") OR EXISTS (SELECT FROM ")
            + recorder.keys_table
            + SQL(") AS used")
        )
        row = cur.fetchone()
        if row is not None and row["used"]:
            raise ImportRefused("the events table is not empty; import into a new database")
        try:
            for batch in export.batches():
                cur.execute(insert, _columns(batch))
                chained = cur.fetchall()
                cur.execute(check, _hashes(batch))
                altered = cur.fetchone()
                if altered is not None:
                    raise ImportRefused(
                        f"position {altered['position']}: its content does not match "
                        "its hash; the export was altered"
                    )
                for record, row in zip(batch, chained, strict=True):
                    if export.whole_store and record["prev_hash"] != _hex(row["prev_hash"]):
                        raise ImportRefused(
                            f"position {record['position']}: the event before it in "
                            "the export is missing or out of place"
                        )
                if progress is not None:
                    progress(export.count)
            _import_keys(cur, recorder, export.keys)
        except (psycopg.DataError, psycopg.IntegrityError) as error:
            raise ImportRefused(f"a value in the export is malformed: {error}") from None
        if export.last is not None:
            # New events continue after the imported ones.
            cur.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                (
                    f"{recorder.datastore.schema}.{recorder.events_table_name}",
                    export.last["position"],
                ),
            )
    return export.count


def _import_keys(
    cur: psycopg.Cursor[Any], recorder: RapportRecorder, keys: list[dict[str, Any]]
) -> None:
    """Keys as exported. An erasure imported with the events has already
    left its tombstone, which a key line does not replace; and a key of an
    account erased as a whole is never used.
    """
    try:
        columns = [
            [k["account_id"] for k in keys],
            [k["subject_id"] for k in keys],
            [None if k["key"] is None else base64.b64decode(k["key"]) for k in keys],
            [datetime.fromisoformat(k["created_at"]) for k in keys],
            [_moment(k["erased_at"]) for k in keys],
            [k["erased_by"] for k in keys],
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise ImportRefused(f"not a key line: {error!r}") from None
    cur.execute(
        SQL("INSERT INTO ")
        + recorder.keys_table
        + SQL(
            " ({}) SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::bytea[],"
            " %s::timestamptz[], %s::timestamptz[], %s::uuid[])"
            " ON CONFLICT (account_id, subject_id) DO NOTHING"
        ).format(SQL(", ").join(map(SQL, KEY_COLUMNS))),
        columns,
    )
    # A value sealed under a key the export did not carry can never be opened
    # here: its subject counts as erased, so that no new key is made for it
    # (values sealed later would open, the earlier ones would not).
    cur.execute(
        SQL("INSERT INTO ")
        + recorder.keys_table
        + SQL(
            " (account_id, subject_id, key, erased_at)"
            " SELECT DISTINCT e.originator_id, (s #>> '{}')::uuid, NULL::bytea,"
            " clock_timestamp()"
            " FROM "
        )
        + recorder.table
        + SQL(
            " e, jsonb_path_query(convert_from(e.state, 'UTF8')::jsonb,"
            " 'strict $.** ? (@._type_ == \"sealed\")._data_.subject._data_') s"
            " ON CONFLICT (account_id, subject_id) DO NOTHING"
        )
    )


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _json(number: int, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise ImportRefused(f"line {number} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ImportRefused(f"line {number} is not a JSON object")
    return value


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
