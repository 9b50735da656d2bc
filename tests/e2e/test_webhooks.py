"""Webhooks against a real HTTP receiver: every event once, in order, signed,
also when the receiver fails for a while; replay; two dispatchers, one delivery."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from domain.application import CommandMeta
from domain.values import AccountKind, Channel, Direction
from eventstore.audit import Audit
from eventstore.webhooks import Backoff, WebhookDispatcher, WebhookStore

SECRET = "receiver-shared-secret-1"  # noqa: S105 - a test receiver's


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    status: int | None  # None: left without an answer

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP endpoint whose answers the test decides, one request at a time."""

    answer: Callable[[int], int | None]
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def accepted(self, account_id: UUID) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r.event
                for r in self.requests
                if r.status == 200 and r.event["account_id"] == str(account_id)
            ]


@contextlib.contextmanager
def receiver(answer: Callable[[int], int | None]) -> Iterator[Receiver]:
    state = Receiver(answer)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                number = len(state.requests)
                status = state.answer(number)
                state.requests.append(Request(dict(self.headers), body, status))
            if status is None:
                time.sleep(2.5)  # longer than the sender waits
                return
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for deliveries")
        time.sleep(0.1)


def write_account(app, interactions: int) -> tuple[UUID, list[int]]:
    meta = CommandMeta("writer")
    opened = app.open_account(meta, name="Hooked", kind=AccountKind.GROUP)
    logged = [
        app.log_interaction(
            meta,
            opened.account_id,
            channel=Channel.CALL,
            direction=Direction.OUTBOUND,
            occurred_at=datetime.now(tz=UTC) - timedelta(minutes=1),
            summary=f"Call {number}",
        ).position
        for number in range(interactions)
    ]
    return opened.account_id, [opened.position, *logged]


def write_interaction(app, account_id: UUID) -> int:
    return app.log_interaction(
        CommandMeta("writer"),
        account_id,
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        occurred_at=datetime.now(tz=UTC) - timedelta(minutes=1),
        summary="Call",
    ).position


def assert_signed(request: Request) -> None:
    """As a receiver checks it, computed here independently of the sender's code."""
    timestamp = request.headers["Rapport-Timestamp"]
    expected = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["Rapport-Signature"], f"v1={expected}")
    assert abs(time.time() - int(timestamp)) < 300
    assert request.headers["Rapport-Event-Id"] == request.event["event_id"]


REGISTER = """
mutation($url: String!, $secret: String!, $types: [String!], $after: Position) {
  registerWebhook(url: $url, secret: $secret, types: $types, after: $after) {
    __typename
    ... on Webhook { id position }
    ... on ValidationError { field code message }
  }
}"""
WEBHOOK = """
query($id: UUID!) {
  webhook(id: $id) {
    failures lastError nextAttemptAt position active
    deliveries(first: 100) {
      position eventId attempt statusCode error delivered nextAttemptAt
    }
  }
}"""
REPLAY = """
mutation($id: UUID!, $after: Position!) {
  replayWebhook(id: $id, after: $after) { __typename ... on Webhook { position } }
}"""
REMOVE = """
mutation($id: UUID!) { removeWebhook(id: $id) { __typename ... on Webhook { active } } }
"""


def test_a_receiver_that_fails_for_a_while_gets_every_event_once_in_order_signed(api, app):
    # Two refusals, one request left unanswered past the timeout, then health.
    answers = {0: 503, 1: 500, 2: None}
    with receiver(lambda n: answers.get(n, 200)) as hook:
        registered = api.graphql(REGISTER, {"url": hook.url, "secret": SECRET})
        webhook = registered["data"]["registerWebhook"]
        assert webhook["__typename"] == "Webhook", registered
        try:
            account_id, positions = write_account(app, 8)
            wait_for(lambda: len(hook.accepted(account_id)) >= len(positions))
            accepted = hook.accepted(account_id)
            assert [e["position"] for e in accepted] == positions
            assert len({e["event_id"] for e in accepted}) == len(positions)
            assert [e["type"] for e in accepted[:2]] == [
                "AccountOpened",
                "InteractionLogged",
            ]
            assert accepted[1]["payload"]["summary"] == "[erased]"  # personal: withheld
            assert accepted[1]["personal_data"] == "withheld"
            for request in hook.requests:
                assert_signed(request)

            # A delivery is logged just after its answer: wait for the last one.
            def logged() -> dict:
                return api.graphql(WEBHOOK, {"id": webhook["id"]})["data"]["webhook"]

            wait_for(
                lambda: positions[-1] in {d["position"] for d in logged()["deliveries"]}
            )
            state = logged()
            assert state["failures"] == 0
            assert state["lastError"] is None
            log = list(reversed(state["deliveries"]))  # oldest first
            failed = [d for d in log if not d["delivered"]]
            assert [(d["statusCode"], d["attempt"]) for d in failed] == [
                (503, 1),
                (500, 2),
                (None, 3),
            ]
            assert "no answer within" in failed[2]["error"]
            assert all(d["nextAttemptAt"] for d in failed)
            # The failures were all at the first event, which then got through.
            assert {d["position"] for d in failed} == {positions[0]}
            delivered = [d["position"] for d in log if d["delivered"]]
            assert delivered[: len(positions)] == positions

            # Replay from the third event: the rest again, same ids, in order.
            before = len(hook.accepted(account_id))
            replay = api.graphql(REPLAY, {"id": webhook["id"], "after": positions[2]})
            assert replay["data"]["replayWebhook"]["position"] == positions[2]
            wait_for(lambda: len(hook.accepted(account_id)) >= before + len(positions) - 3)
            again = hook.accepted(account_id)[before:]
            assert [e["position"] for e in again] == positions[3:]
            assert [e["event_id"] for e in again] == [e["event_id"] for e in accepted[3:]]
        finally:
            removed = api.graphql(REMOVE, {"id": webhook["id"]})
            assert removed["data"]["removeWebhook"]["active"] is False


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"url": "ftp://example.com/hook", "secret": SECRET}, "url"),
        ({"url": "/relative", "secret": SECRET}, "url"),
        ({"url": "http://example.com/hook", "secret": "short"}, "secret"),
        ({"url": "http://example.com/hook", "secret": SECRET, "types": ["Nope"]}, "types"),
        ({"url": "http://example.com:port/hook", "secret": SECRET}, "url"),
        ({"url": "http://[::1/hook", "secret": SECRET}, "url"),
        ({"url": "http://example.com/hook", "secret": SECRET, "after": 10**12}, "after"),
        ({"url": "http://example.com/hook", "secret": SECRET, "after": -1}, "after"),
    ],
)
def test_a_registration_that_could_never_deliver_is_refused_and_nothing_stored(
    api, variables, field
):
    count = len(api.graphql("{ webhooks { id } }")["data"]["webhooks"])
    answer = api.graphql(REGISTER, variables)["data"]["registerWebhook"]
    assert answer["__typename"] == "ValidationError"
    assert answer["field"] == field
    assert len(api.graphql("{ webhooks { id } }")["data"]["webhooks"]) == count


def test_replaying_or_removing_an_unknown_webhook_says_not_found(api):
    missing = "00000000-0000-0000-0000-000000000001"
    answer = api.graphql(REPLAY, {"id": missing, "after": 0})["data"]["replayWebhook"]
    assert answer["__typename"] == "NotFoundError"
    answer = api.graphql(REMOVE, {"id": missing})["data"]["removeWebhook"]
    assert answer["__typename"] == "NotFoundError"


def test_two_dispatchers_deliver_each_event_once(app, database_url):
    """Processes share the work by leases; none delivers what another holds."""
    audit = Audit(app)

    async def run(url: str, account_id: UUID, expected: int) -> None:
        async with AsyncConnectionPool(
            database_url, kwargs={"row_factory": dict_row, "autocommit": True}
        ) as pool:
            store = WebhookStore(pool, audit)
            hooks = [
                await store.register(
                    url=url, secret=SECRET, types=[], actor="t", after=start
                )
                for _ in range(2)
            ]
            stop = asyncio.Event()
            dispatchers = [
                WebhookDispatcher(store, audit, timeout_seconds=5, backoff=Backoff(0.1, 1))
                for _ in range(2)
            ]
            tasks = [asyncio.create_task(d.run(stop, 0.05)) for d in dispatchers]
            await asyncio.to_thread(
                wait_for, lambda: len(hook.accepted(account_id)) >= expected
            )
            await asyncio.sleep(1)  # time for a double delivery to show
            stop.set()
            await asyncio.gather(*tasks)
            for registered in hooks:
                await store.remove(registered["id"])

    start = app.recorder.max_notification_id() or 0
    with receiver(lambda _: 200) as hook:
        account_id, positions = write_account(app, 20)
        asyncio.run(run(hook.url, account_id, 2 * len(positions)))
        by_webhook: dict[str, list[int]] = {}
        for request in hook.requests:
            by_webhook.setdefault(request.headers["Rapport-Webhook-Id"], []).append(
                request.event["position"]
            )
    assert len(by_webhook) == 2
    for delivered in by_webhook.values():
        mine = [p for p in delivered if p in set(positions)]
        assert mine == positions  # each once, in order, whoever sent it


def test_busy_webhooks_take_turns(app, database_url):
    """With fewer delivery slots than webhooks and writes that never pause,
    every webhook is served, not only the first ones."""
    audit = Audit(app)
    start = app.recorder.max_notification_id() or 0
    account_id, _ = write_account(app, 0)
    writing = threading.Event()
    writing.set()

    def write() -> None:
        while writing.is_set():
            write_interaction(app, account_id)

    async def run(url: str) -> None:
        async with AsyncConnectionPool(
            database_url, kwargs={"row_factory": dict_row, "autocommit": True}
        ) as pool:
            store = WebhookStore(pool, audit)
            hooks = [
                await store.register(
                    url=url, secret=SECRET, types=[], actor="t", after=start
                )
                for _ in range(3)
            ]
            dispatcher = WebhookDispatcher(store, audit, concurrency=1)
            stop = asyncio.Event()
            task = asyncio.create_task(dispatcher.run(stop, 0.05))
            served = lambda: {r.headers["Rapport-Webhook-Id"] for r in hook.requests}  # noqa: E731
            await asyncio.to_thread(wait_for, lambda: len(served()) == len(hooks), 30)
            stop.set()
            await task
            for registered in hooks:
                await store.remove(registered["id"])

    writer = threading.Thread(target=write)
    with receiver(lambda _: 200) as hook:
        writer.start()
        try:
            asyncio.run(run(hook.url))
        finally:
            writing.clear()
            writer.join()
