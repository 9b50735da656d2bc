"""Limits over HTTP against real servers: query depth, tokens and aliases, body
size, rate limits, trusted documents, introspection and GraphiQL switched off,
the statement timeout, and errors that say nothing of the internals.

The suite's server runs with the default limits; a second server, started
here, runs as a locked-down deployment would: trusted documents only, no
introspection, no GraphiQL, a low rate and a one-second statement timeout.
"""

from __future__ import annotations

import hashlib
import json
from uuid import uuid4

import psycopg
import pytest
from websockets.sync.client import connect

OPEN = """
mutation($name: String!) {
  openAccount(input: {name: $name, kind: ORGANIZATION}) {
    __typename ... on AccountChanged { accountId }
  }
}"""
SEARCH = """
query($search: String!) { accounts(filter: {search: $search}, first: 5) {
  edges { node { id } } } }
"""
ACCOUNT = "query Account($id: UUID!) { account(id: $id) { id name } }"
PING = "query Ping { __typename }"
INTROSPECT = "query Types { __schema { queryType { name } } }"
TRUSTED = [ACCOUNT, PING, INTROSPECT]
BURST = 5


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _search(api, name: str) -> list[object]:
    body = api.graphql(SEARCH, {"search": name})
    edges: list[object] = body["data"]["accounts"]["edges"]
    return edges


def _messages(body: dict) -> list[str]:
    return [error["message"] for error in body.get("errors", [])]


def _open_account(api, name: str) -> str:
    """Through the suite's server: visible in the views once it answers."""
    opened = api.graphql(OPEN, {"name": name})["data"]["openAccount"]
    assert opened["__typename"] == "AccountChanged", opened
    account_id: str = opened["accountId"]
    return account_id


# -- Query limits (the suite's server, default limits) ---------------------------


def _refused_open(api, selection: str, name: str) -> dict:
    query = f"""mutation {{
      openAccount(input: {{name: {json.dumps(name)}, kind: ORGANIZATION}}) {{ {selection} }}
    }}"""
    return api.graphql(query)


def test_too_deep_a_mutation_is_refused_and_writes_nothing(api):
    name = f"Deep {uuid4().hex[:8]}"
    nested = "name"
    for _ in range(6):
        nested = f"account {{ complaints {{ {nested} }} }}"
    body = _refused_open(api, f"... on AccountChanged {{ {nested} }}", name)
    assert body["data"] is None
    assert any("exceeds maximum operation depth of 10" in m for m in _messages(body))
    assert _search(api, name) == []


def test_a_query_at_the_depth_limit_runs(api):
    # complaints 0, edges 1, node 2, then account and complaints by turns, name at 10.
    nested = "account { name }"
    for _ in range(3):
        nested = f"account {{ complaints {{ {nested} }} }}"
    query = f"{{ complaints(first: 1) {{ edges {{ node {{ {nested} }} }} }} }}"
    assert "errors" not in api.graphql(query)
    one_deeper = query.replace("account { name }", "account { complaints { id } }")
    assert _messages(api.graphql(one_deeper)) == [
        "'anonymous' exceeds maximum operation depth of 10"
    ]


def test_too_many_tokens_are_refused_and_write_nothing(api):
    name = f"Tokens {uuid4().hex[:8]}"
    body = _refused_open(api, "__typename " * 2100, name)
    assert body["data"] is None
    assert any("more than 2000 tokens" in m for m in _messages(body))
    assert _search(api, name) == []


def test_too_many_aliases_are_refused_and_write_nothing(api):
    tag = uuid4().hex[:8]
    opens = "\n".join(
        f'a{i}: openAccount(input: {{name: "Alias {tag} {i}", kind: ORGANIZATION}}) '
        "{ __typename }"
        for i in range(21)
    )
    body = api.graphql(f"mutation {{ {opens} }}")
    assert body["data"] is None
    assert _messages(body) == ["21 aliases found. Allowed: 20"]
    assert _search(api, f"Alias {tag}") == []


@pytest.mark.parametrize(
    "field",
    [
        "history(first: 101) { edges { cursor } }",
        "interactions(first: 101) { edges { cursor } }",
        "surveys(first: 101) { edges { cursor } }",
        "deals(first: 101) { edges { cursor } }",
    ],
)
def test_every_list_of_an_account_caps_first_at_the_page_size(api, field):
    account_id = _open_account(api, f"Capped {uuid4().hex[:8]}")
    body = api.graphql(f'{{ account(id: "{account_id}") {{ {field} }} }}')
    assert _messages(body) == ["first must be between 1 and 100"]


@pytest.mark.parametrize(
    "query",
    [
        "{ accounts(first: 101) { edges { cursor } } }",
        "{ complaints(first: 101) { edges { cursor } } }",
    ],
)
def test_every_top_level_list_caps_first_at_the_page_size(api, query):
    assert _messages(api.graphql(query)) == ["first must be between 1 and 100"]


REGISTER = """
mutation { registerWebhook(url: "http://127.0.0.1:9/hook",
  secret: "0123456789abcdef0123456789abcdef", types: ["PersonalDataErased"]) {
  __typename ... on Webhook { id } ... on Error { message } } }
"""


def test_a_webhooks_deliveries_cap_first_at_the_page_size(api):
    registered = api.graphql(REGISTER)
    assert "id" in registered["data"]["registerWebhook"], registered
    webhook_id = registered["data"]["registerWebhook"]["id"]
    try:
        body = api.graphql(
            "query($id: UUID!) { webhook(id: $id) { deliveries(first: 101) { attempt } } }",
            {"id": webhook_id},
        )
    finally:
        api.graphql(
            "mutation($id: UUID!) { removeWebhook(id: $id) { __typename } }",
            {"id": webhook_id},
        )
    assert _messages(body) == ["first must be between 1 and 100"]


def test_introspection_and_graphiql_are_on_by_default(api):
    body = api.graphql(INTROSPECT)
    assert body["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    page = api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200


# -- Request bodies ---------------------------------------------------------------


def test_a_body_over_the_limit_is_answered_413(api):
    body = json.dumps({"query": PING, "variables": {"pad": "x" * 1_100_000}})
    response = api.client.post(
        "/graphql",
        content=body,
        headers={"Content-Type": "application/json"} | api.headers(),
    )
    assert response.status_code == 413
    assert response.json() == {
        "detail": "request body larger than 1048576 bytes (RAPPORT_MAX_BODY_BYTES)"
    }


def test_a_body_within_the_limit_is_served(api):
    body = json.dumps({"query": PING, "variables": {"pad": "x" * 1_000_000}})
    response = api.client.post(
        "/graphql",
        content=body,
        headers={"Content-Type": "application/json"} | api.headers(),
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


# -- A locked-down server ---------------------------------------------------------


@pytest.fixture(scope="module")
def strict(start_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("strict")
    manifest = folder / "trusted-documents.json"
    manifest.write_text(json.dumps({sha256(text): text for text in TRUSTED}))
    settings = {
        "RAPPORT_RUN_PROJECTIONS": "false",
        "RAPPORT_RUN_WEBHOOKS": "false",
        "RAPPORT_MIGRATE_ON_START": "false",
        "RAPPORT_TRUSTED_DOCUMENTS": "only",
        "RAPPORT_TRUSTED_DOCUMENTS_FILE": str(manifest),
        "RAPPORT_INTROSPECTION": "false",
        "RAPPORT_GRAPHIQL": "false",
        # One request back every 100 s: a burst is all a key has in this module.
        "RAPPORT_RATE_LIMIT_PER_SECOND": "0.01",
        "RAPPORT_RATE_LIMIT_BURST": str(BURST),
        "RAPPORT_STATEMENT_TIMEOUT_SECONDS": "1",
    }
    with start_server(folder / "rapport-serve.log", settings) as api:
        yield api


def _persisted(api, actor: str, query: str | None, digest: str, **extra) -> dict:
    payload = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    } | extra
    if query is not None:
        payload["query"] = query
    response = api.client.post(
        "/graphql",
        content=json.dumps(payload),
        headers={"Content-Type": "application/json"} | api.headers(actor),
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


def test_a_trusted_document_runs_by_hash_alone_or_by_text(strict, api):
    name = f"Trusted {uuid4().hex[:8]}"
    account_id = _open_account(api, name)
    variables = {"id": account_id}
    by_hash = _persisted(strict, "trusted.hash", None, sha256(ACCOUNT), variables=variables)
    assert by_hash == {"data": {"account": {"id": account_id, "name": name}}}
    by_text = strict.graphql(ACCOUNT, variables, actor="trusted.text")
    assert by_text == by_hash


def test_an_unknown_hash_is_persisted_query_not_found(strict):
    body = _persisted(strict, "trusted.unknown", None, sha256("{ webhooks { id } }"))
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"] == {"code": "PERSISTED_QUERY_NOT_FOUND"}


def test_a_document_not_in_the_list_is_refused_and_writes_nothing(strict, api):
    name = f"Untrusted {uuid4().hex[:8]}"
    body = strict.graphql(OPEN, {"name": name}, actor="trusted.refused")
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == [
        "PERSISTED_QUERY_NOT_IN_LIST"
    ]
    # Nor does sending its hash with it register it, in this mode.
    sent = _persisted(
        strict, "trusted.refused", OPEN, sha256(OPEN), variables={"name": name}
    )
    assert [e["extensions"]["code"] for e in sent["errors"]] == [
        "PERSISTED_QUERY_NOT_IN_LIST"
    ]
    again = _persisted(strict, "trusted.refused", None, sha256(OPEN))
    assert _messages(again) == ["PersistedQueryNotFound"]
    assert _search(api, name) == []


def test_a_hash_that_does_not_match_its_text_is_refused(strict):
    body = _persisted(strict, "trusted.mismatch", PING, sha256(ACCOUNT))
    assert body["data"] is None
    assert _messages(body) == ["provided sha256Hash does not match query"]


def test_a_websocket_runs_trusted_documents_only(strict):
    url = strict.base_url.replace("http", "ws") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(strict.connection_init("trusted.ws"))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": PING}}))
        answer = json.loads(ws.recv(timeout=10))
        assert answer["payload"] == {"data": {"__typename": "Query"}}
        assert json.loads(ws.recv(timeout=10))["type"] == "complete"
        untrusted = "subscription { events(after: 0) { position } }"
        ws.send(
            json.dumps({"id": "2", "type": "subscribe", "payload": {"query": untrusted}})
        )
        answer = json.loads(ws.recv(timeout=10))
        errors = (
            answer["payload"] if answer["type"] == "error" else answer["payload"]["errors"]
        )
        assert [e["extensions"]["code"] for e in errors] == ["PERSISTED_QUERY_NOT_IN_LIST"]


def test_introspection_is_refused_when_off_even_when_trusted(strict):
    body = strict.graphql(INTROSPECT, actor="trusted.introspect")
    assert body["data"] is None
    assert any("introspection has been disabled" in m for m in _messages(body))


def test_graphiql_is_not_served_when_off(strict):
    page = strict.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404


def test_a_credential_past_its_rate_is_answered_429_with_retry_after(strict):
    headers = {"Content-Type": "application/json"} | strict.headers("rated")
    ping = json.dumps({"query": PING})
    for _ in range(BURST):
        assert (
            strict.client.post("/graphql", content=ping, headers=headers).status_code == 200
        )
    refused = strict.client.post("/graphql", content=ping, headers=headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["detail"].startswith("rate limit exceeded; retry after")
    # Limits are per credential: another key is not held back.
    other = {"Content-Type": "application/json"} | strict.headers("rated.other")
    assert strict.client.post("/graphql", content=ping, headers=other).status_code == 200


def test_unauthenticated_requests_are_limited_by_address(strict):
    statuses = [
        strict.client.post("/graphql", json={"query": PING}).status_code
        for _ in range(BURST + 2)
    ]
    first_refused = statuses.index(429)
    assert set(statuses[:first_refused]) <= {401}
    assert set(statuses[first_refused:]) == {429}


def test_a_websocket_pays_for_its_connection_and_each_operation(strict):
    url = strict.base_url.replace("http", "ws") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(strict.connection_init("rated.ws"))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        for n in range(BURST - 1):
            ws.send(
                json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": PING}})
            )
            assert json.loads(ws.recv(timeout=10))["type"] == "next"
            assert json.loads(ws.recv(timeout=10))["type"] == "complete"
        ws.send(json.dumps({"id": "last", "type": "subscribe", "payload": {"query": PING}}))
        answer = json.loads(ws.recv(timeout=10))
        assert answer["type"] == "error"
        assert answer["id"] == "last"
        assert [e["extensions"]["code"] for e in answer["payload"]] == ["RATE_LIMITED"]


def test_a_statement_timeout_answers_a_masked_error(strict, api, database_url):
    account_id = _open_account(api, f"Locked {uuid4().hex[:8]}")
    with psycopg.connect(database_url) as conn:
        # Holding the view's lock makes the server's read wait past its timeout.
        conn.execute("LOCK TABLE account_view IN ACCESS EXCLUSIVE MODE")
        response = strict.post(ACCOUNT, {"id": account_id}, strict.headers("timed.out"))
        conn.rollback()
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"account": None}
    assert _messages(body) == ["Unexpected error."]
    text = response.text.lower()
    for internal in ("statement", "timeout", "cancel", "account_view", "psycopg", "select"):
        assert internal not in text
