"""Kept answers sent before routing (``api.kept_http``), through the whole app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from starlette.testclient import TestClient

from api.answers import Scope, Standing
from api.app import create_app
from api.auth import Role
from api.runtime import Runtime, api_keys_of
from api.settings import Settings
from domain.application import CommandMeta
from domain.values import AccountKind, Channel, Direction
from eventstore.recorder import recorder_of

ALICE = CommandMeta(actor="alice")
ACCOUNT = """query Account($id: UUID!) {
  account(id: $id) {
    id name version contacts { email } interactions(first: 5) { edges { node { summary } } }
  }
}"""
SETTINGS = Settings(run_projections=False, run_webhooks=False)


class Served:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        self.key = self.key_of(Role.ADMIN)
        opened = self.runtime.app.open_account(
            ALICE, name="Acme", kind=AccountKind.ORGANIZATION
        )
        self.runtime.app.add_contact(
            ALICE, opened.account_id, name="Ann Lee", role="Buyer", email="ann@x.example"
        )
        self.account = opened.account_id
        self.account_id = str(opened.account_id)
        self.log("first call")

    def log(self, summary: str) -> None:
        self.runtime.app.log_interaction(
            ALICE,
            self.account,
            channel=Channel.EMAIL,
            direction=Direction.INBOUND,
            occurred_at=datetime.now(tz=UTC),
            summary=summary,
        )
        self.runtime.projections.catch_up()

    def post(self, body: object, key: str | None = None) -> httpx.Response:
        return self.client.post(
            "/graphql",
            content=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {key or self.key}",
            },
        )

    def ask(self, key: str | None = None, **more: object) -> tuple[int, bytes]:
        response = self.post(
            {"query": ACCOUNT, "variables": {"id": self.account_id}} | more, key
        )
        return response.status_code, response.content

    def key_of(self, role: Role) -> str:
        with recorder_of(self.runtime.app).datastore.transaction(commit=True) as cur:
            return (
                api_keys_of(self.runtime.app)
                .create(cur, name="test", role=role, actor="alice")
                .key
            )

    @property
    def counts(self) -> tuple[int, int, int]:
        answers = self.runtime.answers
        assert answers is not None
        return answers.hits, answers.early, answers.misses


def _served(database_url: str, settings: Settings = SETTINGS) -> Iterator[Served]:
    with TestClient(create_app(settings, database_url)) as client:
        yield Served(client)


@pytest.fixture
def served(empty_database_url: str) -> Iterator[Served]:
    yield from _served(empty_database_url)


def test_a_kept_answer_is_sent_before_routing_as_the_schema_would_send_it(served):
    body = {"query": ACCOUNT, "variables": {"id": served.account_id}}
    first = served.post(body)
    second = served.post(body)
    third = served.post(body)
    assert first.status_code == 200
    assert first.json()["data"]["account"]["contacts"] == [{"email": "ann@x.example"}]
    for again in (second, third):
        assert again.status_code == 200
        assert again.content == first.content
        assert again.headers == first.headers
    assert served.counts == (2, 2, 1)


def test_the_operation_name_sent_is_part_of_what_an_answer_is_kept_under(served):
    named = served.ask(operationName="Account")
    assert served.ask(operationName="Account") == named
    assert served.ask() == named
    assert served.ask() == named
    assert served.counts == (2, 2, 2)


def test_each_credential_gets_answers_of_its_own(served):
    admin = served.ask()
    served.ask()
    service_key = served.key_of(Role.SERVICE)
    service = served.ask(service_key)
    assert served.ask(service_key) == service
    assert b"ann@x.example" in admin[1]
    assert b"ann@x.example" not in service[1]
    assert served.counts == (2, 2, 2)


def test_once_the_views_move_the_answer_is_worked_out_again(served):
    before = served.ask()
    served.ask()
    served.log("second call")
    after = served.ask()
    assert b"second call" in after[1]
    assert b"second call" not in before[1]
    assert served.counts == (1, 1, 2)


def test_a_credential_that_does_not_hold_goes_on_to_be_refused(served):
    served.ask()
    status, _ = served.ask("rk_nothing")
    assert status == 401
    assert served.counts == (0, 0, 1)


def test_a_request_with_anything_more_goes_the_whole_way(served):
    served.ask()
    status, body = served.ask(extensions={"note": "anything"})
    assert status == 200
    assert body == served.ask()[1]
    # The second went the whole way and was answered from what was kept there.
    assert served.counts == (2, 1, 1)


def test_a_kept_answer_is_charged_to_the_credentials_rate(empty_database_url):
    limited = replace(SETTINGS, rate_limit_per_second=0.001, rate_limit_burst=2)
    for served in _served(empty_database_url, limited):
        assert served.ask()[0] == 200
        assert served.ask()[0] == 200
        refused = served.post({"query": ACCOUNT, "variables": {"id": served.account_id}})
        assert refused.status_code == 429
        assert "Retry-After" in refused.headers
        assert served.counts == (1, 1, 1)


def test_a_request_the_early_path_missed_reads_where_the_views_stand_once(
    served, monkeypatch
):
    reads = []
    read = served.runtime.standing

    async def counted(scope: Scope) -> Standing | None:
        reads.append(1)
        return await read(scope)

    monkeypatch.setattr(served.runtime, "standing", counted)
    served.ask()  # not known yet: read once, on execution
    served.ask()  # kept: read once, before routing
    served.log("second call")
    served.ask()  # read before routing, missed, reused on execution
    assert len(reads) == 3
    assert served.counts == (1, 1, 2)


@pytest.mark.parametrize(
    "body", [b"not json", b"\xff not UTF-8", b"[" * 100_000], ids=["text", "bytes", "deep"]
)
def test_a_body_that_is_not_json_goes_on_to_be_refused(served, body):
    served.ask()
    served.ask()
    response = served.client.post(
        "/graphql",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {served.key}",
        },
    )
    assert response.status_code == 400
    assert served.counts == (1, 1, 1)
