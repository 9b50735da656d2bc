"""The GraphQL surface: typed errors, keyset pages, versions, read-your-writes."""

from __future__ import annotations

import base64
from uuid import uuid4

import pytest

OPEN = """
mutation($input: OpenAccountInput!) {
  openAccount(input: $input) {
    __typename
    ... on AccountChanged { accountId version position projected account { name version } }
    ... on Error { code message }
  }
}"""

ADD_CONTACT = """
mutation($input: AddContactInput!) {
  addContact(input: $input) {
    __typename
    ... on ContactAdded { contactId version }
    ... on ValidationError { code field message }
    ... on NotFoundError { code message }
  }
}"""

CHANGE_TIER = """
mutation($input: ChangeTierInput!) {
  changeTier(input: $input) {
    __typename
    ... on AccountChanged { version account { tier version } }
    ... on ConcurrencyConflict { expectedVersion actualVersion }
    ... on Error { code message }
  }
}"""

LIST = """
query($filter: AccountFilter, $first: Int!, $after: String) {
  accounts(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


def _open(api, name: str) -> dict:
    data = api.graphql(OPEN, {"input": {"name": name, "kind": "ORGANIZATION"}})["data"]
    return data["openAccount"]


def test_a_mutation_answers_with_its_own_write_already_visible(api):
    opened = _open(api, "Visible Ltd")
    assert opened["projected"] is True
    assert opened["account"] == {"name": "Visible Ltd", "version": 1}
    changed = api.graphql(
        CHANGE_TIER,
        {"input": {"accountId": opened["accountId"], "tier": "PARTNER", "reason": "plans"}},
    )["data"]["changeTier"]
    assert changed["account"] == {"tier": "PARTNER", "version": 2}


def test_invalid_input_is_a_validation_error_and_writes_nothing(api):
    opened = _open(api, "Careful Co")
    body = api.graphql(
        ADD_CONTACT,
        {"input": {"accountId": opened["accountId"], "name": "Ann", "email": "nope"}},
    )
    assert body["data"]["addContact"]["__typename"] == "ValidationError"
    assert body["data"]["addContact"]["field"] == "email"
    account = api.graphql(
        "query($id: UUID!) { account(id: $id) { version contacts { name } } }",
        {"id": opened["accountId"]},
    )["data"]["account"]
    assert account == {"version": 1, "contacts": []}


def test_an_unknown_account_is_not_found(api):
    body = api.graphql(ADD_CONTACT, {"input": {"accountId": str(uuid4()), "name": "Ann"}})
    assert body["data"]["addContact"]["__typename"] == "NotFoundError"
    assert body["data"]["addContact"]["code"] == "ACCOUNT_NOT_FOUND"


def test_a_stale_expected_version_is_a_concurrency_conflict(api):
    opened = _open(api, "Versioned SA")
    first = {"accountId": opened["accountId"], "tier": "PARTNER", "reason": "a"}
    assert (
        api.graphql(CHANGE_TIER, {"input": first | {"expectedVersion": 1}})["data"][
            "changeTier"
        ]["version"]
        == 2
    )
    second = first | {"tier": "STRATEGIC_ALLIANCE", "expectedVersion": 1}
    conflict = api.graphql(CHANGE_TIER, {"input": second})["data"]["changeTier"]
    assert conflict == {
        "__typename": "ConcurrencyConflict",
        "expectedVersion": 1,
        "actualVersion": 2,
        "code": "CONCURRENCY_CONFLICT",
        "message": "account is at version 2, the command expected version 1",
    }


def test_malformed_ids_and_enums_are_graphql_errors_not_server_errors(api):
    body = api.graphql('{ account(id: "not-a-uuid") { name } }')
    assert "not-a-uuid" in body["errors"][0]["message"]
    body = api.graphql(
        CHANGE_TIER, {"input": {"accountId": str(uuid4()), "tier": "GOLD", "reason": "x"}}
    )
    assert "GOLD" in body["errors"][0]["message"]
    # A variable missing a required field says which, rather than a masked error.
    body = api.graphql(CHANGE_TIER, {"input": {"accountId": str(uuid4()), "reason": "x"}})
    assert "tier" in body["errors"][0]["message"]


def test_accounts_page_through_keyset_cursors_without_gaps_or_repeats(api):
    tag = uuid4().hex[:8]
    names = sorted(f"Paged {tag} {i}" for i in range(5))
    for name in reversed(names):
        _open(api, name)
    seen, after = [], None
    while True:
        page = api.graphql(LIST, {"filter": {"search": tag}, "first": 2, "after": after})[
            "data"
        ]["accounts"]
        seen += [edge["node"]["name"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == names


def test_search_treats_like_wildcards_literally(api):
    tag = uuid4().hex[:8]
    _open(api, f"Percent {tag} 100%")
    _open(api, f"Percent {tag} 1000")
    page = api.graphql(LIST, {"filter": {"search": f"{tag} 100%"}, "first": 10})
    assert [e["node"]["name"] for e in page["data"]["accounts"]["edges"]] == [
        f"Percent {tag} 100%"
    ]


@pytest.mark.parametrize("first", [0, 101])
def test_page_size_is_capped(api, first):
    body = api.graphql(LIST, {"first": first})
    assert "first must be between 1 and 100" in body["errors"][0]["message"]


def test_a_foreign_cursor_is_refused(api):
    body = api.graphql(LIST, {"first": 2, "after": "bm90IGEgY3Vyc29y"})
    assert "not a cursor" in body["errors"][0]["message"]


def test_interactions_page_newest_first(api):
    opened = _open(api, "Chatty GmbH")
    log = """
    mutation($input: LogInteractionInput!) {
      logInteraction(input: $input) { __typename }
    }"""
    for day in range(1, 6):
        body = api.graphql(
            log,
            {
                "input": {
                    "accountId": opened["accountId"],
                    "channel": "EMAIL",
                    "direction": "INBOUND",
                    "occurredAt": f"2026-03-0{day}T09:00:00Z",
                }
            },
        )
        assert body["data"]["logInteraction"]["__typename"] == "InteractionLogged"
    query = """
    query($id: UUID!, $after: String) {
      account(id: $id) {
        interactions(first: 3, after: $after) {
          edges { node { occurredAt } }
          pageInfo { hasNextPage endCursor }
        }
      }
    }"""
    first = api.graphql(query, {"id": opened["accountId"]})["data"]["account"][
        "interactions"
    ]
    rest = api.graphql(
        query, {"id": opened["accountId"], "after": first["pageInfo"]["endCursor"]}
    )["data"]["account"]["interactions"]
    days = [e["node"]["occurredAt"][:10] for e in first["edges"] + rest["edges"]]
    assert days == [f"2026-03-0{d}" for d in range(5, 0, -1)]
    assert first["pageInfo"]["hasNextPage"] is True
    assert rest["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize(
    ("name", "field"),
    [("Nul\u0000Byte", "name"), ("Lone \ud800 surrogate", "name")],
)
def test_text_that_is_not_text_is_a_validation_error(api, name, field):
    tag = uuid4().hex
    body = api.graphql(OPEN, {"input": {"name": name + tag, "kind": "GROUP"}})
    assert body["data"]["openAccount"]["__typename"] == "ValidationError"
    listed = api.graphql(LIST, {"filter": {"search": tag}, "first": 5})
    assert listed["data"]["accounts"]["edges"] == []


def test_dates_before_1900_are_refused_and_nothing_is_written(api):
    opened = _open(api, "Ancient Ltd")
    body = api.graphql(
        """mutation($input: LogInteractionInput!) {
          logInteraction(input: $input) {
            __typename ... on ValidationError { field }
          }
        }""",
        {
            "input": {
                "accountId": opened["accountId"],
                "channel": "CALL",
                "direction": "INBOUND",
                "occurredAt": "0001-01-01T00:00:00+05:00",
            }
        },
    )
    assert body["data"]["logInteraction"] == {
        "__typename": "ValidationError",
        "field": "occurredAt",
    }
    account = api.graphql(
        "query($id: UUID!) { account(id: $id) { version } }", {"id": opened["accountId"]}
    )
    assert account["data"]["account"] == {"version": 1}


@pytest.mark.parametrize("key", ["[1, 2]", '["a"]', '["a", "not-a-uuid"]', '{"a": 1}'])
def test_cursors_of_the_wrong_shape_are_refused_cleanly(api, key):
    cursor = base64.urlsafe_b64encode(key.encode()).decode()
    body = api.graphql(LIST, {"first": 2, "after": cursor})
    assert body["errors"][0]["message"] == f"not a cursor of this list: {cursor!r}"


def test_a_page_of_accounts_shows_each_accounts_own_newest_interactions(api):
    tag = uuid4().hex[:8]
    log = """
    mutation($input: LogInteractionInput!) { logInteraction(input: $input) { __typename } }
    """
    for i in range(3):
        account_id = _open(api, f"Timeline {tag} {i}")["accountId"]
        for day in (1, 2, 3):
            api.graphql(
                log,
                {
                    "input": {
                        "accountId": account_id,
                        "channel": "EMAIL",
                        "direction": "OUTBOUND",
                        "occurredAt": f"2026-04-0{day}T08:00:00Z",
                        "summary": f"{i}/{day}",
                    }
                },
            )
    body = api.graphql(
        """query($filter: AccountFilter) {
          accounts(filter: $filter, first: 10) {
            edges { node { name interactions(first: 2) {
              edges { node { summary } } pageInfo { hasNextPage }
            } } }
          }
        }""",
        {"filter": {"search": tag}},
    )
    pages = {
        edge["node"]["name"]: (
            [e["node"]["summary"] for e in edge["node"]["interactions"]["edges"]],
            edge["node"]["interactions"]["pageInfo"]["hasNextPage"],
        )
        for edge in body["data"]["accounts"]["edges"]
    }
    assert pages == {f"Timeline {tag} {i}": ([f"{i}/3", f"{i}/2"], True) for i in range(3)}
