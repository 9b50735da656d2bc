"""Subscriptions (graphql-transport-ws): the event log, replayed then live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator
from typing import Any, Self
from uuid import UUID

import strawberry
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.context import Info
from api.schema.access import STREAM_READERS, Forbidden, principal_of
from api.schema.accounts import Account
from api.schema.history import HistoryEvent
from api.schema.scalars import InvalidArgument, Position
from eventstore.audit import EVENT_TYPES
from eventstore.recorder import RecordedEvent, event_type

BATCH = 500
# How long a subscriber waits for a commit before looking again.
IDLE_SECONDS = 1.0
# Close code for a subscriber cut off for not reading. graphql-transport-ws
# uses 4400-4499 for the server's closes; 4408 there means "connection
# initialisation timeout" (strawberry closes with it), so this is 4413: like
# HTTP 413, more was waiting for the client than the server keeps for it.
SLOW_CONSUMER = 4413
# How long a watchdog waits for its close frame to be taken.
CLOSE_WAIT_SECONDS = 60.0
# Watchdogs that are closing a connection, kept until they are done.
_closing: set[asyncio.Task[None]] = set()


class StallGuard:
    """Cuts off a subscriber whose connection has stopped taking messages.

    Strawberry resumes a subscription's generator only once the message for
    its last ``yield`` has been handed to the transport, and handing it over
    waits while the transport's write buffer is full: the time spent at a
    ``yield`` is the time its message takes to send. When one send stays
    blocked for more than ``subscriber_stall_seconds``, the watchdog withdraws
    it (the operation is cancelled before the message reaches the transport)
    and closes the websocket with ``SLOW_CONSUMER`` and a reason naming the
    position to resume after, so everything up to that position arrives
    before the close frame.
    """

    def __init__(self, info: Info, resume_after: int | None = None) -> None:
        self.request = info.context.request
        self.stall_seconds = info.context.runtime.settings.subscriber_stall_seconds
        self.resume_after = resume_after
        self._sending_since: float | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        # Over multipart HTTP there is no close frame to carry a reason, and a
        # blocked write cannot be withdrawn without tearing down the response:
        # no watchdog there. Such a subscriber still holds one batch at most,
        # and reconnects with its last position like after any broken stream.
        operation = asyncio.current_task()
        if isinstance(self.request, WebSocket) and operation is not None:
            self._watchdog = asyncio.create_task(self._watch(self.request, operation))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # A watchdog that has begun closing the connection is left to finish.
        if self._watchdog is not None and self._watchdog not in _closing:
            self._watchdog.cancel()

    @contextlib.contextmanager
    def sending(self, position: int | None = None) -> Iterator[None]:
        """Around a ``yield``; ``position`` is resumable once its message went out."""
        self._sending_since = asyncio.get_running_loop().time()
        yield
        self._sending_since = None
        if position is not None:
            self.resume_after = position

    def reason(self) -> str:
        if self.resume_after is None:
            return "consumer too slow: subscribe again"
        return f"consumer too slow: resume with after: {self.resume_after}"

    async def _watch(self, websocket: WebSocket, operation: asyncio.Task[Any]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            since = self._sending_since
            blocked = 0.0 if since is None else loop.time() - since
            if blocked >= self.stall_seconds:
                break
            await asyncio.sleep(self.stall_seconds - blocked)
        watchdog = asyncio.current_task()
        assert watchdog is not None  # noqa: S101 - this runs as a task
        _closing.add(watchdog)
        watchdog.add_done_callback(_closing.discard)
        operation.cancel()
        await asyncio.wait([operation])
        # Closed already (by the client, or by another operation's watchdog);
        # or the close frame cannot get past what the client has not read: the
        # keepalive drops a client that never reads again.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, TimeoutError):
            await asyncio.wait_for(
                websocket.close(SLOW_CONSUMER, self.reason()), CLOSE_WAIT_SECONDS
            )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every event after `after` in position order, then each new one "
        "as it commits: no gap, no duplicate. A client that reconnects with the last "
        "position it saw continues exactly after it. `types` and `accountId` narrow "
        "the events sent; positions still only grow. A client that stops reading is "
        "disconnected once a message has waited 30 s (by default) to be sent: close "
        "code 4413, reason `consumer too slow: resume with after: <position>`, every "
        "event up to that position sent before the close."
    )
    async def events(
        self,
        info: Info,
        after: Position = Position(0),  # noqa: B008 - a value, not a call per request
        types: list[str] | None = None,
        account_id: UUID | None = None,
    ) -> AsyncGenerator[HistoryEvent, None]:
        runtime = info.context.runtime
        wanted = set(types or ())
        unknown = sorted(wanted - set(EVENT_TYPES))
        if unknown:
            msg = f"unknown event types: {', '.join(unknown)}"
            raise InvalidArgument(msg)
        if after < 0:
            msg = "after is a position, 0 or more"
            raise InvalidArgument(msg)
        recorder = runtime.audit.recorder
        principal = principal_of(info)
        if principal.role not in STREAM_READERS:
            msg = f"forbidden: events needs one of the roles {', '.join(STREAM_READERS)}"
            raise Forbidden(msg)
        withhold = not principal.sees_personal_data

        def wanted_event(recorded: RecordedEvent) -> bool:
            return (account_id is None or recorded.stored.originator_id == account_id) and (
                not wanted or event_type(recorded.stored.topic) in wanted
            )

        position = int(after)
        async with StallGuard(info, resume_after=position) as guard:
            while True:
                # Positions commit in order, so reading after the last one seen
                # never misses an event that commits later.
                recorded = await runtime.call(recorder.read_after, position, BATCH)
                if not recorded:
                    await runtime.events.wait(IDLE_SECONDS)
                    continue
                matching = [r for r in recorded if wanted_event(r)]
                entries = await runtime.call(
                    runtime.audit.entries, matching, withhold_personal=withhold
                )
                for entry in entries:
                    with guard.sending(entry.recorded.position):
                        yield HistoryEvent.from_entry(entry)
                position = recorded[-1].position

    @strawberry.subscription(
        description="The account as the views show it now, then again after each "
        "change has been projected: for screens that stay open."
    )
    async def account_changed(self, info: Info, id: UUID) -> AsyncGenerator[Account, None]:
        runtime = info.context.runtime
        shown = None
        async with StallGuard(info) as guard:
            while True:
                async with runtime.pool.connection() as conn:
                    # Out of the principal's reach reads as absent: nothing sent.
                    row = (await info.context.reachable_accounts(conn, [id])).get(id)
                if row is not None and row["version"] != shown:
                    shown = row["version"]
                    info.context.forget_loaded()
                    with guard.sending():
                        yield Account.from_row(row)
                await runtime.watermark.wait(runtime.watermark.position + 1, IDLE_SECONDS)
