"""rapport relay against a real NATS JetStream: every event once, in order,
even when the relay is killed mid-stream and started again."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import nats
import pytest

from domain.account import Account
from domain.application import CommandMeta
from domain.values import AccountKind, Channel, Direction
from eventstore.broker import start_embedded, stop_embedded

EVENTS = 4000


@pytest.fixture(scope="session")
def nats_url():
    url = os.environ.get("NATS_URL", "").strip()
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="rapport-nats-") as temp:
        data_dir = Path(temp)
        try:
            yield start_embedded(data_dir)
        finally:
            stop_embedded(data_dir)


def _write(app, events: int) -> None:
    moment = datetime.now(tz=UTC) - timedelta(days=1)
    written = 0
    while written < events:
        batch = []
        for _ in range(10):
            account = Account.open(name="Relayed", kind=AccountKind.GROUP)
            for _ in range(49):
                account.log_interaction(
                    interaction_id=uuid4(),
                    channel=Channel.EMAIL,
                    direction=Direction.INBOUND,
                    occurred_at=moment,
                    summary="Order",
                )
            batch.append(account)
            written += 50
        app.save(*batch, meta=CommandMeta("relay-test"))


async def _stream(url: str, stream: str) -> list[dict]:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        info = await js.stream_info(stream)
        return [
            json.loads((await js.get_msg(stream, seq=seq)).data)
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
    finally:
        await client.close()


async def _count(url: str, stream: str) -> int:
    client = await nats.connect(url)
    try:
        try:
            info = await client.jetstream().stream_info(stream)
        except nats.js.errors.NotFoundError:
            return 0
        return int(info.state.messages)
    finally:
        await client.close()


async def _delete(url: str, stream: str) -> None:
    client = await nats.connect(url)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def _relay(database_url: str, url: str, stream: str, prefix: str) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "api.cli", "relay", "--stream", stream, "--prefix", prefix],
        env=os.environ | {"DATABASE_URL": database_url, "NATS_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _recorded(db, stream: str) -> int | None:
    """Where the relay of ``stream`` has recorded it got to."""
    row = db.execute(
        "SELECT position FROM rapport_events_relayed WHERE relay = %s", (stream,)
    ).fetchone()
    return None if row is None else row[0]


def _wait(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_relay_killed_mid_stream_loses_and_doubles_nothing(
    app, database_url, nats_url, db
):
    suffix = secrets.token_hex(4)
    stream, prefix = f"RAPPORT_TEST_{suffix}", f"rapport.test{suffix}"
    _write(app, EVENTS)
    positions = [
        row[0]
        for row in db.execute(
            "SELECT notification_id FROM rapport_events ORDER BY notification_id"
        ).fetchall()
    ]

    relay = _relay(database_url, nats_url, stream, prefix)
    try:
        _wait(lambda: asyncio.run(_count(nats_url, stream)) > 200)
    finally:
        relay.send_signal(signal.SIGKILL)
        relay.wait()
    published_when_killed = asyncio.run(_count(nats_url, stream))
    assert published_when_killed < len(positions), "killed too late to prove anything"

    relay = _relay(database_url, nats_url, stream, prefix)
    try:
        _wait(lambda: asyncio.run(_count(nats_url, stream)) >= len(positions))
        # The relay's own position catches up after the last acknowledgement.
        _wait(lambda: _recorded(db, stream) == positions[-1])
        # Forgetting its position (a crash before recording it) doubles nothing:
        # it resumes from the last message the stream holds.
        db.execute(
            "UPDATE rapport_events_relayed SET position = 0 WHERE relay = %s", (stream,)
        )
    finally:
        relay.terminate()
        relay.wait(timeout=30)
    relay = _relay(database_url, nats_url, stream, prefix)
    try:
        _wait(lambda: _recorded(db, stream) == positions[-1])
    finally:
        relay.terminate()
        relay.wait(timeout=30)

    messages = asyncio.run(_stream(nats_url, stream))
    assert [m["position"] for m in messages] == positions
    assert len({m["event_id"] for m in messages}) == len(positions)
    last = messages[-1]
    assert last["type"] == "InteractionLogged"
    assert last["actor"] == "relay-test"
    # Personal values are withheld: an erasure could not reach them in the stream.
    assert (last["personal_data"], last["payload"]["summary"]) == ("withheld", "[erased]")

    # A stream made again (deleted, or new) gets every event, whatever the
    # relay's recorded position says.
    asyncio.run(_delete(nats_url, stream))
    relay = _relay(database_url, nats_url, stream, prefix)
    try:
        _wait(lambda: asyncio.run(_count(nats_url, stream)) >= len(positions))
    finally:
        relay.terminate()
        relay.wait(timeout=30)
    again = asyncio.run(_stream(nats_url, stream))
    asyncio.run(_delete(nats_url, stream))
    assert [m["position"] for m in again] == positions
