"""The events subscription over graphql-transport-ws, against a real server."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.sync.client import connect

from domain.application import CommandMeta
from domain.errors import ConcurrencyConflict
from domain.values import AccountKind, Channel, Direction, Tier

EVENTS = """
subscription($after: Position!, $account: UUID, $types: [String!]) {
  events(after: $after, accountId: $account, types: $types) {
    position accountId version type eventId actor payload
  }
}"""


class Subscription:
    def __init__(self, ws) -> None:
        self.ws = ws

    def take(self, count: int) -> list[dict]:
        events = []
        while len(events) < count:
            message = json.loads(self.ws.recv(timeout=30))
            assert message["type"] == "next", message
            events.append(message["payload"]["data"]["events"])
        return events


@contextlib.contextmanager
def subscribe(api, variables: dict, **options) -> Iterator[Subscription]:
    url = api.base_url.replace("http://", "ws://") + "/graphql"
    with connect(
        url, subprotocols=["graphql-transport-ws"], open_timeout=10, **options
    ) as ws:
        ws.send(api.connection_init())
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": EVENTS, "variables": variables},
                }
            )
        )
        yield Subscription(ws)


def _log(app, account_id):
    return app.log_interaction(
        CommandMeta("writer"),
        account_id,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        occurred_at=datetime.now(tz=UTC) - timedelta(minutes=1),
        summary="Live",
    )


def test_concurrent_writers_reach_a_subscriber_once_each_in_order(api, app):
    account_id = app.open_account(
        CommandMeta("writer"), name="Subscribed", kind=AccountKind.GROUP
    ).account_id
    with subscribe(api, {"after": 0, "account": str(account_id)}) as subscriber:
        assert subscriber.take(1)[0]["type"] == "AccountOpened"  # replayed
        positions: list[int] = []

        def write():
            for _ in range(10):
                # A lost race is answered with a conflict, and nothing is written.
                with contextlib.suppress(ConcurrencyConflict):
                    positions.append(_log(app, account_id).position)

        writers = [threading.Thread(target=write) for _ in range(4)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        live = subscriber.take(len(positions))
    assert [e["position"] for e in live] == sorted(positions)
    assert [e["version"] for e in live] == list(range(2, len(positions) + 2))
    assert {e["type"] for e in live} == {"InteractionLogged"}
    assert live[0]["payload"]["summary"] == "Live"


def test_many_writers_on_many_accounts_reach_an_unfiltered_subscriber_once_in_order(
    api, app
):
    accounts = [
        app.open_account(CommandMeta("writer"), name=f"Busy {n}", kind=AccountKind.GROUP)
        for n in range(8)
    ]
    head = app.recorder.max_notification_id()
    with subscribe(api, {"after": head}) as subscriber:
        positions: list[int] = []

        def write(account_id):
            positions.extend(_log(app, account_id).position for _ in range(25))

        writers = [threading.Thread(target=write, args=(a.account_id,)) for a in accounts]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        live = subscriber.take(len(positions))
    # Nothing else writes meanwhile: exactly these events, each once, in order.
    assert [e["position"] for e in live] == sorted(positions)
    assert len({e["eventId"] for e in live}) == len(positions) == 200


def test_a_reconnecting_client_continues_exactly_after_its_last_position(api, app):
    account_id = app.open_account(
        CommandMeta("writer"), name="Resumed", kind=AccountKind.GROUP
    ).account_id
    written = [_log(app, account_id).position for _ in range(6)]
    with subscribe(api, {"after": 0, "account": str(account_id)}) as first:
        seen = first.take(4)  # AccountOpened and three interactions
    written += [_log(app, account_id).position for _ in range(3)]
    resume = {"after": seen[-1]["position"], "account": str(account_id)}
    with subscribe(api, resume) as again:
        rest = again.take(6)
    assert [e["position"] for e in seen[1:] + rest] == written
    assert len({e["eventId"] for e in seen + rest}) == len(seen) + len(rest)


# RAPPORT_SUBSCRIBER_STALL_SECONDS of the e2e server (tests/e2e/conftest.py).
STALL_SECONDS = 3

LOG_INTERACTION = """
mutation($input: LogInteractionInput!) {
  logInteraction(input: $input) {
    __typename
    ... on InteractionLogged { position }
    ... on Error { code message }
  }
}"""


def _log_large(app, account_id):
    """About 16 KB of event, random so that no compression shrinks it."""
    return app.log_interaction(
        CommandMeta("writer"),
        account_id,
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        occurred_at=datetime.now(tz=UTC) - timedelta(minutes=1),
        participants=tuple(secrets.token_hex(100) for _ in range(40)),
        summary=secrets.token_hex(2000),
        outcome=secrets.token_hex(2000),
    )


@contextlib.contextmanager
def slow_subscribe(api, variables: dict) -> Iterator[Subscription]:
    """A subscriber whose connection takes in little at a time and that reads nothing.

    A small receive buffer (set before connecting, so the window the server
    sees is small from the start) and a client queue of one message: what the
    server sends beyond that stays in its own buffers, and its sends block.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(api.base_url.rsplit(":", 1)[1])))
        with subscribe(
            api, variables, sock=sock, max_queue=1, compression=None, ping_interval=None
        ) as subscriber:
            yield subscriber


def _read_until_closed(ws) -> tuple[list[int], Close]:
    """Positions of the events received, and the server's close frame after them."""
    positions = []
    while True:
        try:
            message = json.loads(ws.recv(timeout=30))
        except ConnectionClosed as closed:
            close = closed.rcvd
            break
        assert message["type"] == "next", message
        positions.append(message["payload"]["data"]["events"]["position"])
    assert close is not None, "connection lost without a close frame"
    return positions, close


def test_a_consumer_that_stops_reading_is_cut_off_and_resumes_exactly(api, app):
    opened = app.open_account(
        CommandMeta("writer"), name="Slow reader", kind=AccountKind.GROUP
    )
    account = str(opened.account_id)
    # About 6.4 MB: more than the kernel buffers between server and client hold.
    written = [opened.position] + [
        _log_large(app, opened.account_id).position for _ in range(400)
    ]
    during_stall = 10
    variables = {"after": 0, "account": account}

    watched: list[int] = []

    def watch():
        with subscribe(api, variables) as other:
            events = other.take(len(written) + during_stall)
        watched.extend(e["position"] for e in events)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with slow_subscribe(api, variables) as slow:
        stopped_reading = time.monotonic()
        for _ in range(during_stall):
            body = api.graphql(
                LOG_INTERACTION,
                {
                    "input": {
                        "accountId": account,
                        "channel": "EMAIL",
                        "direction": "INBOUND",
                        "occurredAt": "2026-03-01T09:00:00Z",
                        "summary": "Written while a subscriber stalls",
                    }
                },
            )
            answer = body["data"]["logInteraction"]
            assert answer["__typename"] == "InteractionLogged", answer
            written.append(answer["position"])
        watcher.join(timeout=120)
        assert not watcher.is_alive()
        # The other subscriber got everything, in order, while this one read nothing.
        assert watched == written
        # Read nothing for well over the server's limit, then take what it sent.
        time.sleep(max(0.0, stopped_reading + 4 * STALL_SECONDS - time.monotonic()))
        received, close = _read_until_closed(slow.ws)

    assert close.code == 4413
    match = re.fullmatch(r"consumer too slow: resume with after: (\d+)", close.reason)
    assert match, close.reason
    resume = int(match[1])
    # Cut off part way, after a gapless run of events that ends where it says.
    assert 0 < len(received) < len(written)
    assert received == written[: len(received)]
    assert received[-1] == resume
    with subscribe(api, {"after": resume, "account": account}) as again:
        rest = [e["position"] for e in again.take(len(written) - len(received))]
    assert received + rest == written


@pytest.mark.parametrize(
    ("variables", "problem"),
    [({"after": 0, "types": ["NoSuchEvent"]}, "NoSuchEvent"), ({"after": -1}, "after")],
)
def test_bad_arguments_are_refused_clearly(api, variables, problem):
    with subscribe(api, variables) as subscriber:
        message = json.loads(subscriber.ws.recv(timeout=10))
    assert message["type"] == "next"
    assert message["payload"]["data"] is None
    assert problem in message["payload"]["errors"][0]["message"]


ACCOUNT_CHANGED = """
subscription($id: UUID!) {
  accountChanged(id: $id) { version tier tierHistory { value } }
}"""


def test_account_changed_pushes_the_view_after_each_projected_change(api, app):
    account_id = app.open_account(
        CommandMeta("writer"), name="Watched", kind=AccountKind.GROUP
    ).account_id
    url = api.base_url.replace("http://", "ws://") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(api.connection_init())
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        payload = {"query": ACCOUNT_CHANGED, "variables": {"id": str(account_id)}}
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        shown = []
        for tier in (Tier.PARTNER, Tier.STRATEGIC_ALLIANCE):
            shown.append(
                json.loads(ws.recv(timeout=30))["payload"]["data"]["accountChanged"]
            )
            app.change_tier(CommandMeta("writer"), account_id, tier, "grew")
        shown.append(json.loads(ws.recv(timeout=30))["payload"]["data"]["accountChanged"])
    assert [(s["version"], s["tier"]) for s in shown] == [
        (1, "TRANSACTIONAL"),
        (2, "PARTNER"),
        (3, "STRATEGIC_ALLIANCE"),
    ]
    assert [p["value"] for p in shown[-1]["tierHistory"]] == [
        "transactional",
        "partner",
        "strategic_alliance",
    ]
