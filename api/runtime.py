"""What a running API holds once per process: the application, pools, the runner."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import AsyncConnectionPool

from api.answers import EVERY_VIEW, Answers, Scope, Standing
from api.auth import KEY_PREFIX, ApiKeys, JwtSettings, JwtVerifier, Principal, Role
from api.hardening import statement_timeout_kwargs
from api.settings import Settings
from domain.application import Accounts, Outcome
from eventstore.audit import Audit
from eventstore.database import eventsourcing_env
from eventstore.recorder import APP_WRITTEN_COLUMNS, RapportRecorder, recorder_of
from eventstore.sealing import attach_keys, drop_snapshots_before_sealing
from eventstore.webhooks import Backoff, WebhookDispatcher, WebhookStore
from projections.base import REBUILDS_TABLE
from projections.runner import PROJECTED_CHANNEL, Projections

log = logging.getLogger("rapport.api")

T = TypeVar("T")


YOUNG_GENERATION_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once a process has started: keep what start-up allocated (modules, the
    schema, connection pools) out of the cyclic garbage collector's way, and
    let it run less often on what requests allocate.

    A full collection walks every object the process tracks; decoding an
    account of ten thousand interactions allocates enough to set off several,
    and one that struck a read added about 100 ms to it. Frozen objects are
    skipped, and a higher first threshold means fewer collections, each over
    more objects.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_GENERATION_THRESHOLD), middle, old)


def open_store(
    database_url: str, *, migrate: bool | None = None
) -> tuple[Accounts, Projections]:
    """Connect the application and its views.

    With ``migrate`` (by default ``RAPPORT_MIGRATE_ON_START``) the tables are
    created or brought up to date first, which needs the owner's rights.
    """
    if migrate is None:
        migrate = Settings.from_env().migrate_on_start
    with _one_migration_at_a_time(database_url) if migrate else contextlib.nullcontext():
        app = Accounts(env=eventsourcing_env(database_url, create_tables=migrate))
        attach_keys(app)
        app.recorded_outcome = partial(recorded_outcome, recorder_of(app))
        projections = Projections(app, database_url)
        if migrate:
            projections.migrate()
            drop_snapshots_before_sealing(app)
            with recorder_of(app).datastore.transaction(commit=True) as cur:
                for statement in api_keys_of(app).create_statements():
                    cur.execute(statement)
    return app, projections


@contextlib.contextmanager
def _one_migration_at_a_time(database_url: str) -> Iterator[None]:
    """Hold the database's migration lock while this process sets up tables.

    Processes starting together (API workers, the API beside ``rapport
    project``) would otherwise race on ``CREATE … IF NOT EXISTS``, which is not
    safe against itself. The lock is a session's, on a connection of its own,
    and its key is not the events table's own (``rapport-migrate``), which the
    recorder takes inside.
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('rapport-open-store'))")
        yield


def recorded_outcome(recorder: RapportRecorder, command_id: UUID) -> Outcome | None:
    """The first outcome of a command recorded with this id, if any."""
    found = recorder.command_outcome(command_id)
    if found is None:
        return None
    account_id, version, position, created_id = found
    return Outcome(account_id, version, position, created_id)


def api_keys_of(app: Accounts) -> ApiKeys:
    """The API keys, kept beside the events."""
    return ApiKeys(recorder_of(app).datastore.schema)


def development_key(app: Accounts, path: Path) -> str:
    """An admin key for a development machine, kept in ``path`` and made once.

    Made again if the file is gone or its key was revoked.
    """
    keys = api_keys_of(app)
    with recorder_of(app).datastore.transaction(commit=True) as cur:
        if path.exists():
            key = path.read_text().strip()
            if keys.look_up(cur, key) is not None:
                return key
        issued = keys.create(cur, name="development", role=Role.ADMIN, actor="developer")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(issued.key + "\n")
    return issued.key


def grant_least_privilege(app: Accounts, projections: Projections, role: str) -> None:
    """Let ``role`` run the API and the runner, and nothing more.

    Events and snapshots: SELECT and INSERT only, so neither the API nor the
    runner can change history even with the trigger switched off (only the
    owner can switch it off). Views: what building and rebuilding them needs.
    """
    recorder = recorder_of(app)
    schema = Identifier(recorder.datastore.schema)
    who = Identifier(role)
    events = Identifier(recorder.events_table_name)
    sequence = Identifier(f"{recorder.events_table_name}_notification_id_seq")
    snapshots = Identifier(f"{app.name}_snapshots")
    view_tables = [
        Identifier(name)
        for view in projections.views.values()
        for name in (*view.tables, view.tracking_table_name)
    ]
    view_tables.append(Identifier(projections.thank_you.tracking_table_name))
    view_tables.append(Identifier(REBUILDS_TABLE))
    statements = [
        SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, who),
        # Column by column: position, database time and hashes are the
        # database's to set, never the inserting role's.
        SQL("GRANT SELECT, INSERT ({}) ON {}.{} TO {}").format(
            SQL(", ").join(map(Identifier, APP_WRITTEN_COLUMNS)), schema, events, who
        ),
        SQL("GRANT SELECT, INSERT ON {}.{} TO {}").format(schema, snapshots, who),
        SQL("GRANT USAGE ON SEQUENCE {}.{} TO {}").format(schema, sequence, who),
        # Keys: made on first use, never changed or deleted by this role (an
        # erasure event's trigger destroys them, with the owner's rights).
        SQL("GRANT SELECT, INSERT (account_id, subject_id, key) ON {} TO {}").format(
            recorder.keys_table, who
        ),
        SQL("GRANT SELECT, INSERT, UPDATE ON {}, {} TO {}").format(
            recorder.relayed_table, recorder.webhooks_table, who
        ),
        SQL("GRANT SELECT, INSERT ON {} TO {}").format(recorder.deliveries_table, who),
        SQL("GRANT SELECT, INSERT ON {} TO {}").format(recorder.commands_table, who),
        SQL("GRANT EXECUTE ON FUNCTION {}() TO {}").format(recorder.lock_function, who),
        SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(recorder.append_function, who),
        SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            SQL(", ").join(view_tables), who
        ),
        SQL("GRANT SELECT ON stage_durations, tier_durations TO {}").format(who),
        *api_keys_of(app).grant_statements(who),
    ]
    with recorder.datastore.transaction(commit=True) as cur:
        for statement in statements:
            cur.execute(statement)


class Listener:
    """A LISTEN connection of its own, handing each notification to ``notified``."""

    def __init__(self, database_url: str, channel: str) -> None:
        self.database_url = database_url
        self.channel = channel
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection[Any] | None = None

    async def start(self) -> None:
        self._conn = await AsyncConnection.connect(self.database_url, autocommit=True)
        await self._conn.execute(SQL("LISTEN {}").format(Identifier(self.channel)))
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            await self._conn.close()

    async def _listen(self) -> None:
        assert self._conn is not None  # noqa: S101 - set by start()
        async for note in self._conn.notifies():
            self.notified(note.payload)

    def notified(self, payload: str) -> None:  # noqa: ARG002 - subclasses read it
        """Wake whoever waits on ``_changed``."""
        self._changed.set()
        self._changed = asyncio.Event()


class Watermark(Listener):
    """The position every view has reached, pushed by the runner's NOTIFY."""

    def __init__(
        self, database_url: str, pool: AsyncConnectionPool[Any], sql: Composed
    ) -> None:
        super().__init__(database_url, PROJECTED_CHANNEL)
        self.pool = pool
        self.sql = sql
        self.position = 0

    async def start(self) -> None:
        await super().start()
        self._advance(await self._read())

    def notified(self, payload: str) -> None:
        self._advance(int(payload))

    async def _read(self) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.sql)
            row = await cur.fetchone()
            return int(row["position"]) if row else 0

    def _advance(self, position: int) -> None:
        if position > self.position:
            self.position = position
            super().notified(str(position))

    async def wait(self, position: int, seconds: float) -> bool:
        """Wait until the views include ``position``; False when ``seconds`` ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.position < position:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
            except TimeoutError:
                # A notification can be missed across a reconnect; ask the database.
                self._advance(await self._read())
        return True


class EventFeed(Listener):
    """Wakes subscribers when writers commit (their NOTIFY on the events channel)."""

    async def wait(self, seconds: float) -> None:
        """Until the next commit, or ``seconds`` (a missed notification costs no more)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)


class Runtime:
    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.app, self.projections = open_store(
            database_url, migrate=settings.migrate_on_start
        )
        self.audit = Audit(self.app)
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            database_url,
            kwargs={
                "row_factory": dict_row,
                "autocommit": True,
                **statement_timeout_kwargs(
                    database_url, settings.statement_timeout_seconds
                ),
            },
            min_size=2,
            max_size=10,
            open=False,
        )
        self.watermark = Watermark(
            database_url, self.pool, self.projections.projected_position_sql()
        )
        self.events = EventFeed(database_url, recorder_of(self.app).channel_name)
        self.answers = Answers(settings.kept_answers) if settings.kept_answers else None
        self._standing = self.projections.standing_sql()
        self._accounts_standing = self.projections.accounts_standing_sql()
        self.webhooks = WebhookStore(self.pool, self.audit)
        self.api_keys = api_keys_of(self.app)
        self.tokens = JwtVerifier(
            JwtSettings(
                secret=settings.jwt_secret,
                jwks_url=settings.jwks_url,
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
            )
        )
        self._webhooks_stop = asyncio.Event()
        self._webhooks_task: asyncio.Task[None] | None = None
        self.executor = ThreadPoolExecutor(
            max_workers=settings.command_threads, thread_name_prefix="rapport-command"
        )
        self._stop = threading.Event()
        self._runner: threading.Thread | None = None

    async def start(self) -> None:
        await self.pool.open(wait=True)
        await self.watermark.start()
        await self.events.start()
        if self.settings.run_projections:
            self._runner = threading.Thread(
                target=run_projections, args=(self.projections, self._stop), daemon=True
            )
            self._runner.start()
        if self.settings.run_webhooks:
            dispatcher = WebhookDispatcher(
                self.webhooks,
                self.audit,
                timeout_seconds=self.settings.webhook_timeout_seconds,
                backoff=Backoff(
                    self.settings.webhook_retry_base_seconds,
                    self.settings.webhook_retry_max_seconds,
                ),
                wait_for_events=self.events.wait,
            )
            self._webhooks_task = asyncio.create_task(dispatcher.run(self._webhooks_stop))

    async def stop(self) -> None:
        self._stop.set()
        self._webhooks_stop.set()
        if self._webhooks_task is not None:
            await self._webhooks_task
        if self._runner is not None:
            await asyncio.to_thread(self._runner.join, 10)
        await self.watermark.stop()
        await self.events.stop()
        await self.pool.close()
        await asyncio.to_thread(self.executor.shutdown, wait=True)
        await asyncio.to_thread(self.app.close)

    async def standing(self, scope: Scope) -> Standing | None:
        """Where ``scope`` stands (``api.answers``). For every view, as
        ``views_standing``. For accounts, how many rebuilds the views have had
        and the position of each one's latest event, once every view has taken
        those in (None before)."""
        if scope == EVERY_VIEW:
            return await self.views_standing()
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._accounts_standing, (list(scope),), prepare=True)
            row = await cur.fetchone()
        if row is None:
            return None
        latest = tuple(row["latest"])
        if row["reached"] < max(latest, default=0):
            return None
        return (row["rebuilds"], *latest)

    async def views_standing(self) -> tuple[str | None, ...]:
        """Where every view stands (``Projections.standing_sql``)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._standing, prepare=True)
            row = await cur.fetchone()
            return tuple(row["standing"]) if row else ()

    async def authenticate(self, credential: str) -> Principal:
        """An API key (``rk_…``) or a JWT; ``Unauthenticated`` if it does not hold."""
        if credential.startswith(f"{KEY_PREFIX}_"):
            return await self.api_keys.authenticate(self.pool, credential)
        return await self.tokens.authenticate(credential)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous (eventsourcing) call off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(fn, *args, **kwargs))


def run_projections(projections: Projections, stop: threading.Event) -> None:
    """Keep the views current until ``stop``; a failure is logged and retried."""
    while not stop.is_set():
        try:
            projections.run(stop)
        except Exception:
            log.exception("projection runner failed; restarting in 1 s")
            stop.wait(1.0)
