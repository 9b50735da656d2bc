"""Who may do what, over HTTP against a real server: credentials, each role
against each class of operation, reach by manager, personal data by role."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import UUID, uuid4

import jwt
import jwt.algorithms
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.auth import Role
from api.runtime import api_keys_of
from domain.application import CommandMeta
from domain.values import AccountKind
from eventstore.recorder import recorder_of

# RAPPORT_JWT_SECRET of the e2e server (tests/e2e/conftest.py).
JWT_SECRET = "e2e-jwt-secret-for-tests-only-0123456789"  # noqa: S105 - the test server's

ACCOUNT = """
query($id: UUID!) { account(id: $id) { id version manager contacts { name email } } }
"""
ACCOUNTS = """
query($search: String!) { accounts(filter: {search: $search}, first: 50) {
  edges { node { id } } } }
"""
CHANGE_TIER = """
mutation($id: UUID!, $tier: Tier!) {
  changeTier(input: {accountId: $id, tier: $tier, reason: "matrix"}) {
    __typename ... on AccountChanged { version } ... on Error { code }
  }
}"""
ASSIGN = """
mutation($id: UUID!, $manager: String!) {
  assignAccountManager(input: {accountId: $id, manager: $manager}) {
    __typename ... on Error { code }
  }
}"""
ERASE = """
mutation($id: UUID!) {
  eraseSubject(input: {accountId: $id, reason: "matrix"}) { __typename }
}"""
ACCOUNT_AT = """
query($id: UUID!) { accountAt(id: $id, version: 1) { version } }
"""
WEBHOOKS = "{ webhooks { id } }"
HISTORY = """
query($id: UUID!) {
  account(id: $id) { history(first: 50) { edges { node { actor type } } } }
}
"""


@pytest.fixture(scope="module")
def accounts(store):
    """Two accounts, one per agent, each with a contact; names unique to this run,
    in the views before any test reads them."""
    app, projections = store
    tag = uuid4().hex[:8]
    made = {}
    for agent in ("agent.a", "agent.b"):
        meta = CommandMeta("setup")
        opened = app.open_account(
            meta, name=f"Reach {tag} {agent}", kind=AccountKind.ORGANIZATION, manager=agent
        )
        app.add_contact(
            meta, opened.account_id, name="Eve Park", role="Buyer", email="eve@x.example"
        )
        made[agent] = str(opened.account_id)
    made["tag"] = tag
    projections.catch_up()
    return made


# Who asks: (actor, role, team).
WHO = {
    "agent": ("agent.a", Role.AGENT, ()),
    "manager": ("lead", Role.MANAGER, ("agent.a", "agent.a2")),
    "auditor": ("audrey", Role.AUDITOR, ()),
    "service": ("billing", Role.SERVICE, ()),
    "admin": ("root", Role.ADMIN, ()),
}


def ask(api, who: str, query: str, variables: dict) -> dict:
    actor, role, team = WHO[who]
    return api.graphql(query, variables, actor=actor, role=role, team=team)


def _outcome(body: dict, field: str) -> str:
    """allowed, forbidden (an error naming FORBIDDEN) or hidden (reads as absent)."""
    errors = body.get("errors") or []
    if any(e.get("extensions", {}).get("code") == "FORBIDDEN" for e in errors):
        return "forbidden"
    assert not errors, errors
    data = body["data"][field]
    if data is None or data.get("code") == "ACCOUNT_NOT_FOUND":
        return "hidden"
    return "allowed"


# Expected outcome per operation, in WHO's order: agent, manager, auditor, service, admin.
MATRIX = {
    "read own account": ("allowed",) * 5,
    "read another's account": ("hidden", "hidden", "allowed", "allowed", "allowed"),
    "change own account": ("allowed", "allowed", "forbidden", "forbidden", "allowed"),
    "change another's account": ("hidden", "hidden", "forbidden", "forbidden", "allowed"),
    "reassign within reach": ("forbidden", "allowed", "forbidden", "forbidden", "allowed"),
    "erase": ("forbidden", "forbidden", "forbidden", "forbidden", "allowed"),
    "time travel": ("forbidden", "forbidden", "allowed", "forbidden", "allowed"),
    "webhooks": ("forbidden", "forbidden", "forbidden", "allowed", "allowed"),
    "export": ("forbidden", "forbidden", "allowed", "forbidden", "allowed"),
}


def _run(api, app, accounts, who: str, operation: str) -> str:  # noqa: PLR0911 - one per row
    own, other = accounts["agent.a"], accounts["agent.b"]
    if operation == "read own account":
        return _outcome(ask(api, who, ACCOUNT, {"id": own}), "account")
    if operation == "read another's account":
        return _outcome(ask(api, who, ACCOUNT, {"id": other}), "account")
    if operation in {"change own account", "change another's account"}:
        target = own if operation == "change own account" else other
        state = app.get_account(UUID(target))
        tier = "PARTNER" if state.tier.value != "partner" else "TRANSACTIONAL"
        before = state.version
        outcome = _outcome(
            ask(api, who, CHANGE_TIER, {"id": target, "tier": tier}), "changeTier"
        )
        if outcome != "allowed":
            assert app.get_account(UUID(target)).version == before  # nothing written
        return outcome
    if operation == "reassign within reach":
        # To someone in the manager's team and back: the account stays within reach.
        body = ask(api, who, ASSIGN, {"id": own, "manager": "agent.a2"})
        outcome = _outcome(body, "assignAccountManager")
        if outcome == "allowed":
            app.assign_manager(CommandMeta("setup"), UUID(own), "agent.a")
        return outcome
    if operation == "erase":
        # Checked on a throwaway account: an erasure cannot be undone.
        throwaway = app.open_account(
            CommandMeta("setup"), name="Erasable", kind=AccountKind.GROUP, manager="agent.a"
        ).account_id
        return _outcome(ask(api, who, ERASE, {"id": str(throwaway)}), "eraseSubject")
    if operation == "time travel":
        return _outcome(ask(api, who, ACCOUNT_AT, {"id": own}), "accountAt")
    if operation == "export":
        actor, role, team = WHO[who]
        response = api.client.get(
            "/export",
            params={"account": own},
            headers={"Authorization": f"Bearer {api.key(actor, role, team)}"},
        )
        assert response.status_code in {200, 403}, response.text
        return "allowed" if response.status_code == 200 else "forbidden"
    body = ask(api, who, WEBHOOKS, {})
    return "forbidden" if body.get("errors") else "allowed"


@pytest.mark.parametrize("who", list(WHO))
@pytest.mark.parametrize("operation", list(MATRIX))
def test_each_role_against_each_operation(api, app, accounts, who, operation):
    expected = MATRIX[operation][list(WHO).index(who)]
    assert _run(api, app, accounts, who, operation) == expected


def test_lists_hold_only_the_accounts_within_reach(api, accounts):
    search = {"search": f"Reach {accounts['tag']}"}
    seen = {
        who: {
            e["node"]["id"]
            for e in ask(api, who, ACCOUNTS, search)["data"]["accounts"]["edges"]
        }
        for who in WHO
    }
    both = {accounts["agent.a"], accounts["agent.b"]}
    assert seen["agent"] == seen["manager"] == {accounts["agent.a"]}
    assert seen["auditor"] == seen["service"] == seen["admin"] == both


def test_personal_fields_are_withheld_from_services(api, accounts):
    variables = {"id": accounts["agent.a"]}
    contacts = {
        who: ask(api, who, ACCOUNT, variables)["data"]["account"]["contacts"]
        for who in ("service", "auditor", "agent")
    }
    assert contacts["service"] == [{"name": "[withheld]", "email": "[withheld]"}]
    assert (
        contacts["auditor"]
        == contacts["agent"]
        == [{"name": "Eve Park", "email": "eve@x.example"}]
    )
    history = ask(api, "service", HISTORY, variables)["data"]["account"]["history"]
    added = [e for e in history["edges"] if e["node"]["type"] == "ContactAdded"]
    assert added  # the event is there, its personal values are not


def test_the_actor_is_the_credential_s_never_a_header(api, accounts):
    own = accounts["agent.a"]
    response = api.post(
        CHANGE_TIER,
        {"id": own, "tier": "PREFERRED_SUPPLIER"},
        headers=api.headers("agent.a", Role.AGENT) | {"X-Actor": "mallory"},
    )
    assert response.json()["data"]["changeTier"]["__typename"] == "AccountChanged"
    history = ask(api, "admin", HISTORY, {"id": own})["data"]["account"]["history"]
    actors = {e["node"]["actor"] for e in history["edges"]}
    assert "agent.a" in actors
    assert "mallory" not in actors


def test_without_valid_credentials_a_request_gets_401(api):
    query = "{ complaintTargets { severity } }"
    missing = api.post(query)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "credentials required" in missing.json()["detail"]
    forged = api.post(query, headers={"Authorization": "Bearer rk_" + "0" * 32 + "_nope"})
    assert forged.status_code == 401
    assert api.client.get("/export").status_code == 401
    # GraphiQL's page itself needs none (it sends the key with each query).
    page = api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200


def test_a_revoked_key_stops_working(api, app):
    with recorder_of(app).datastore.transaction(commit=True) as cur:
        issued = api_keys_of(app).create(cur, name="t", role=Role.ADMIN, actor="temp")
    headers = {"Authorization": f"Bearer {issued.key}"}
    query = "{ complaintTargets { severity } }"
    assert api.post(query, headers=headers).status_code == 200
    with recorder_of(app).datastore.transaction(commit=True) as cur:
        assert api_keys_of(app).revoke(cur, issued.id)
    deadline = time.monotonic() + 30
    while api.post(query, headers=headers).status_code != 401:
        assert time.monotonic() < deadline, "a revoked key kept working"
        time.sleep(0.5)


def _token(**claims) -> str:
    payload = {"sub": "jo.smith", "role": "auditor", "exp": int(time.time()) + 300} | claims
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, JWT_SECRET)


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (_token(), 200),
        (_token(exp=int(time.time()) - 3600), 401),
        (_token(role=None), 401),
        (_token(role="superuser"), 401),
        (
            jwt.encode(
                {"sub": "x", "role": "admin", "exp": 2**40},
                "another-secret-0123456789abcdef-0123456789",
            ),
            401,
        ),
    ],
)
def test_bearer_jwts_are_checked(api, token, status):
    response = api.post(
        ACCOUNT_AT, {"id": str(uuid4())}, {"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == status, response.text


def test_a_websocket_needs_credentials_in_its_connection_init(api):
    url = api.base_url.replace("http://", "ws://") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(api.connection_init("agent.a", Role.AGENT))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        subscribe = {"query": "subscription { events(after: 0) { position } }"}
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        answer = json.loads(ws.recv(timeout=10))
    assert answer["type"] == "next"
    assert answer["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_jwts_signed_by_a_key_of_the_jwks_are_accepted(start_server, tmp_path):
    """RAPPORT_JWKS_URL: the key set served over HTTP, as identity providers do."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [public | {"kid": "k1", "use": "sig", "alg": "RS256"}]})

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(jwks.encode())

        def log_message(self, *args: object) -> None:
            pass

    keys = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=keys.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{keys.server_address[1]}/jwks.json"
    settings = {"RAPPORT_JWKS_URL": url, "RAPPORT_JWT_AUDIENCE": "rapport"}
    try:
        with start_server(tmp_path / "jwks.log", settings) as server:

            def answer(token: str) -> int:
                headers = {"Authorization": f"Bearer {token}"}
                return server.post(ACCOUNT_AT, {"id": str(uuid4())}, headers).status_code

            claims = {"sub": "jo.smith", "role": "auditor", "aud": "rapport"}
            claims["exp"] = int(time.time()) + 300
            signed = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
            assert answer(signed) == 200
            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "k1"})
            assert answer(forged) == 401
            elsewhere = jwt.encode(
                claims | {"aud": "another"}, key, algorithm="RS256", headers={"kid": "k1"}
            )
            assert answer(elsewhere) == 401
            # An HS256 token is not accepted where keys come from the JWKS.
            assert answer(_token()) == 401
    finally:
        keys.shutdown()
