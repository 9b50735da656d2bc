"""Mutations with a client commandId: a retry writes nothing and answers as the
first attempt did, also when retries race."""

from __future__ import annotations

import threading
from uuid import uuid4

OPEN = """
mutation($name: String!, $commandId: UUID) {
  openAccount(input: {name: $name, kind: GROUP, commandId: $commandId}) {
    __typename ... on AccountChange { accountId version position }
  }
}"""
LOG = """
mutation($id: UUID!, $commandId: UUID, $summary: String!) {
  logInteraction(input: {accountId: $id, channel: CALL, direction: OUTBOUND,
      occurredAt: "2026-03-02T10:00:00Z", summary: $summary, commandId: $commandId}) {
    __typename
    ... on InteractionLogged { interactionId version position }
    ... on ValidationError { field code }
  }
}"""
ADD_CONTACT = """
mutation($id: UUID!, $commandId: UUID) {
  addContact(input: {accountId: $id, name: "Kim Dale", commandId: $commandId}) {
    __typename ... on ContactAdded { contactId version position }
  }
}"""
HISTORY = """
query($id: UUID!) {
  account(id: $id) { version history(first: 50) { edges { node { type commandId } } } }
}"""


def _open(api) -> str:
    answer = api.graphql(OPEN, {"name": "Retried", "commandId": str(uuid4())})
    return answer["data"]["openAccount"]["accountId"]


def _history(api, account_id: str) -> tuple[int, list[dict]]:
    account = api.graphql(HISTORY, {"id": account_id})["data"]["account"]
    return account["version"], [e["node"] for e in account["history"]["edges"]]


def test_a_retried_command_writes_once_and_answers_as_the_first_time(api):
    account_id = _open(api)
    command_id = str(uuid4())
    variables = {"id": account_id, "commandId": command_id, "summary": "Once"}
    first = api.graphql(LOG, variables)["data"]["logInteraction"]
    again = api.graphql(LOG, variables)["data"]["logInteraction"]
    assert first["__typename"] == "InteractionLogged"
    assert again == first
    version, events = _history(api, account_id)
    assert version == first["version"] == 2
    assert [e["commandId"] for e in events].count(command_id) == 1
    # Without a commandId every request is a command of its own.
    plain = {"id": account_id, "summary": "Twice"}
    assert api.graphql(LOG, plain) != api.graphql(LOG, plain)
    assert _history(api, account_id)[0] == 4


def test_racing_retries_write_once(api):
    account_id = _open(api)
    command_id = str(uuid4())
    answers: list[dict] = []

    def retry() -> None:
        body = api.graphql(ADD_CONTACT, {"id": account_id, "commandId": command_id})
        answers.append(body["data"]["addContact"])

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6
    assert all(a == answers[0] for a in answers), answers
    assert answers[0]["__typename"] == "ContactAdded"
    version, events = _history(api, account_id)
    assert version == 2
    assert [e["type"] for e in events] == ["AccountOpened", "ContactAdded"]


def test_an_account_opened_twice_with_one_command_id_is_one_account(api):
    command_id = str(uuid4())
    first = api.graphql(OPEN, {"name": "Opened once", "commandId": command_id})
    again = api.graphql(OPEN, {"name": "Opened once", "commandId": command_id})
    assert again == first
    assert _history(api, first["data"]["openAccount"]["accountId"])[0] == 1


def test_a_command_id_reused_on_another_account_is_refused_and_writes_nothing(api):
    first, second = _open(api), _open(api)
    command_id = str(uuid4())
    api.graphql(LOG, {"id": first, "commandId": command_id, "summary": "Here"})
    refused = api.graphql(LOG, {"id": second, "commandId": command_id, "summary": "There"})
    assert refused["data"]["logInteraction"] == {
        "__typename": "ValidationError",
        "field": "commandId",
        "code": "INVALID_VALUE",
    }
    assert _history(api, second)[0] == 1


def test_a_command_id_written_in_the_document_counts_as_well(api):
    account_id = _open(api)
    command_id = uuid4()
    document = f"""mutation {{
      changeTier(input: {{accountId: "{account_id}", tier: PARTNER, reason: "grew",
                         commandId: "{command_id}"}}) {{
        __typename ... on AccountChanged {{ version position }}
      }}
    }}"""
    first = api.graphql(document)["data"]["changeTier"]
    again = api.graphql(document)["data"]["changeTier"]
    assert first["__typename"] == "AccountChanged"
    assert again == first
    assert _history(api, account_id)[0] == 2
