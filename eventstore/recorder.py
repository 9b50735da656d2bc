"""The events table: eventsourcing's PostgreSQL recorder plus what auditors need.

Every row also carries, as plain columns: event_id, occurred_at (domain time,
the event's own timestamp), recorded_at (database time), actor, correlation_id,
causation_id and command_id. A trigger makes the table append-only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import get_topic, retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier, Literal

from domain.account import Account
from domain.errors import CommandAlreadyRecorded

# Event ids are derived from (account, version): stable across export/import.
EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://rapport.invalid/events")

SYSTEM_ACTOR = "system"
# A group whose connection failed before it committed is tried again.
GROUP_ATTEMPTS = 3
GROUP_RETRY_WAIT = 0.2

# What the application's insert writes; the database sets notification_id,
# recorded_at, prev_hash and hash.
APP_WRITTEN_COLUMNS = (
    "originator_id",
    "originator_version",
    "topic",
    "state",
    "event_id",
    "occurred_at",
    "actor",
    "correlation_id",
    "causation_id",
    "command_id",
)


def keys_table_name(events_table_name: str) -> str:
    """``rapport_subject_keys`` beside ``rapport_events``."""
    return f"{events_table_name.removesuffix('_events')}_subject_keys"


def event_type(topic: str) -> str:
    """An event's type as clients see it: ``TierChanged`` for its class's topic."""
    return topic.rsplit(".", 1)[-1]


def recorder_of(app: Application[Any]) -> RapportRecorder:
    """The application's recorder, which eventstore configures to be Rapport's."""
    recorder = app.recorder
    if not isinstance(recorder, RapportRecorder):
        msg = f"{app.name} does not record through {RapportRecorder.__name__}"
        raise TypeError(msg)
    return recorder


@dataclass
class _Write:
    """One caller's events, waiting for their group's commit."""

    stored_events: Sequence[StoredEvent]
    kwargs: dict[str, Any]
    positions: list[int] = field(default_factory=list)
    error: BaseException | None = None
    settled: bool = False
    """Its answer is final: committed with its positions, or refused alone."""
    done: bool = False


def _append_params(writes: Sequence[_Write]) -> dict[str, list[Any]]:
    """The append function's arrays: one element per event of ``writes``, in
    order, and one per write whose command the client gave an id (its
    outcome, at its last event)."""
    params: dict[str, list[Any]] = {
        "originator_ids": [],
        "versions": [],
        "topics": [],
        "states": [],
        "event_ids": [],
        "actors": [],
        "correlation_ids": [],
        "causation_ids": [],
        "command_ids": [],
        "recorded_ids": [],
        "recorded_accounts": [],
        "recorded_versions": [],
        "recorded_created_ids": [],
    }
    for write in writes:
        meta = write.kwargs.get("meta")
        for e in write.stored_events:
            params["originator_ids"].append(e.originator_id)
            params["versions"].append(e.originator_version)
            params["topics"].append(e.topic)
            params["states"].append(e.state)
            params["event_ids"].append(event_id(e.originator_id, e.originator_version))
            params["actors"].append(getattr(meta, "actor", SYSTEM_ACTOR))
            params["correlation_ids"].append(getattr(meta, "correlation_id", None))
            params["causation_ids"].append(getattr(meta, "causation_id", None))
            params["command_ids"].append(getattr(meta, "command_id", None))
        if getattr(meta, "idempotent", False):
            last = write.stored_events[-1]
            params["recorded_ids"].append(meta.command_id)  # type: ignore[union-attr]
            params["recorded_accounts"].append(last.originator_id)
            params["recorded_versions"].append(last.originator_version)
            params["recorded_created_ids"].append(write.kwargs.get("created_id"))
    return params


def rendered(statement: Composable) -> bytes:
    """A statement as the server gets it (its identifiers need no connection)."""
    return statement.as_bytes(None)


def event_id(originator_id: UUID | str, originator_version: int) -> UUID:
    return uuid5(EVENT_ID_NAMESPACE, f"{originator_id}/{originator_version}")


@dataclass(frozen=True)
class RecordedEvent:
    """A stored event with its position and audit metadata."""

    position: int
    stored: StoredEvent
    event_id: UUID
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    correlation_id: UUID | None
    causation_id: UUID | None
    command_id: UUID | None


class RapportRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        names = {
            "schema": Identifier(datastore.schema),
            "table": Identifier(events_table_name),
            "guard": Identifier(f"{events_table_name}_append_only"),
            "no_change": Identifier(f"{events_table_name}_no_update_delete"),
            "no_truncate": Identifier(f"{events_table_name}_no_truncate"),
            "event_id_index": Identifier(f"{events_table_name}_event_id_idx"),
            "recorded_at_index": Identifier(f"{events_table_name}_recorded_at_idx"),
            "digest": Identifier(f"{events_table_name}_digest"),
            "chain": Identifier(f"{events_table_name}_chain"),
            "lock": Identifier(f"{events_table_name}_lock"),
            "append": Identifier(f"{events_table_name}_append"),
            "channel": Literal(self.channel_name),
            "columns": SQL(", ").join(map(Identifier, APP_WRITTEN_COLUMNS)),
            "keys": Identifier(keys_table_name(events_table_name)),
            "relayed": Identifier(f"{events_table_name}_relayed"),
            "webhooks": Identifier(f"{events_table_name}_webhooks"),
            "commands": Identifier(f"{events_table_name}_commands"),
            "deliveries": Identifier(f"{events_table_name}_webhook_deliveries"),
            "deliveries_index": Identifier(f"{events_table_name}_webhook_deliveries_idx"),
            "erase": Identifier(f"{events_table_name}_erase"),
            "erased_topic": Literal(get_topic(Account.PersonalDataErased)),
        }
        self.table = SQL("{schema}.{table}").format(**names)
        self.digest = SQL("{schema}.{digest}").format(**names)
        self.sql_create_statements.extend(
            SQL(statement).format(**names)
            for statement in (
                "ALTER TABLE {schema}.{table}"
                " ADD COLUMN IF NOT EXISTS event_id uuid,"
                " ADD COLUMN IF NOT EXISTS occurred_at timestamptz,"
                " ADD COLUMN IF NOT EXISTS recorded_at timestamptz"
                "   NOT NULL DEFAULT clock_timestamp(),"
                " ADD COLUMN IF NOT EXISTS actor text NOT NULL DEFAULT 'system',"
                " ADD COLUMN IF NOT EXISTS correlation_id uuid,"
                " ADD COLUMN IF NOT EXISTS causation_id uuid,"
                " ADD COLUMN IF NOT EXISTS command_id uuid",
                "CREATE UNIQUE INDEX IF NOT EXISTS {event_id_index}"
                " ON {schema}.{table} (event_id)",
                "CREATE INDEX IF NOT EXISTS {recorded_at_index}"
                " ON {schema}.{table} (recorded_at)",
                "CREATE OR REPLACE FUNCTION {schema}.{guard}() RETURNS trigger"
                " LANGUAGE plpgsql AS $$ BEGIN"
                " RAISE EXCEPTION 'events are immutable: % on % is not allowed',"
                " TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';"
                " END $$",
                "CREATE OR REPLACE TRIGGER {no_change}"
                " BEFORE UPDATE OR DELETE ON {schema}.{table}"
                " FOR EACH ROW EXECUTE FUNCTION {schema}.{guard}()",
                "CREATE OR REPLACE TRIGGER {no_truncate}"
                " BEFORE TRUNCATE ON {schema}.{table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{guard}()",
                # Tamper evidence: each row's SHA-256 covers its content and the
                # hash of the row before it, computed as it is inserted.
                "ALTER TABLE {schema}.{table}"
                " ADD COLUMN IF NOT EXISTS prev_hash bytea,"
                " ADD COLUMN IF NOT EXISTS hash bytea",
                "CREATE OR REPLACE FUNCTION {schema}.{digest}("
                "prev bytea, e {schema}.{table}) RETURNS bytea"
                " LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp"
                " AS $$ SELECT sha256(coalesce(prev, ''::bytea)"
                " || convert_to(jsonb_build_array(e.notification_id, e.originator_id,"
                " e.originator_version, e.topic, encode(sha256(e.state), 'hex'),"
                " e.event_id, extract(epoch FROM e.occurred_at),"
                " extract(epoch FROM e.recorded_at), e.actor, e.correlation_id,"
                " e.causation_id, e.command_id)::text, 'UTF8')) $$",
                "CREATE OR REPLACE FUNCTION {schema}.{chain}() RETURNS trigger"
                " LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$ BEGIN"
                # Writers hold the table lock, so the newest row is the one before.
                " SELECT hash INTO NEW.prev_hash FROM {schema}.{table}"
                " ORDER BY notification_id DESC LIMIT 1;"
                " NEW.hash := {schema}.{digest}(NEW.prev_hash, NEW);"
                " RETURN NEW; END $$",
                "CREATE OR REPLACE TRIGGER {chain}"
                " BEFORE INSERT ON {schema}.{table}"
                " FOR EACH ROW EXECUTE FUNCTION {schema}.{chain}()",
                # Writers serialise on the table lock so positions commit in
                # order. EXCLUSIVE mode needs UPDATE rights, which the app role
                # must not have: it takes the lock through the owner's function.
                "CREATE OR REPLACE FUNCTION {schema}.{lock}() RETURNS void"
                " LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
                " AS $$ LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE $$",
                "REVOKE ALL ON FUNCTION {schema}.{lock}() FROM PUBLIC",
                # A write of the command path (``_insert_writes``): the lock,
                # the notification, the events in their order, and the outcomes
                # of the commands the client gave an id (at their last event's
                # position). In autocommit, a call is one transaction and one
                # round trip. The caller's rights apply (no SECURITY DEFINER).
                "CREATE OR REPLACE FUNCTION {schema}.{append}(lock_timeout text,"
                " originator_ids uuid[], versions bigint[], topics text[],"
                " states bytea[], event_ids uuid[], actors text[],"
                " correlation_ids uuid[], causation_ids uuid[], command_ids uuid[],"
                " recorded_ids uuid[], recorded_accounts uuid[],"
                " recorded_versions bigint[], recorded_created_ids uuid[])"
                " RETURNS TABLE (notified bigint, account uuid, account_version bigint)"
                " LANGUAGE plpgsql AS $$ BEGIN"
                " PERFORM pg_catalog.set_config('lock_timeout', lock_timeout, true);"
                " PERFORM {schema}.{lock}();"
                " PERFORM pg_catalog.pg_notify({channel}, '');"
                " RETURN QUERY WITH inserted AS ("
                " INSERT INTO {schema}.{table} AS t ({columns})"
                " SELECT e.originator_id, e.originator_version, e.topic, e.state,"
                " e.event_id, (convert_from(e.state, 'UTF8')::jsonb"
                " #>> '{{timestamp,_data_}}')::timestamptz,"
                " e.actor, e.correlation_id, e.causation_id, e.command_id"
                " FROM unnest(originator_ids, versions, topics, states, event_ids,"
                " actors, correlation_ids, causation_ids, command_ids)"
                " AS e(originator_id, originator_version, topic, state, event_id,"
                " actor, correlation_id, causation_id, command_id)"
                " RETURNING t.notification_id, t.originator_id, t.originator_version"
                "), recorded AS ("
                " INSERT INTO {schema}.{commands}"
                " (command_id, account_id, version, position, created_id)"
                " SELECT c.command_id, c.account_id, c.version, i.notification_id,"
                " c.created_id FROM unnest(recorded_ids, recorded_accounts,"
                " recorded_versions, recorded_created_ids)"
                " AS c(command_id, account_id, version, created_id)"
                " JOIN inserted i ON i.originator_id = c.account_id"
                " AND i.originator_version = c.version)"
                " SELECT i.notification_id, i.originator_id, i.originator_version"
                " FROM inserted i; END $$",
                "REVOKE ALL ON FUNCTION {schema}.{append} FROM PUBLIC",
                # Personal data is sealed with one key per subject (see
                # eventstore.sealing); a null key is a destroyed one.
                "CREATE TABLE IF NOT EXISTS {schema}.{keys} ("
                " account_id uuid NOT NULL, subject_id uuid NOT NULL, key bytea,"
                " created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " erased_at timestamptz, erased_by uuid,"
                " PRIMARY KEY (account_id, subject_id),"
                " CHECK ((key IS NULL) = (erased_at IS NOT NULL)))",
                # Recording an erasure destroys the keys in the same transaction:
                # a contact's, or with no contact every key of the account (and a
                # tombstone for the account, so that no key is made for it again).
                "CREATE OR REPLACE FUNCTION {schema}.{erase}() RETURNS trigger"
                " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
                " AS $$ DECLARE contact uuid := (convert_from(NEW.state, 'UTF8')::jsonb"
                " #>> '{{contact_id,_data_}}')::uuid; BEGIN"
                " INSERT INTO {schema}.{keys} AS k"
                " (account_id, subject_id, key, erased_at, erased_by)"
                " VALUES (NEW.originator_id, coalesce(contact, NEW.originator_id), NULL,"
                " clock_timestamp(), NEW.event_id)"
                " ON CONFLICT (account_id, subject_id) DO UPDATE"
                " SET key = NULL, erased_at = clock_timestamp(), erased_by = NEW.event_id"
                " WHERE k.erased_at IS NULL;"
                " IF contact IS NULL THEN UPDATE {schema}.{keys}"
                " SET key = NULL, erased_at = clock_timestamp(), erased_by = NEW.event_id"
                " WHERE account_id = NEW.originator_id AND erased_at IS NULL; END IF;"
                " RETURN NULL; END $$",
                "REVOKE ALL ON FUNCTION {schema}.{erase}() FROM PUBLIC",
                # How far each relay (rapport relay) has published.
                "CREATE TABLE IF NOT EXISTS {schema}.{relayed} (relay text PRIMARY KEY,"
                " position bigint NOT NULL,"
                " updated_at timestamptz NOT NULL DEFAULT clock_timestamp())",
                # Commands a client gave an id (commandId): one row each, written
                # with the command's events, so a retry finds the first outcome.
                "CREATE TABLE IF NOT EXISTS {schema}.{commands} ("
                " command_id uuid PRIMARY KEY, account_id uuid NOT NULL,"
                " version bigint NOT NULL, position bigint NOT NULL, created_id uuid,"
                " recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())",
                # Webhooks (eventstore.webhooks): each one's progress and lease,
                # and a log of every delivery attempt.
                "CREATE TABLE IF NOT EXISTS {schema}.{webhooks} (id uuid PRIMARY KEY,"
                " url text NOT NULL, types text[] NOT NULL, secret text NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " created_by text NOT NULL, active boolean NOT NULL DEFAULT true,"
                " position bigint NOT NULL, failures integer NOT NULL DEFAULT 0,"
                " next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " last_error text, leased_by uuid, leased_until timestamptz)",
                "CREATE TABLE IF NOT EXISTS {schema}.{deliveries} (id uuid PRIMARY KEY,"
                " webhook_id uuid NOT NULL REFERENCES {schema}.{webhooks} (id),"
                " position bigint NOT NULL, event_id uuid NOT NULL,"
                " attempt integer NOT NULL, attempted_at timestamptz NOT NULL,"
                " duration_ms integer NOT NULL, status_code integer, error text,"
                " delivered boolean NOT NULL, next_attempt_at timestamptz)",
                "CREATE INDEX IF NOT EXISTS {deliveries_index}"
                " ON {schema}.{deliveries} (webhook_id, attempted_at DESC)",
                "CREATE OR REPLACE TRIGGER {erase}"
                " AFTER INSERT ON {schema}.{table} FOR EACH ROW"
                " WHEN (NEW.topic = {erased_topic})"
                " EXECUTE FUNCTION {schema}.{erase}()",
            )
        )
        self.erased_topic = get_topic(Account.PersonalDataErased)
        # Called with an account's id once an erasure of it has committed.
        self.erasure_listeners: list[Callable[[UUID], None]] = []
        self._group = threading.Condition()
        self._queued: list[_Write] = []
        self._committing = False
        self.lock_function = SQL("{schema}.{lock}").format(**names)
        self.keys_table = SQL("{schema}.{keys}").format(**names)
        self.relayed_table = SQL("{schema}.{relayed}").format(**names)
        self.webhooks_table = SQL("{schema}.{webhooks}").format(**names)
        self.commands_table = SQL("{schema}.{commands}").format(**names)
        self.commands_key = f"{events_table_name}_commands_pkey"
        # After a failed COMMIT: which of a group's events are stored, as what.
        self.select_stored = rendered(
            SQL(
                "SELECT originator_id, originator_version, notification_id, state"
                " FROM {schema}.{table} WHERE (originator_id, originator_version) IN"
                " (SELECT * FROM unnest(%s::uuid[], %s::bigint[]))"
            ).format(**names)
        )
        self.select_command = SQL(
            "SELECT account_id, version, position, created_id FROM {schema}.{commands}"
            " WHERE command_id = %s"
        ).format(**names)
        self.deliveries_table = SQL("{schema}.{deliveries}").format(**names)
        lock_table_statements = [
            SQL("SET LOCAL lock_timeout = '{}s'").format(self.datastore.lock_timeout),
            SQL("SELECT {}()").format(self.lock_function),
        ]
        self.lock_table_statements = list(lock_table_statements)
        self.append_function = SQL("{schema}.{append}").format(**names)
        self._select_events_queries: dict[tuple[bool, bool, bool, bool], bytes] = {}
        self.select_first_break = SQL(
            "SELECT notification_id, originator_id, originator_version,"
            " prev_hash IS DISTINCT FROM expected_prev AS link_broken"
            " FROM (SELECT notification_id, originator_id, originator_version,"
            " prev_hash, hash, lag(hash) OVER (ORDER BY notification_id) AS expected_prev,"
            " {schema}.{digest}(prev_hash, e) AS recomputed FROM {schema}.{table} e) x"
            " WHERE prev_hash IS DISTINCT FROM expected_prev"
            " OR hash IS DISTINCT FROM recomputed"
            " ORDER BY notification_id LIMIT 1"
        ).format(**names)
        self.select_hash_at = SQL(
            "SELECT hash FROM {schema}.{table} WHERE notification_id = %s"
        ).format(**names)
        self.select_head = SQL(
            "SELECT count(*) AS events, max(notification_id) AS position,"
            " (SELECT hash FROM {schema}.{table} ORDER BY notification_id DESC LIMIT 1)"
            " AS hash FROM {schema}.{table}"
        ).format(**names)
        # A group's write, in one call: its own transaction when the
        # connection is in autocommit, one round trip (``append_function``).
        self.append_writes = rendered(
            SQL(
                "SELECT notified, account, account_version FROM {schema}.{append}("
                "%(lock_timeout)s, %(originator_ids)b::uuid[], %(versions)b::bigint[],"
                " %(topics)b::text[], %(states)b::bytea[], %(event_ids)b::uuid[],"
                " %(actors)b::text[], %(correlation_ids)b::uuid[],"
                " %(causation_ids)b::uuid[], %(command_ids)b::uuid[],"
                " %(recorded_ids)b::uuid[], %(recorded_accounts)b::uuid[],"
                " %(recorded_versions)b::bigint[], %(recorded_created_ids)b::uuid[])"
            ).format(**names)
        )
        self.select_recorded = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state,"
            " event_id, occurred_at, recorded_at, actor, correlation_id,"
            " causation_id, command_id FROM {schema}.{table}"
        ).format(**names)
        self.select_version_at = SQL(
            "SELECT max(originator_version) AS version FROM {schema}.{table}"
            " WHERE originator_id = %s AND occurred_at <= %s"
        ).format(**names)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """eventsourcing's select, with each shape of the statement rendered
        once: every command's fast-forward runs it."""
        shape = (gt is not None, lte is not None, desc, limit is not None)
        query = self._select_events_queries.get(shape)
        if query is None:
            statement = SQL(
                "SELECT originator_id, originator_version, topic, state FROM {}"
                " WHERE originator_id = %s"
            ).format(self.table)
            if gt is not None:
                statement += SQL(" AND originator_version > %s")
            if lte is not None:
                statement += SQL(" AND originator_version <= %s")
            statement += SQL(" ORDER BY originator_version")
            statement += SQL(" DESC" if desc else " ASC")
            if limit is not None:
                statement += SQL(" LIMIT %s")
            query = self._select_events_queries[shape] = rendered(statement)
        params = [p for p in (originator_id, gt, lte, limit) if p is not None]
        # Binary results: a bytea's bytes as they are, not hex to decode.
        with self.datastore.get_connection() as conn, conn.cursor(binary=True) as curs:
            curs.execute(query, params, prepare=True)
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        # Start-up of the API and the projection runner may race to migrate.
        curs.execute(SQL("SELECT pg_advisory_xact_lock(hashtext('rapport-migrate'))"))
        super()._create_table(curs)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Group commit: the writes of concurrent callers share one transaction.

        The first caller to find no group being committed commits everything
        queued by then, under one table lock and one fsync (``_insert_group``;
        when a constraint fails, each write goes again in its own savepoint,
        so a conflict fails only that write); callers that arrive meanwhile
        form the next group. Every caller returns only once its own
        write has committed, with its positions, or raises its own error.
        """
        if not stored_events:
            return []
        write = _Write(stored_events, kwargs)
        with self._group:
            self._queued.append(write)
            while not write.done and self._committing:
                self._group.wait()
            lead = not write.done
            if lead:
                self._committing = True
                group, self._queued = self._queued, []
        if lead:
            try:
                self._commit_group(group)
            finally:
                with self._group:
                    self._committing = False
                    self._group.notify_all()
        if write.error is not None:
            raise write.error
        for stored in stored_events:
            if stored.topic == self.erased_topic:
                for listener in self.erasure_listeners:
                    listener(UUID(str(stored.originator_id)))
        return write.positions

    def _commit_group(self, group: list[_Write]) -> None:
        """Commit the group, retrying it when the connection failed.

        Whatever stops the group stops every write of it that was not settled:
        none is reported committed unless it was.
        """
        try:
            self._insert_until_settled(group)
        except BaseException as error:
            for write in group:
                if not write.settled:
                    write.positions = []
                    write.error = error
            if not isinstance(error, Exception):
                raise
        finally:
            for write in group:
                write.done = True

    def _insert_until_settled(self, group: list[_Write]) -> None:
        """A connection can fail with or after the COMMIT that stored the
        group: before a retry, the writes found stored are settled, with their
        positions, and only the others go again (``_unstored``)."""
        pending = group
        for attempt in range(1, GROUP_ATTEMPTS + 1):
            try:
                if attempt > 1:
                    pending = self._unstored(pending)
                for write in pending:
                    write.positions, write.error = [], None
                if pending:
                    self._insert_group(pending)
            except (InterfaceError, OperationalError):
                if attempt == GROUP_ATTEMPTS:
                    raise
                time.sleep(GROUP_RETRY_WAIT)
            else:
                for write in pending:
                    write.settled = True
                return

    def _unstored(self, writes: list[_Write]) -> list[_Write]:
        """The writes whose events are not in the table; each of the others,
        stored with its very bytes (its moment and sealed values are its own),
        gets its positions."""
        events = [e for write in writes for e in write.stored_events]
        # Under the writers' lock: a COMMIT still under way when the connection
        # failed holds it until it is done, and its rows are then seen.
        with self.datastore.transaction(commit=False) as curs:
            for statement in self.lock_table_statements:
                curs.execute(statement, prepare=True)
            curs.execute(
                self.select_stored,
                (
                    [e.originator_id for e in events],
                    [e.originator_version for e in events],
                ),
            )
            stored = {
                (str(row["originator_id"]), row["originator_version"]): row
                for row in curs.fetchall()
            }
        unstored = []
        for write in writes:
            rows = [
                stored.get((str(e.originator_id), e.originator_version))
                for e in write.stored_events
            ]
            if all(
                row is not None and bytes(row["state"]) == e.state
                for row, e in zip(rows, write.stored_events, strict=True)
            ):
                write.positions = [row["notification_id"] for row in rows if row]
                write.error, write.settled = None, True
            else:
                unstored.append(write)
        return unstored

    def _insert_group(self, group: list[_Write]) -> None:
        """The group's writes in one call of the append function, on a
        connection in autocommit: one statement, its own transaction, one
        round trip. When a constraint fails, nothing of it is stored, and the
        writes go again, each in a savepoint of its own, so that only the
        writes at fault fail."""
        try:
            with self.datastore.get_connection() as conn:
                self._insert_writes(conn.cursor(), group)
        except IntegrityError as error:  # the datastore's, from psycopg's
            for write in group:
                write.positions = []
            cause = error.__cause__
            if len(group) == 1 and isinstance(cause, psycopg.IntegrityError):
                group[0].error = self._refusal(group[0], cause)
            else:
                self._insert_each(group)

    def _insert_each(self, group: list[_Write]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for statement in self.lock_table_statements:
                curs.execute(statement, prepare=True)
            for write in group:
                try:
                    with curs.connection.transaction():  # a savepoint
                        self._insert_writes(curs, [write])
                except psycopg.IntegrityError as error:
                    write.positions = []  # rolled back with its savepoint
                    write.error = self._refusal(write, error)

    def _refusal(self, write: _Write, error: psycopg.IntegrityError) -> Exception:
        """What a write that broke a constraint is told."""
        if (
            isinstance(error, psycopg.errors.UniqueViolation)
            and error.diag.constraint_name == self.commands_key
        ):
            return CommandAlreadyRecorded(write.kwargs["meta"].command_id)
        return IntegrityError(str(error))

    def _insert_writes(self, curs: Cursor[DictRow], writes: Sequence[_Write]) -> None:
        """Insert the events of ``writes`` in one call of the append function,
        each write's in its order, with the outcomes of its commands; give
        each write its positions."""
        params: dict[str, Any] = _append_params(writes) | {
            "lock_timeout": f"{self.datastore.lock_timeout}s"
        }
        curs.execute(self.append_writes, params, prepare=True)
        positions = {
            (str(row["account"]), row["account_version"]): row["notified"]
            for row in curs.fetchall()
        }
        for write in writes:
            write.positions = [
                positions[str(e.originator_id), e.originator_version]
                for e in write.stored_events
            ]

    def command_outcome(
        self, command_id: UUID
    ) -> tuple[UUID, int, int, UUID | None] | None:
        """Account, version, position and created id of a recorded command."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_command, (command_id,))
            row = curs.fetchone()
        if row is None:
            return None
        return row["account_id"], row["version"], row["position"], row["created_id"]

    def read_after(
        self,
        position: int,
        limit: int,
        *,
        topics: Sequence[str] = (),
        up_to: int | None = None,
    ) -> list[RecordedEvent]:
        """Events after ``position`` in commit order, with their metadata; only
        those of ``topics`` if given, and none after ``up_to`` if given."""
        condition: Composable = SQL(" WHERE notification_id > %s")
        params: list[Any] = [position]
        if topics:
            condition += SQL(" AND topic = ANY(%s)")
            params.append(list(topics))
        if up_to is not None:
            condition += SQL(" AND notification_id <= %s")
            params.append(up_to)
        params.append(limit)
        return self._select(condition + SQL(" ORDER BY notification_id LIMIT %s"), params)

    def account_events(
        self,
        account_id: UUID,
        *,
        after_version: int = 0,
        limit: int = 100,
        topics: Sequence[str] = (),
    ) -> list[RecordedEvent]:
        """One account's events after ``after_version``, oldest first."""
        condition: Composable = SQL(" WHERE originator_id = %s AND originator_version > %s")
        params: list[Any] = [account_id, after_version]
        if topics:
            condition += SQL(" AND topic = ANY(%s)")
            params.append(list(topics))
        params.append(limit)
        condition += SQL(" ORDER BY originator_version LIMIT %s")
        return self._select(condition, params)

    def version_at(self, account_id: UUID, moment: datetime) -> int | None:
        """The account's version as it stood at ``moment`` (domain time)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_version_at, (account_id, moment))
            row = curs.fetchone()
            return None if row is None else row["version"]

    def _select(self, condition: Composable, params: Sequence[Any]) -> list[RecordedEvent]:
        # Binary results: a bytea's bytes as they are, not hex to decode.
        with self.datastore.get_connection() as conn, conn.cursor(binary=True) as curs:
            curs.execute(self.select_recorded + condition, params, prepare=True)
            return [
                RecordedEvent(
                    position=row["notification_id"],
                    stored=StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    ),
                    event_id=row["event_id"],
                    occurred_at=row["occurred_at"],
                    recorded_at=row["recorded_at"],
                    actor=row["actor"],
                    correlation_id=row["correlation_id"],
                    causation_id=row["causation_id"],
                    command_id=row["command_id"],
                )
                for row in curs.fetchall()
            ]


class SnapshotRecorder(PostgresAggregateRecorder):
    """The snapshots table, written with binary parameters.

    eventsourcing's insert sends a snapshot as text: its state as hex inside a
    composite array literal, escaped character by character. A long account's
    snapshot holds every interaction, so that cost grew with the account's
    history, and the command that took the snapshot paid it.
    """

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_snapshots = rendered(
            SQL(
                "INSERT INTO {}.{} (originator_id, originator_version, topic, state)"
                " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[],"
                " %b::bytea[])"
            ).format(Identifier(datastore.schema), Identifier(events_table_name))
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        curs.execute(
            self.insert_snapshots,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )


class RapportFactory(PostgresFactory):
    """eventsourcing's PostgreSQL persistence, with snapshots written in
    binary (``SnapshotRecorder``); the events table is ``RapportRecorder``."""

    aggregate_recorder_class = SnapshotRecorder
