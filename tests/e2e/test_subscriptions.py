"""The events subscription over graphql-transport-ws, against a real server."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
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
def subscribe(api, variables: dict) -> Iterator[Subscription]:
    url = api.base_url.replace("http://", "ws://") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
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
        ws.send(json.dumps({"type": "connection_init"}))
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
