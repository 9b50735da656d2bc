"""``rapport relay``: the event log, published to a NATS JetStream stream.

Each event goes, in position order, to ``rapport.events.<EventType>`` as JSON
(the same fields as ``history``), with its event id as ``Nats-Msg-Id`` so that
JetStream drops a message it already holds. The relay waits for each publish's
acknowledgement, and records its position in PostgreSQL only after the
acknowledgements of a batch. On start it resumes after the last message the
stream holds; from the start if the stream never held one (new, or made
again); from its recorded position if every message has aged out. Killed at
any moment and restarted, the stream ends up with every event once, in order.

Personal values are withheld by default: they travel in their erased form
(``[erased]``, dates ``null``), and the message says ``"personal_data":
"withheld"``; consumers that need them read them from the API, where an
erasure reaches them. With ``include_personal`` they travel as they are, and
stay in the stream after an erasure for as long as the stream keeps messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import nats
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from psycopg.sql import SQL

from domain.application import Accounts
from eventstore.audit import Audit
from eventstore.recorder import recorder_of

log = logging.getLogger("rapport.relay")

STREAM = "RAPPORT_EVENTS"
SUBJECT_PREFIX = "rapport.events"
BATCH = 500
# How long JetStream remembers message ids to drop duplicates: longer than a
# relay restart takes.
DUPLICATE_WINDOW_SECONDS = 3600.0


class Relay:
    def __init__(
        self,
        app: Accounts,
        nats_url: str,
        *,
        stream: str = STREAM,
        subject_prefix: str = SUBJECT_PREFIX,
        include_personal: bool = False,
    ) -> None:
        self.audit = Audit(app)
        self.recorder = recorder_of(app)
        self.nats_url = nats_url
        self.stream = stream
        self.prefix = subject_prefix
        self.include_personal = include_personal
        # Progress is the stream's: another stream starts from its own.
        self.name = stream
        table = self.recorder.relayed_table
        self._select = SQL("SELECT position FROM {} WHERE relay = %s").format(table)
        self._record = SQL(
            "INSERT INTO {} (relay, position) VALUES (%s, %s) ON CONFLICT (relay)"
            " DO UPDATE SET position = excluded.position, updated_at = clock_timestamp()"
        ).format(table)

    def tracked(self) -> int:
        with self.recorder.datastore.transaction(commit=False) as cur:
            cur.execute(self._select, (self.name,))
            row = cur.fetchone()
        return 0 if row is None else int(row["position"])

    def _track(self, position: int) -> None:
        with self.recorder.datastore.transaction(commit=True) as cur:
            cur.execute(self._record, (self.name, position))

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.prefix}.>"],
                    duplicate_window=DUPLICATE_WINDOW_SECONDS,
                )
            )

    async def _resume_from(self, js: JetStreamContext, tracked: int) -> int:
        """After the last event the stream holds: the stream is the truth."""
        info = await js.stream_info(self.stream)
        if not info.state.last_seq:
            return 0  # a stream that never held a message: everything
        if not info.state.messages:
            return tracked  # all aged out: where this relay got to
        last = await js.get_msg(self.stream, seq=info.state.last_seq)
        return int(json.loads(last.data or b"{}")["position"])

    async def run(self, stop: asyncio.Event, idle_seconds: float = 0.5) -> None:
        client = await nats.connect(self.nats_url)
        try:
            js = client.jetstream()
            personal = "included" if self.include_personal else "withheld"
            await self._ensure_stream(js)
            tracked = await asyncio.to_thread(self.tracked)
            position = await self._resume_from(js, tracked)
            log.info("relaying events after position %d to %s", position, self.stream)
            while not stop.is_set():
                recorded = await asyncio.to_thread(
                    self.recorder.read_after, position, BATCH
                )
                if not recorded:
                    if position != tracked:
                        await asyncio.to_thread(self._track, position)
                        tracked = position
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), idle_seconds)
                    continue
                entries = await asyncio.to_thread(
                    self.audit.entries,
                    recorded,
                    withhold_personal=not self.include_personal,
                )
                for entry in entries:
                    await js.publish(
                        f"{self.prefix}.{entry.type}",
                        json.dumps(entry.message(personal_data=personal)).encode(),
                        headers={"Nats-Msg-Id": str(entry.recorded.event_id)},
                    )
                    position = entry.recorded.position
                await asyncio.to_thread(self._track, position)
                tracked = position
        finally:
            await client.close()
