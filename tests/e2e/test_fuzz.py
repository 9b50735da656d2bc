"""Fuzzing the real API over HTTP: arbitrary inputs to the commands and
arbitrary documents never give a 500 or a hang, never leak internals, and a
refused command writes nothing."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import CommandMeta
from domain.values import AccountKind

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples in every run: CI never flakes on a new one
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What a client can put in a JSON value, weighted towards the awkward.
texts = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=4000, max_size=4100),
    st.sampled_from(["", " ", "\x00", "\ud800", "ann@", "+1 (555)", "EUR", "1e9", "-1"]),
)
scalars = st.one_of(
    texts,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.sampled_from(
        [
            "2026-03-02T10:00:00Z",
            "2026-03-02T10:00:00",
            "9999-12-31T23:59:59Z",
            "1066-10-14T09:00:00Z",
            "00000000-0000-0000-0000-000000000000",
            "CALL",
            "VERY_SATISFIED",
            "HIGH",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)

# One command per kind of input, with each field drawn from ``values``.
COMMANDS = {
    "logInteraction": (
        "LogInteractionInput",
        ["channel", "direction", "occurredAt", "participants", "summary", "effortMinutes"],
    ),
    "addContact": ("AddContactInput", ["name", "email", "phone", "birthday", "influence"]),
    "changeTier": ("ChangeTierInput", ["tier", "reason", "expectedVersion"]),
    "fileComplaint": (
        "FileComplaintInput",
        ["category", "severity", "description", "channel", "filedAt"],
    ),
    "recordSurvey": (
        "RecordSurveyInput",
        ["satisfaction", "intentToBuyAgain", "likelihoodToRecommend", "comment"],
    ),
    "closeDeal": ("CloseDealInput", ["value", "product", "closedAt"]),
}
INTERNALS = ("Traceback", "psycopg", "SELECT ", "INSERT ", 'File "', "rapport_events")


def _mutation(name: str, input_type: str) -> str:
    return (
        f"mutation($input: {input_type}!) {{ {name}(input: $input) {{"
        " __typename ... on AccountChange { version } ... on Error { code } } }"
    )


def _check_answer(response: Any) -> dict[str, Any] | None:
    assert response.status_code in {200, 400, 413}, response.text
    for marker in INTERNALS:
        assert marker not in response.text, response.text
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


@FUZZ
@given(
    command=st.sampled_from(sorted(COMMANDS)),
    fields=st.dictionaries(
        st.sampled_from(sorted({f for _, fs in COMMANDS.values() for f in fs})), values
    ),
)
def test_arbitrary_command_inputs_are_answered_and_refusals_write_nothing(
    api, app, command, fields
):
    account_id = app.open_account(
        CommandMeta("fuzz"), name="Fuzzed", kind=AccountKind.GROUP
    ).account_id
    input_type, allowed = COMMANDS[command]
    variables = {
        "input": {k: v for k, v in fields.items() if k in allowed}
        | {"accountId": str(account_id)}
    }
    response = api.post(
        _mutation(command, input_type), variables, api.headers("fuzzer", "admin")
    )
    body = _check_answer(response)
    answer = None if body is None or not body.get("data") else body["data"][command]
    if answer is None or answer["__typename"] not in {
        "AccountChanged",
        "ContactAdded",
        "InteractionLogged",
        "ComplaintFiled",
        "SurveyRecorded",
        "DealClosed",
    }:
        # Refused, one way or another: the account is as it was opened.
        assert app.get_account(UUID(str(account_id))).version == 1


documents = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.sampled_from(
            [
                "{",
                "}",
                "(",
                ")",
                "query",
                "mutation",
                "subscription",
                "account",
                "accounts",
                "id:",
                '"x"',
                "$v",
                "...",
                "on",
                "Account",
                "__schema",
                "__typename",
                "first: -1",
                "first: 100000",
                "fragment F on Account { id }",
                "@include(if: true)",
                "history",
                "complaints",
            ]
        ),
        max_size=40,
    ).map(" ".join),
)


@FUZZ
@given(
    document=documents, variables=st.dictionaries(st.text(max_size=5), values, max_size=3)
)
def test_arbitrary_documents_are_answered_without_a_500(api, document, variables):
    response = api.post(document, variables, api.headers("fuzzer", "admin"))
    _check_answer(response)


def test_a_body_that_is_not_json_is_refused_cleanly(api):
    for body in (b"", b"{", b"\xff\xfe", json.dumps([1, 2]).encode()):
        response = api.client.post(
            "/graphql",
            content=body,
            headers={"Content-Type": "application/json"} | api.headers("fuzzer", "admin"),
        )
        assert response.status_code == 400, (body, response.status_code, response.text)
