"""Auditors over GraphQL: history pages, time travel, changes."""

from __future__ import annotations

import json
from uuid import uuid4

HISTORY = """
query($id: UUID!, $after: String, $types: [String!]) {
  account(id: $id) {
    history(first: 2, after: $after, types: $types) {
      edges { node { version type actor payload } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""


def _story(api) -> str:
    account_id = str(uuid4())
    steps = [
        f'openAccount(input: {{id: "{account_id}", name: "Audited", kind: GROUP}})',
        f'changeTier(input: {{accountId: "{account_id}", tier: PARTNER, reason: "plans"}})',
        f'changeStage(input: {{accountId: "{account_id}", stage: AWARENESS}})',
    ]
    for step in steps:
        body = api.graphql(f"mutation {{ {step} {{ __typename }} }}", actor="auditee")
        assert body["data"], body
    return account_id


def test_history_pages_through_every_event(api):
    account_id = _story(api)
    first = api.graphql(HISTORY, {"id": account_id})["data"]["account"]["history"]
    rest = api.graphql(HISTORY, {"id": account_id, "after": first["pageInfo"]["endCursor"]})
    events = first["edges"] + rest["data"]["account"]["history"]["edges"]
    assert [(e["node"]["version"], e["node"]["type"]) for e in events] == [
        (1, "AccountOpened"),
        (2, "TierChanged"),
        (3, "StageChanged"),
    ]
    assert events[1]["node"]["payload"] == {
        "tier": "partner",
        "previous": "transactional",
        "reason": "plans",
    }
    assert {e["node"]["actor"] for e in events} == {"auditee"}
    typed = api.graphql(HISTORY, {"id": account_id, "types": ["TierChanged"]})
    assert [e["node"]["type"] for e in typed["data"]["account"]["history"]["edges"]] == [
        "TierChanged"
    ]
    unknown = api.graphql(HISTORY, {"id": account_id, "types": ["Bogus"]})
    assert unknown["errors"][0]["message"] == "unknown event types: Bogus"


def test_account_at_and_account_changes_replay_the_events(api):
    account_id = _story(api)
    body = api.graphql(
        """query($id: UUID!) {
          v1: accountAt(id: $id, version: 1) { version tier stage }
          v2: accountAt(id: $id, version: 2) { version tier stage }
          before: accountAt(id: $id, at: "2000-01-01T00:00:00Z") { version }
          changes: accountChanges(id: $id, fromVersion: 1, toVersion: 3) {
            version field before after actor
          }
        }""",
        {"id": account_id},
    )
    assert "errors" not in body, body
    data = body["data"]
    assert data["v1"] == {"version": 1, "tier": "TRANSACTIONAL", "stage": "EXPLORATION"}
    assert data["v2"] == {"version": 2, "tier": "PARTNER", "stage": "EXPLORATION"}
    assert data["before"] is None
    assert data["changes"] == [
        {
            "version": 2,
            "field": "tier",
            "before": "transactional",
            "after": "partner",
            "actor": "auditee",
        },
        {
            "version": 3,
            "field": "stage",
            "before": "exploration",
            "after": "awareness",
            "actor": "auditee",
        },
    ]
    refused = api.graphql(
        'query($id: UUID!) { accountAt(id: $id, version: 1, at: "2020-01-01T00:00:00Z")'
        " { version } }",
        {"id": account_id},
    )
    assert refused["errors"][0]["message"] == "give either a version or a moment"


def test_the_audit_report_recomputes_the_chain(api):
    _story(api)
    report = api.graphql(
        "{ auditReport { intact eventsChecked headPosition headHash"
        " firstBreak { position } } }"
    )["data"]["auditReport"]
    assert report["intact"] is True
    assert report["firstBreak"] is None
    assert report["eventsChecked"] >= 3
    assert len(report["headHash"]) == 64


def test_the_export_endpoint_streams_an_accounts_events_as_ndjson(api):
    account_id = _story(api)
    response = api.client.get(
        "/export", params={"account": account_id}, headers=api.headers()
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    header, *records, key, end = [json.loads(line) for line in response.text.splitlines()]
    assert (header["scope"], end["events"], end["keys"]) == ("account", 3, 1)
    assert key["subject_key"]["subject_id"] == account_id
    assert [(r["version"], r["type"], r["actor"]) for r in records] == [
        (1, "AccountOpened", "auditee"),
        (2, "TierChanged", "auditee"),
        (3, "StageChanged", "auditee"),
    ]
    keyless = api.client.get(
        "/export", params={"account": account_id, "keys": "false"}, headers=api.headers()
    )
    assert json.loads(keyless.text.splitlines()[-1])["keys"] == 0
    refused = api.client.get("/export", params={"account": "nope"}, headers=api.headers())
    assert refused.status_code == 422
