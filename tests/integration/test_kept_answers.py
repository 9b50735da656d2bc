"""Answers kept until the views move (``api.answers``), on a database of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from starlette.websockets import WebSocket
from strawberry.types import ExecutionResult

from api.auth import Principal, Role
from api.context import Context
from api.runtime import Runtime
from api.schema import build_schema
from api.settings import Settings
from domain.application import CommandMeta
from domain.values import AccountKind, Channel, Direction, Stage

ALICE = CommandMeta(actor="alice")
ADMIN = Principal("alice", Role.ADMIN, credential="admin")
SERVICE = Principal("relay", Role.SERVICE, credential="service")

ACCOUNT = """
query Account($id: UUID!) {
  account(id: $id) {
    id name version
    contacts { name email }
    interactions(first: 5) { edges { node { summary } } }
    stageHistory { value enteredAt leftAt }
  }
}"""

Ask = Callable[..., Awaitable[ExecutionResult]]


def _served(database_url: str, scenario: Callable[[Runtime, Ask], Awaitable[None]]) -> None:
    """Run ``scenario`` with a runtime on ``database_url`` and the API's schema."""
    runtime = Runtime(Settings(run_projections=False, run_webhooks=False), database_url)
    schema = build_schema(keep_answers=True)

    async def main() -> None:
        await runtime.pool.open(wait=True)
        try:

            async def ask(
                document: str, variables: dict[str, Any], principal: Principal = ADMIN
            ) -> ExecutionResult:
                context = Context(runtime, principal, correlation_id=uuid4())
                return await schema.execute(
                    document, variable_values=variables, context_value=context
                )

            await scenario(runtime, ask)
        finally:
            await runtime.pool.close()

    try:
        asyncio.run(main())
    finally:
        runtime.executor.shutdown()
        runtime.app.close()


def _account(runtime: Runtime) -> UUID:
    app = runtime.app
    opened = app.open_account(ALICE, name="Acme", kind=AccountKind.ORGANIZATION)
    account_id = opened.account_id
    app.add_contact(ALICE, account_id, name="Ann Lee", role="Buyer", email="ann@x.example")
    app.change_stage(ALICE, account_id, Stage.AWARENESS, "met at a fair")
    _log(runtime, account_id, "first call")
    return account_id


def _log(runtime: Runtime, account_id: UUID, summary: str) -> None:
    runtime.app.log_interaction(
        ALICE,
        account_id,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        occurred_at=datetime.now(tz=UTC),
        summary=summary,
    )
    runtime.projections.catch_up()


def _kept(runtime: Runtime) -> tuple[int, int]:
    answers = runtime.answers
    assert answers is not None
    return answers.hits, answers.misses


def test_the_same_query_again_is_answered_from_what_was_kept(empty_database_url):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = str(_account(runtime))
        first = await ask(ACCOUNT, {"id": account_id})
        again = await ask(ACCOUNT, {"id": account_id})
        assert first.errors is None
        assert again.data == first.data
        assert _kept(runtime) == (1, 1)

    _served(empty_database_url, scenario)


def test_an_answer_is_worked_out_again_once_the_views_move(empty_database_url):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = _account(runtime)
        before = await ask(ACCOUNT, {"id": str(account_id)})
        _log(runtime, account_id, "second call")
        after = await ask(ACCOUNT, {"id": str(account_id)})
        assert before.data is not None
        assert after.data is not None
        edges = after.data["account"]["interactions"]["edges"]
        summaries = [edge["node"]["summary"] for edge in edges]
        assert summaries == ["second call", "first call"]
        assert after.data["account"]["version"] == before.data["account"]["version"] + 1
        assert _kept(runtime) == (0, 2)

    _served(empty_database_url, scenario)


def test_a_rebuild_moves_where_the_views_stand_though_no_event_came(empty_database_url):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        _account(runtime)
        standing = await runtime.views_standing()
        runtime.projections.rebuild(["interaction_timeline"])
        assert await runtime.views_standing() != standing

    _served(empty_database_url, scenario)


def test_a_rebuild_moves_where_an_account_stands_though_no_event_came(
    empty_database_url,
):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = str(_account(runtime))
        scope = (UUID(account_id),)
        first = await ask(ACCOUNT, {"id": account_id})
        standing = await runtime.standing(scope)
        assert standing is not None
        runtime.projections.rebuild(["interaction_timeline"])
        assert await runtime.standing(scope) != standing
        again = await ask(ACCOUNT, {"id": account_id})
        assert again.data == first.data
        assert _kept(runtime) == (0, 2)

    _served(empty_database_url, scenario)


def test_an_answer_kept_for_one_account_outlives_writes_to_another(empty_database_url):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        one, other = _account(runtime), _account(runtime)
        first = await ask(ACCOUNT, {"id": str(one)})
        _log(runtime, other, "elsewhere")
        again = await ask(ACCOUNT, {"id": str(one)})
        assert again.data == first.data
        assert _kept(runtime) == (1, 1)

    _served(empty_database_url, scenario)


def test_nothing_is_kept_for_an_account_the_views_have_not_caught_up_with(
    empty_database_url,
):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = _account(runtime)
        runtime.app.log_interaction(
            ALICE,
            account_id,
            channel=Channel.EMAIL,
            direction=Direction.INBOUND,
            occurred_at=datetime.now(tz=UTC),
            summary="not projected yet",
        )
        lagging = await ask(ACCOUNT, {"id": str(account_id)})
        assert b"not projected yet" not in repr(lagging.data).encode()
        assert _kept(runtime) == (0, 0)
        runtime.projections.catch_up()
        caught_up = await ask(ACCOUNT, {"id": str(account_id)})
        assert "not projected yet" in repr(caught_up.data)
        assert _kept(runtime) == (0, 1)

    _served(empty_database_url, scenario)


def test_what_counts_until_now_is_never_kept(empty_database_url):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = str(_account(runtime))
        document = """query ($id: UUID!) {
          account(id: $id) { id stageHistory { value durationSeconds } }
        }"""
        first = await ask(document, {"id": account_id})
        again = await ask(document, {"id": account_id})
        assert first.data is not None
        assert again.data is not None
        seconds = [p["durationSeconds"] for p in first.data["account"]["stageHistory"]]
        later = [p["durationSeconds"] for p in again.data["account"]["stageHistory"]]
        assert later[-1] > seconds[-1]  # the open period went on counting
        assert _kept(runtime) == (0, 0)

    _served(empty_database_url, scenario)


def test_each_principal_gets_answers_of_its_own(empty_database_url):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = str(_account(runtime))
        admin = await ask(ACCOUNT, {"id": account_id})
        service = await ask(ACCOUNT, {"id": account_id}, SERVICE)
        assert admin.data is not None
        assert service.data is not None
        assert admin.data["account"]["contacts"][0]["email"] == "ann@x.example"
        assert service.data["account"]["contacts"][0]["email"] != "ann@x.example"
        assert _kept(runtime) == (0, 2)

    _served(empty_database_url, scenario)


def test_an_answer_with_errors_is_not_kept(empty_database_url):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = str(_account(runtime))
        document = """query ($id: UUID!) {
          account(id: $id) {
            interactions(first: 5, after: "not a cursor") { edges { cursor } }
          }
        }"""
        assert (await ask(document, {"id": account_id})).errors
        assert (await ask(document, {"id": account_id})).errors
        assert _kept(runtime) == (0, 2)

    _served(empty_database_url, scenario)


def test_no_answers_are_kept_when_the_setting_says_none(empty_database_url, monkeypatch):
    monkeypatch.setenv("RAPPORT_KEPT_ANSWERS", "0")
    settings = Settings.from_env()
    assert settings.kept_answers == 0
    runtime = Runtime(settings, empty_database_url)
    try:
        assert runtime.answers is None
    finally:
        runtime.executor.shutdown()
        runtime.app.close()


def test_a_negative_number_of_kept_answers_is_refused(monkeypatch):
    monkeypatch.setenv("RAPPORT_KEPT_ANSWERS", "-1")
    with pytest.raises(ValueError, match="RAPPORT_KEPT_ANSWERS"):
        Settings.from_env()


def test_operations_on_a_websocket_keep_nothing(empty_database_url):
    """A websocket's context, and what its loaders hold, last as long as it does."""

    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = str(_account(runtime))
        context = Context(runtime, ADMIN, correlation_id=uuid4())
        context.request = WebSocket(
            {"type": "websocket", "path": "/graphql", "headers": []}, _never, _never
        )
        schema = build_schema(keep_answers=True)
        for _ in range(2):
            result = await schema.execute(
                ACCOUNT, variable_values={"id": account_id}, context_value=context
            )
            assert result.errors is None
        assert _kept(runtime) == (0, 0)

    _served(empty_database_url, scenario)


async def _never(*_: Any) -> Any:
    raise AssertionError("not used")


def test_a_query_is_answered_when_where_the_views_stand_cannot_be_read(
    empty_database_url,
):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = str(_account(runtime))
        async with runtime.pool.connection() as conn:
            await conn.execute("DROP TABLE goals_tracking")
        result = await ask(ACCOUNT, {"id": account_id})
        assert result.errors is None
        assert result.data is not None
        assert result.data["account"]["id"] == account_id
        assert _kept(runtime) == (0, 0)

    _served(empty_database_url, scenario)


def test_answers_that_depend_on_every_view_go_with_any_write(empty_database_url):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = _account(runtime)
        document = "query { accounts { edges { node { id version } } } }"
        before = await ask(document, {})
        _log(runtime, account_id, "second call")
        after = await ask(document, {})
        assert before.data is not None
        assert after.data is not None
        [node] = [edge["node"] for edge in after.data["accounts"]["edges"]]
        [earlier] = [edge["node"] for edge in before.data["accounts"]["edges"]]
        assert node["version"] == earlier["version"] + 1
        assert _kept(runtime) == (0, 2)

    _served(empty_database_url, scenario)


def test_an_answer_asked_with_a_long_document_or_variables_is_not_kept(
    empty_database_url,
):
    async def scenario(runtime: Runtime, ask: Ask) -> None:
        account_id = str(_account(runtime))
        padded = {"id": account_id, "unused": "x" * 20_000}
        for _ in range(2):
            assert (await ask(ACCOUNT, padded)).errors is None
        assert _kept(runtime) == (0, 0)

    _served(empty_database_url, scenario)
