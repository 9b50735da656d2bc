"""Webhooks: each matching event POSTed as JSON, signed, in order, retried until taken.

A webhook delivers events one at a time in position order (so in order per
account too), the body being the message ``rapport relay`` publishes (see
docs/events.md), personal values withheld. Each request carries::

    Rapport-Webhook-Id:   the webhook's id
    Rapport-Event-Id:     the event's id: receivers deduplicate by it
    Rapport-Timestamp:    seconds since the epoch when the request was signed
    Rapport-Signature:    v1=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>

A 2xx answer delivers the event and the webhook moves on. Anything else (an
error status, a redirect, a timeout, a refused connection) is a failed
attempt: it is logged, and the same event is tried again after an exponential
backoff, with no limit on attempts. Nothing is skipped and nothing given up
silently; a failing webhook shows its failures, last error and next attempt.

Delivery is at least once: a process that dies between the receiver's 2xx and
recording it sends that event again, and a replay sends events again on
purpose. Receivers therefore keep the event ids they have handled.

Any number of API processes can run dispatchers: a webhook is leased to one of
them at a time, and a lease that is not renewed (its process died) runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.sql import SQL
from psycopg_pool import AsyncConnectionPool

from domain.errors import InvalidValue
from eventstore.audit import EVENT_TYPES, Audit, HistoryEntry
from eventstore.recorder import RecordedEvent, event_type

log = logging.getLogger("rapport.webhooks")

SIGNATURE_VERSION = "v1"
BATCH = 100
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 200
MAX_URL_LENGTH = 2000
ERROR_TEXT_LIMIT = 500

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``Rapport-Signature`` value of a request."""
    signed = timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def request_headers(
    webhook_id: UUID, event_id: UUID, secret: str, body: bytes, attempt: int
) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "Rapport-Webhooks/1",
        "Rapport-Webhook-Id": str(webhook_id),
        "Rapport-Event-Id": str(event_id),
        "Rapport-Delivery-Attempt": str(attempt),
        "Rapport-Timestamp": timestamp,
        "Rapport-Signature": signature(secret, timestamp, body),
    }


@dataclass(frozen=True)
class Backoff:
    """Seconds before the next attempt after ``failures`` failed ones in a row."""

    base: float = 1.0
    maximum: float = 600.0

    def delay(self, failures: int) -> float:
        exponent = min(max(failures - 1, 0), 60)
        # Up to a tenth more, so that endpoints back from an outage are not
        # hit by every webhook in the same instant.
        return min(self.maximum, self.base * 2.0**exponent) * (1 + random.random() / 10)  # noqa: S311


def validate_registration(url: str, secret: str, types: Sequence[str]) -> None:
    """Refuse what could never be delivered, with the field to fix."""
    msg = f"url must be an absolute http(s) URL of at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
        httpx.URL(url)  # what the sender will parse: host encoding, characters
    except (ValueError, httpx.InvalidURL):
        raise InvalidValue("url", msg) from None
    absolute = parts.scheme in {"http", "https"} and bool(parts.hostname)
    if len(url) > MAX_URL_LENGTH or not absolute or url != url.strip():
        raise InvalidValue("url", msg)
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        msg = f"secret must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters"
        raise InvalidValue("secret", msg)
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidValue("types", f"unknown event types: {', '.join(unknown)}")


def _check_after(after: int, head: int) -> None:
    if not 0 <= after <= head:
        msg = f"after must be a position from 0 to the newest, {head}"
        raise InvalidValue("after", msg)


class WebhookStore:
    """The webhooks table and the delivery log, over an autocommit pool."""

    def __init__(self, pool: Pool, audit: Audit) -> None:
        self.pool = pool
        recorder = audit.recorder
        self.webhooks = recorder.webhooks_table
        self.deliveries = recorder.deliveries_table
        self.events = recorder.table

    async def register(
        self, *, url: str, secret: str, types: Sequence[str], actor: str, after: int | None
    ) -> dict[str, Any]:
        """A new webhook, delivering the events after ``after`` (by default, from now)."""
        validate_registration(url, secret, types)
        head = await self._head()
        if after is not None:
            _check_after(after, head)
        sql = SQL(
            "INSERT INTO {} (id, url, types, secret, created_by, position)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *"
        ).format(self.webhooks)
        params = [
            uuid4(),
            url,
            sorted(set(types)),
            secret,
            actor,
            head if after is None else after,
        ]
        return await self._one(sql, params)  # type: ignore[return-value]

    async def _head(self) -> int:
        """The newest position; positions below it never appear later."""
        sql = SQL("SELECT coalesce(max(notification_id), 0) AS head FROM {}")
        row = await self._one(sql.format(self.events), [])
        return 0 if row is None else int(row["head"])

    async def get(self, webhook_id: UUID) -> dict[str, Any] | None:
        return await self._one(
            SQL("SELECT * FROM {} WHERE id = %s").format(self.webhooks), [webhook_id]
        )

    async def all(self) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                SQL("SELECT * FROM {} ORDER BY created_at, id").format(self.webhooks)
            )
            return list(await cur.fetchall())

    async def deliveries_of(
        self, webhook_ids: Sequence[UUID], limit: int
    ) -> dict[UUID, list[dict[str, Any]]]:
        """The newest ``limit`` attempts of each webhook, newest first."""
        sql = SQL(
            "SELECT d.* FROM unnest(%s::uuid[]) AS w(id), LATERAL (SELECT * FROM {}"
            " WHERE webhook_id = w.id ORDER BY attempted_at DESC LIMIT %s) d"
        ).format(self.deliveries)
        found: dict[UUID, list[dict[str, Any]]] = {key: [] for key in webhook_ids}
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, [list(webhook_ids), limit])
            for row in await cur.fetchall():
                found[row["webhook_id"]].append(row)
        return found

    async def replay(self, webhook_id: UUID, after: int) -> dict[str, Any] | None:
        """Deliver again every event after ``after``, at once; a lease held is revoked."""
        _check_after(after, await self._head())
        return await self._one(
            SQL(
                "UPDATE {} SET position = %s, failures = 0, last_error = NULL,"
                " next_attempt_at = clock_timestamp(),"
                " leased_by = NULL, leased_until = NULL"
                " WHERE id = %s AND active RETURNING *"
            ).format(self.webhooks),
            [after, webhook_id],
        )

    async def remove(self, webhook_id: UUID) -> dict[str, Any] | None:
        """Stop delivering; the webhook and its log stay for the record."""
        return await self._one(
            SQL(
                "UPDATE {} SET active = false, leased_by = NULL, leased_until = NULL"
                " WHERE id = %s AND active RETURNING *"
            ).format(self.webhooks),
            [webhook_id],
        )

    async def claim(
        self, owner: UUID, lease_seconds: float, busy: Sequence[UUID], limit: int
    ) -> list[dict[str, Any]]:
        """Lease webhooks that are due and behind the log's head to ``owner``."""
        sql = SQL(
            "UPDATE {webhooks} SET leased_by = %(owner)s,"
            " leased_until = clock_timestamp() + %(lease)s"
            " WHERE id IN (SELECT id FROM {webhooks}"
            " WHERE active AND next_attempt_at <= clock_timestamp()"
            " AND (leased_until IS NULL OR leased_until < clock_timestamp())"
            " AND id <> ALL(%(busy)s::uuid[])"
            " AND position < (SELECT coalesce(max(notification_id), 0) FROM {events})"
            " ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
            " RETURNING *"
        ).format(webhooks=self.webhooks, events=self.events)
        params = {
            "owner": owner,
            "lease": timedelta(seconds=lease_seconds),
            "busy": list(busy),
            "limit": limit,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())

    async def record(
        self,
        webhook: dict[str, Any],
        owner: UUID,
        attempt: Attempt,
        lease_seconds: float,
        retry_in: float | None,
    ) -> bool:
        """Log an attempt and move the webhook on (or schedule the retry).

        False if the lease was lost meanwhile (a replay or a removal): the
        attempt is still logged, and the caller stops.
        """
        if attempt.delivered:
            update = SQL(
                "UPDATE {} SET position = %(position)s, failures = 0, last_error = NULL,"
                " leased_until = clock_timestamp() + %(lease)s"
                " WHERE id = %(id)s AND leased_by = %(owner)s RETURNING failures"
            )
        else:
            update = SQL(
                "UPDATE {} SET failures = failures + 1, last_error = %(error)s,"
                " next_attempt_at = clock_timestamp() + %(retry)s,"
                " leased_by = NULL, leased_until = NULL"
                " WHERE id = %(id)s AND leased_by = %(owner)s RETURNING failures"
            )
        params = {
            "id": webhook["id"],
            "owner": owner,
            "position": attempt.position,
            "lease": timedelta(seconds=lease_seconds),
            "error": attempt.error,
            "retry": timedelta(seconds=retry_in or 0),
        }
        insert = SQL(
            "INSERT INTO {} (id, webhook_id, position, event_id, attempt, attempted_at,"
            " duration_ms, status_code, error, delivered, next_attempt_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " CASE WHEN %s THEN NULL ELSE clock_timestamp() + %s END)"
        ).format(self.deliveries)
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(update.format(self.webhooks), params)
            kept = await cur.fetchone() is not None
            await conn.execute(
                insert,
                [
                    uuid4(),
                    webhook["id"],
                    attempt.position,
                    attempt.event_id,
                    attempt.number,
                    attempt.at,
                    attempt.duration_ms,
                    attempt.status_code,
                    attempt.error,
                    attempt.delivered,
                    attempt.delivered or not kept,
                    timedelta(seconds=retry_in or 0),
                ],
            )
        return kept

    async def advance(self, webhook_id: UUID, owner: UUID, position: int) -> bool:
        """Past events this webhook does not take; False if the lease was lost."""
        sql = SQL(
            "UPDATE {} SET position = greatest(position, %s)"
            " WHERE id = %s AND leased_by = %s RETURNING id"
        ).format(self.webhooks)
        return await self._one(sql, [position, webhook_id, owner]) is not None

    async def release(self, webhook_id: UUID, owner: UUID) -> None:
        """Give the webhook back; served now, it goes behind the others that
        are due (a failed one keeps its later retry time)."""
        sql = SQL(
            "UPDATE {} SET leased_by = NULL, leased_until = NULL,"
            " next_attempt_at = greatest(next_attempt_at, clock_timestamp())"
            " WHERE id = %s AND leased_by = %s"
        ).format(self.webhooks)
        async with self.pool.connection() as conn:
            await conn.execute(sql, [webhook_id, owner])

    async def _one(self, sql: SQL | Any, params: Sequence[Any]) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()


@dataclass(frozen=True)
class Attempt:
    position: int
    event_id: UUID
    number: int
    at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    delivered: bool


class WebhookDispatcher:
    """Delivers every active webhook's events, leasing each to this process."""

    def __init__(
        self,
        store: WebhookStore,
        audit: Audit,
        *,
        timeout_seconds: float = 10.0,
        backoff: Backoff | None = None,
        lease_seconds: float = 60.0,
        concurrency: int = 16,
        wait_for_events: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.timeout = timeout_seconds
        self.backoff = backoff or Backoff()
        # Long enough for a batch of slow answers, renewed after each delivery.
        self.lease_seconds = max(lease_seconds, 3 * timeout_seconds)
        self.concurrency = concurrency
        self.owner = uuid4()
        self._wait_for_events = wait_for_events
        self._running: dict[UUID, asyncio.Task[None]] = {}

    async def run(self, stop: asyncio.Event, idle_seconds: float = 0.5) -> None:
        async with httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=False
        ) as client:
            try:
                while not stop.is_set():
                    try:
                        await self._dispatch(client)
                    except Exception:
                        log.exception("webhook dispatch failed; trying again")
                    await self._idle(stop, idle_seconds)
            finally:
                for task in self._running.values():
                    task.cancel()
                for task in list(self._running.values()):
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _idle(self, stop: asyncio.Event, seconds: float) -> None:
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if self._wait_for_events is not None:
            waits.append(asyncio.ensure_future(self._wait_for_events(seconds)))
        _, pending = await asyncio.wait(
            waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()

    async def _dispatch(self, client: httpx.AsyncClient) -> None:
        free = self.concurrency - len(self._running)
        if free <= 0:
            return
        claimed = await self.store.claim(
            self.owner, self.lease_seconds, list(self._running), free
        )
        for webhook in claimed:
            task = asyncio.create_task(self._deliver_batch(client, webhook))
            self._running[webhook["id"]] = task
            task.add_done_callback(
                lambda _, key=webhook["id"]: self._running.pop(key, None)  # type: ignore[misc]
            )

    async def _deliver_batch(
        self, client: httpx.AsyncClient, webhook: dict[str, Any]
    ) -> None:
        webhook_id: UUID = webhook["id"]
        try:
            recorded = await asyncio.to_thread(
                self.audit.recorder.read_after, webhook["position"], BATCH
            )
            wanted = set(webhook["types"])
            matching = [r for r in recorded if not wanted or _type(r) in wanted]
            failures = webhook["failures"]
            try:
                entries = await asyncio.to_thread(
                    self.audit.entries, matching, withhold_personal=True
                )
            except Exception as exc:
                # Not the receiver's fault, yet just as visible: a failed attempt.
                log.exception(
                    "webhook %s: events after %d unreadable",
                    webhook_id,
                    webhook["position"],
                )
                attempt = _failure(matching[0], failures + 1, f"event unreadable: {exc}")
                await self.store.record(
                    webhook,
                    self.owner,
                    attempt,
                    self.lease_seconds,
                    self.backoff.delay(failures + 1),
                )
                return
            for entry in entries:
                attempt = await self._post(client, webhook, entry, failures + 1)
                retry_in = None if attempt.delivered else self.backoff.delay(failures + 1)
                kept = await self.store.record(
                    webhook, self.owner, attempt, self.lease_seconds, retry_in
                )
                if not attempt.delivered:
                    log.warning(
                        "webhook %s: event %d not delivered (%s); next attempt in %.1f s",
                        webhook_id,
                        attempt.position,
                        attempt.error,
                        retry_in,
                    )
                    return
                if not kept:
                    return
                failures = 0
            if recorded:
                await self.store.advance(webhook_id, self.owner, recorded[-1].position)
        except Exception:
            log.exception("webhook %s: delivery failed", webhook_id)
        finally:
            with contextlib.suppress(Exception):
                await self.store.release(webhook_id, self.owner)

    async def _post(
        self,
        client: httpx.AsyncClient,
        webhook: dict[str, Any],
        entry: HistoryEntry,
        number: int,
    ) -> Attempt:
        recorded = entry.recorded
        body = json.dumps(entry.message(personal_data="withheld")).encode()
        headers = request_headers(
            webhook["id"], recorded.event_id, webhook["secret"], body, number
        )
        at = datetime.now(UTC)
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            # The whole exchange within the timeout, and the answer's body is
            # never read: a receiver that trickles cannot hold a lease past it.
            async with (
                asyncio.timeout(self.timeout),
                client.stream(
                    "POST", webhook["url"], content=body, headers=headers
                ) as answer,
            ):
                status = answer.status_code
                if not answer.is_success:
                    error = f"HTTP {status} {answer.reason_phrase}".strip()
        except (TimeoutError, httpx.TimeoutException):
            status, error = None, f"no answer within {self.timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - every failure is an attempt that failed
            status, error = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
        return Attempt(
            position=recorded.position,
            event_id=recorded.event_id,
            number=number,
            at=at,
            duration_ms=round((time.monotonic() - started) * 1000),
            status_code=status,
            error=error[:ERROR_TEXT_LIMIT] if error else None,
            delivered=error is None,
        )


def _failure(recorded: RecordedEvent, number: int, error: str) -> Attempt:
    return Attempt(
        position=recorded.position,
        event_id=recorded.event_id,
        number=number,
        at=datetime.now(UTC),
        duration_ms=0,
        status_code=None,
        error=error[:ERROR_TEXT_LIMIT],
        delivered=False,
    )


def _type(recorded: RecordedEvent) -> str:
    return event_type(recorded.stored.topic)
