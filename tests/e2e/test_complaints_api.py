"""Complaints through GraphQL: the lifecycle, typed refusals, breaches as time passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

INPUTS = {
    "fileComplaint": "FileComplaintInput",
    "acknowledgeComplaint": "AcknowledgeComplaintInput",
    "escalateComplaint": "EscalateComplaintInput",
    "resolveComplaint": "ResolveComplaintInput",
    "reopenComplaint": "ReopenComplaintInput",
    "closeComplaint": "CloseComplaintInput",
    "addContact": "AddContactInput",
    "removeContact": "RemoveContactInput",
    "assignAccountManager": "AssignAccountManagerInput",
}

COMPLAINT_FIELDS = """
  id status severity category description channel manager escalationLevel escalatedTo
  filedAt acknowledgedAt resolvedAt closedAt resolution rootCause reopenCount
  timeToAcknowledgeSeconds timeToResolveSeconds acknowledgeDueAt breached
  contact { name }
"""

ACCOUNT = f"""
query($id: UUID!) {{
  account(id: $id) {{
    version openComplaints
    complaints {{ {COMPLAINT_FIELDS} }}
    history(first: 100) {{ edges {{ node {{ type }} }} }}
  }}
}}"""

LIST = """
query($filter: ComplaintFilter, $first: Int!, $after: String) {
  complaints(filter: $filter, first: $first, after: $after) {
    edges { node { id severity acknowledgeBreached resolveBreached breached } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _mutate(api, field: str, payload: dict) -> dict:
    created = "... on ComplaintFiled { complaintId }" if field == "fileComplaint" else ""
    document = f"""
    mutation($input: {INPUTS[field]}!) {{
      {field}(input: $input) {{
        __typename
        ... on AccountChange {{
          version projected
          account {{ version openComplaints complaints {{ {COMPLAINT_FIELDS} }} }}
        }}
        {created}
        ... on ValidationError {{ field }}
        ... on ConcurrencyConflict {{ expectedVersion actualVersion }}
        ... on Error {{ code message }}
      }}
    }}"""
    body = api.graphql(document, {"input": payload})
    assert "errors" not in body, body
    return body["data"][field]


def _open(api, manager: str | None = None) -> str:
    account_id = str(uuid4())
    body = api.graphql(
        'mutation($id: UUID!) { openAccount(input: {id: $id, name: "Complainer AB", '
        "kind: ORGANIZATION}) { __typename } }",
        {"id": account_id},
    )
    assert body["data"]["openAccount"]["__typename"] == "AccountChanged"
    if manager is not None:
        _mutate(api, "assignAccountManager", {"accountId": account_id, "manager": manager})
    return account_id


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _file(api, account_id: str, **fields) -> dict:
    return _mutate(
        api,
        "fileComplaint",
        {
            "accountId": account_id,
            "category": "delivery",
            "severity": "HIGH",
            "description": "Pallets a week late",
            "channel": "CALL",
        }
        | fields,
    )


def test_a_complaint_goes_through_its_lifecycle_with_each_answer_showing_it(api):
    account_id = _open(api, manager="bob.martin")
    ann = str(uuid4())
    _mutate(
        api, "addContact", {"accountId": account_id, "contactId": ann, "name": "Ann Lee"}
    )
    filed_at = datetime.now(tz=UTC) - timedelta(hours=3)
    filed = _file(api, account_id, contactId=ann, filedAt=_iso(filed_at))
    assert (filed["__typename"], filed["projected"], filed["version"]) == (
        "ComplaintFiled",
        True,
        4,
    )
    complaint = filed["complaintId"]
    (shown,) = filed["account"]["complaints"]
    assert shown["id"] == complaint
    assert (shown["status"], shown["manager"], shown["contact"]) == (
        "FILED",
        "bob.martin",
        {"name": "Ann Lee"},
    )
    assert (filed["account"]["version"], filed["account"]["openComplaints"]) == (4, 1)
    assert shown["breached"] is False  # high: acknowledge within 4 hours

    key = {"accountId": account_id, "complaintId": complaint}
    acknowledged = _mutate(api, "acknowledgeComplaint", key)
    (shown,) = acknowledged["account"]["complaints"]
    assert shown["status"] == "ACKNOWLEDGED"
    assert 3 * 3600 <= shown["timeToAcknowledgeSeconds"] < 3 * 3600 + 120

    escalated = _mutate(api, "escalateComplaint", key | {"escalatedTo": "carol.head"})
    (shown,) = escalated["account"]["complaints"]
    assert (shown["escalationLevel"], shown["escalatedTo"]) == (1, "carol.head")
    same_level = _mutate(api, "escalateComplaint", key | {"escalatedTo": "x", "level": 1})
    assert same_level["code"] == "ESCALATION_LEVEL_NOT_HIGHER"

    resolved = _mutate(
        api,
        "resolveComplaint",
        key | {"resolution": "Credit note", "rootCause": "Carrier overbooked"},
    )
    (shown,) = resolved["account"]["complaints"]
    assert (shown["status"], shown["resolution"], shown["rootCause"]) == (
        "RESOLVED",
        "Credit note",
        "Carrier overbooked",
    )
    assert resolved["account"]["openComplaints"] == 0

    reopened = _mutate(api, "reopenComplaint", key | {"reason": "Late again"})
    (shown,) = reopened["account"]["complaints"]
    assert (shown["status"], shown["resolvedAt"], shown["reopenCount"]) == (
        "REOPENED",
        None,
        1,
    )
    assert reopened["account"]["openComplaints"] == 1

    _mutate(api, "resolveComplaint", key | {"resolution": "New carrier"})
    closed = _mutate(api, "closeComplaint", key | {"expectedVersion": 9})
    (shown,) = closed["account"]["complaints"]
    assert (closed["version"], shown["status"]) == (10, "CLOSED")
    assert shown["closedAt"] is not None
    assert shown["timeToResolveSeconds"] >= 3 * 3600
    final = _mutate(api, "reopenComplaint", key | {"reason": "And again"})
    assert (final["__typename"], final["code"]) == (
        "RuleViolation",
        "COMPLAINT_ALREADY_CLOSED",
    )

    account = api.graphql(ACCOUNT, {"id": account_id})["data"]["account"]
    assert account["version"] == 10
    assert [e["node"]["type"] for e in account["history"]["edges"]][3:] == [
        "ComplaintFiled",
        "ComplaintAcknowledged",
        "ComplaintEscalated",
        "ComplaintResolved",
        "ComplaintReopened",
        "ComplaintResolved",
        "ComplaintClosed",
    ]


def test_a_refused_complaint_command_answers_with_a_typed_error_and_writes_nothing(api):
    account_id = _open(api)
    ben = str(uuid4())
    _mutate(api, "addContact", {"accountId": account_id, "contactId": ben, "name": "Ben"})
    complaint = _file(api, account_id)["complaintId"]
    _mutate(
        api, "removeContact", {"accountId": account_id, "contactId": ben, "reason": "left"}
    )
    before = api.graphql(ACCOUNT, {"id": account_id})["data"]["account"]
    assert before["version"] == 4

    key = {"accountId": account_id, "complaintId": complaint}
    refusals = [
        ("closeComplaint", key, "RuleViolation", "COMPLAINT_NOT_RESOLVED"),
        (
            "reopenComplaint",
            key | {"reason": "x"},
            "RuleViolation",
            "COMPLAINT_NOT_RESOLVED",
        ),
        (
            "resolveComplaint",
            key | {"resolution": "x"},
            "RuleViolation",
            "COMPLAINT_NOT_ACKNOWLEDGED",
        ),
        (
            "acknowledgeComplaint",
            key | {"complaintId": str(uuid4())},
            "NotFoundError",
            "COMPLAINT_NOT_FOUND",
        ),
        (
            "fileComplaint",
            {
                "accountId": account_id,
                "category": "billing",
                "severity": "LOW",
                "description": "Invoiced twice",
                "channel": "EMAIL",
                "contactId": ben,
            },
            "NotFoundError",
            "CONTACT_NOT_FOUND",
        ),
        (
            "fileComplaint",
            {
                "accountId": account_id,
                "category": "billing",
                "severity": "LOW",
                "description": "From the future",
                "channel": "EMAIL",
                "filedAt": _iso(datetime.now(tz=UTC) + timedelta(days=5)),
            },
            "ValidationError",
            "INVALID_VALUE",
        ),
        (
            "acknowledgeComplaint",
            key | {"expectedVersion": 3},
            "ConcurrencyConflict",
            "CONCURRENCY_CONFLICT",
        ),
    ]
    for field, payload, typename, code in refusals:
        answer = _mutate(api, field, payload)
        assert (answer["__typename"], answer["code"]) == (typename, code), field
    assert api.graphql(ACCOUNT, {"id": account_id})["data"]["account"] == before


def test_the_breached_filter_finds_overdue_complaints_as_time_passes(api):
    manager = f"desk-{uuid4().hex[:8]}"
    account_id = _open(api, manager=manager)
    now = datetime.now(tz=UTC)
    overdue = _file(
        api, account_id, severity="CRITICAL", filedAt=_iso(now - timedelta(hours=2))
    )["complaintId"]
    fresh = _file(api, account_id, severity="CRITICAL")["complaintId"]
    low = _file(api, account_id, severity="LOW", filedAt=_iso(now - timedelta(days=2)))
    _mutate(
        api,
        "acknowledgeComplaint",
        {"accountId": account_id, "complaintId": low["complaintId"]},
    )
    other_account = _open(api, manager=manager)
    elsewhere = _file(
        api, other_account, severity="MEDIUM", filedAt=_iso(now - timedelta(days=8))
    )["complaintId"]

    def ids(first: int = 10, after: str | None = None, **where) -> tuple[list[str], dict]:
        body = api.graphql(
            LIST, {"filter": {"manager": manager} | where, "first": first, "after": after}
        )
        assert "errors" not in body, body
        page = body["data"]["complaints"]
        return [e["node"]["id"] for e in page["edges"]], page["pageInfo"]

    # Newest first: fresh (now), overdue (2 h ago), low (2 days), elsewhere (8 days).
    assert ids(breached=True)[0] == [overdue, elsewhere]
    assert ids(breached=False)[0] == [fresh, low["complaintId"]]
    assert ids(breached=True, accountId=account_id)[0] == [overdue]
    assert ids(breached=True, severity="MEDIUM")[0] == [elsewhere]
    assert ids(status="ACKNOWLEDGED")[0] == [low["complaintId"]]
    first, info = ids(first=1, breached=True)
    second, rest = ids(first=1, after=info["endCursor"], breached=True)
    assert (first, second) == ([overdue], [elsewhere])
    assert (info["hasNextPage"], rest["hasNextPage"]) == (True, False)

    body = api.graphql(LIST, {"filter": {"manager": manager, "breached": True}, "first": 5})
    nodes = {e["node"]["id"]: e["node"] for e in body["data"]["complaints"]["edges"]}
    # Critical: acknowledge within 1 hour. Medium: resolve within 7 days.
    assert (nodes[overdue]["acknowledgeBreached"], nodes[overdue]["resolveBreached"]) == (
        True,
        False,
    )
    assert (
        nodes[elsewhere]["acknowledgeBreached"],
        nodes[elsewhere]["resolveBreached"],
    ) == (True, True)


def test_targets_are_published(api):
    body = api.graphql(
        "{ complaintTargets { severity acknowledgeWithinSeconds resolveWithinSeconds } }"
    )
    targets = {t["severity"]: t for t in body["data"]["complaintTargets"]}
    assert set(targets) == {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
    assert targets["CRITICAL"]["acknowledgeWithinSeconds"] == 3600
    assert targets["LOW"]["resolveWithinSeconds"] == 14 * 86400
