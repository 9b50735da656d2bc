"""Follow-ups and goals over GraphQL against a real server, and the thank-you
follow-up its projection runner schedules after a deal."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from api.auth import Role
from projections.thank_you import ACTOR, thank_you_follow_up_id

FOLLOW_UP_FIELDS = """
  id accountId due owner reason followsKind followsId status overdue manager
  scheduledBy completedAt outcome cancelReason closedBy
"""
SCHEDULE = """
mutation($input: ScheduleFollowUpInput!) {
  scheduleFollowUp(input: $input) {
    __typename
    ... on FollowUpScheduled { followUpId version account { version } }
    ... on ValidationError { field }
    ... on Error { code message }
  }
}"""
STEP = """
mutation($input: %(name)sInput!) {
  %(field)s(input: $input) {
    __typename ... on AccountChanged { version } ... on Error { code message }
  }
}"""
AGREE = """
mutation($input: AgreeGoalInput!) {
  agreeGoal(input: $input) {
    __typename
    ... on GoalAgreed { goalId version }
    ... on ValidationError { field }
    ... on Error { code }
  }
}"""
ACCOUNT = f"""
query($id: UUID!) {{
  account(id: $id) {{
    version
    followUps {{ {FOLLOW_UP_FIELDS} }}
    goals {{ id description owner due phase status overdue agreedBy closedBy dropReason }}
  }}
}}"""
LIST = f"""
query($filter: FollowUpFilter, $first: Int!, $after: String) {{
  followUps(filter: $filter, first: $first, after: $after) {{
    edges {{ node {{ {FOLLOW_UP_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""


def _ago(**delta) -> str:
    return (datetime.now(tz=UTC) - timedelta(**delta)).isoformat()


def _open(api, manager: str) -> tuple[str, str]:
    """An account managed by ``manager``, with a logged call; their ids."""
    account_id, call = str(uuid4()), str(uuid4())
    body = api.graphql(
        "mutation($id: UUID!, $m: String!, $call: UUID!) {"
        ' a: openAccount(input: {id: $id, name: "Follow SA", kind: ORGANIZATION,'
        " manager: $m}) { __typename }"
        " b: logInteraction(input: {accountId: $id, interactionId: $call, channel: CALL,"
        f' direction: OUTBOUND, occurredAt: "{_ago(hours=1)}"}}) {{ __typename }} }}',
        {"id": account_id, "m": manager, "call": call},
    )
    assert body["data"] == {
        "a": {"__typename": "AccountChanged"},
        "b": {"__typename": "InteractionLogged"},
    }, body
    return account_id, call


def _schedule(api, account_id, follows_id, kind="INTERACTION", **fields):
    payload = {
        "accountId": account_id,
        "due": _ago(hours=-2),
        "owner": "carol",
        "reason": "Send Ann the terms",
        "followsKind": kind,
        "followsId": follows_id,
    } | fields
    body = api.graphql(SCHEDULE, {"input": payload})
    assert "errors" not in body, body
    return body["data"]["scheduleFollowUp"]


def _step(api, name, payload, **who):
    """completeFollowUp, cancelFollowUp, achieveGoal or dropGoal (``name``)."""
    field = name[0].lower() + name[1:]
    body = api.graphql(STEP % {"name": name, "field": field}, {"input": payload}, **who)
    assert "errors" not in body, body
    return body["data"][field]


def _account(api, account_id, **who):
    body = api.graphql(ACCOUNT, {"id": account_id}, **who)
    assert "errors" not in body, body
    return body["data"]["account"]


def test_a_follow_up_is_scheduled_completed_and_refused_once_final(api):
    account_id, call = _open(api, "bob")
    scheduled = _schedule(api, account_id, call)
    assert scheduled["__typename"] == "FollowUpScheduled"
    assert scheduled["version"] == scheduled["account"]["version"] == 4
    follow_up_id = scheduled["followUpId"]
    done = _step(
        api,
        "CompleteFollowUp",
        {"accountId": account_id, "followUpId": follow_up_id, "outcome": "Terms sent"},
    )
    assert done == {"__typename": "AccountChanged", "version": 5}
    for name, payload in (
        ("CompleteFollowUp", {}),
        ("CancelFollowUp", {"reason": "not needed"}),
    ):
        refused = _step(
            api, name, {"accountId": account_id, "followUpId": follow_up_id} | payload
        )
        assert (refused["__typename"], refused["code"]) == (
            "RuleViolation",
            "FOLLOW_UP_ALREADY_COMPLETED",
        )
    (follow_up,) = _account(api, account_id)["followUps"]
    assert follow_up | {"due": None} == {
        "id": follow_up_id,
        "accountId": account_id,
        "due": None,
        "owner": "carol",
        "reason": "Send Ann the terms",
        "followsKind": "INTERACTION",
        "followsId": call,
        "status": "COMPLETED",
        "overdue": False,
        "manager": "bob",
        "scheduledBy": "tester",
        "completedAt": follow_up["completedAt"],
        "outcome": "Terms sent",
        "cancelReason": None,
        "closedBy": "tester",
    }


def test_what_it_follows_must_exist_and_bad_input_is_a_typed_error(api):
    account_id, call = _open(api, "bob")
    missing = _schedule(api, account_id, str(uuid4()), kind="DEAL")
    assert (missing["__typename"], missing["code"]) == ("NotFoundError", "DEAL_NOT_FOUND")
    wrong_kind = _schedule(api, account_id, call, kind="COMPLAINT")
    assert wrong_kind["code"] == "COMPLAINT_NOT_FOUND"
    unknown = _step(
        api,
        "CancelFollowUp",
        {"accountId": account_id, "followUpId": str(uuid4()), "reason": "x"},
    )
    assert (unknown["__typename"], unknown["code"]) == (
        "NotFoundError",
        "FOLLOW_UP_NOT_FOUND",
    )
    blank = _schedule(api, account_id, call, owner="  ")
    assert (blank["__typename"], blank["field"]) == ("ValidationError", "owner")
    first = _schedule(api, account_id, call)
    again = _schedule(api, account_id, call, followUpId=first["followUpId"])
    assert (again["__typename"], again["field"]) == ("ValidationError", "followUpId")
    assert _account(api, account_id)["version"] == 4  # only the first was written


def test_follow_ups_list_overdue_per_owner_scoped_by_reach(api):
    tag = uuid4().hex[:8]
    owner = f"owner-{tag}"
    mine, call = _open(api, f"agent-{tag}")
    theirs, other_call = _open(api, f"other-{tag}")
    due = {}
    for account_id, follows, hours in (
        (mine, call, 3),
        (mine, call, -1),
        (theirs, other_call, 2),
        (mine, call, -5),
    ):
        made = _schedule(api, account_id, follows, owner=owner, due=_ago(hours=hours))
        due[made["followUpId"]] = hours
    overdue_first = sorted(due, key=lambda i: -due[i])

    def listed(where, first=50, after=None, **who):
        body = api.graphql(LIST, {"filter": where, "first": first, "after": after}, **who)
        assert "errors" not in body, body
        return body["data"]["followUps"]

    overdue = listed({"owner": owner, "overdue": True})
    assert [e["node"]["id"] for e in overdue["edges"]] == overdue_first[:2]
    assert {e["node"]["overdue"] for e in overdue["edges"]} == {True}
    page = listed({"owner": owner}, first=2)
    rest = listed({"owner": owner}, after=page["pageInfo"]["endCursor"])
    assert page["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["id"] for e in page["edges"] + rest["edges"]] == overdue_first
    # An agent reaches the follow-ups of the accounts they manage, whoever owns them.
    agent = {"actor": f"agent-{tag}", "role": Role.AGENT}
    reached = listed({"owner": owner}, **agent)
    assert {e["node"]["accountId"] for e in reached["edges"]} == {mine}
    assert listed({"accountId": theirs}, **agent)["edges"] == []


def test_goals_are_agreed_achieved_or_dropped_and_texts_are_withheld_from_services(api):
    account_id, _ = _open(api, "bob")
    goals = []
    for description, due in (
        ("Pilot in Lyon with Ann", "2020-06-30"),
        ("Plant 2", "2020-07-31"),
    ):
        agreed = api.graphql(
            AGREE,
            {
                "input": {
                    "accountId": account_id,
                    "description": description,
                    "owner": "carol",
                    "due": due,
                    "phase": "pilot",
                }
            },
        )["data"]["agreeGoal"]
        assert agreed["__typename"] == "GoalAgreed", agreed
        goals.append(agreed["goalId"])
    assert (
        _step(api, "AchieveGoal", {"accountId": account_id, "goalId": goals[0]})[
            "__typename"
        ]
        == "AccountChanged"
    )
    dropped = _step(
        api, "DropGoal", {"accountId": account_id, "goalId": goals[0], "reason": "late"}
    )
    assert dropped["code"] == "GOAL_ALREADY_ACHIEVED"
    read = _account(api, account_id)["goals"]
    assert [(g["id"], g["status"], g["overdue"]) for g in read] == [
        (goals[0], "ACHIEVED", False),
        (goals[1], "AGREED", True),  # due in 2020 and still agreed
    ]
    assert read[0]["description"] == "Pilot in Lyon with Ann"
    service = _account(api, account_id, actor="billing", role=Role.SERVICE)
    assert {g["description"] for g in service["goals"]} == {"[withheld]"}
    auditor = api.graphql(
        AGREE,
        {
            "input": {
                "accountId": account_id,
                "description": "x",
                "owner": "y",
                "due": "2030-01-01",
            }
        },
        actor="audrey",
        role=Role.AUDITOR,
    )
    assert auditor["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_the_runner_schedules_one_thank_you_after_close_deal(api):
    account_id, _ = _open(api, "bob")
    deal_id = str(uuid4())
    closed = api.graphql(
        "mutation($id: UUID!, $deal: UUID!) { closeDeal(input: {accountId: $id,"
        ' dealId: $deal, value: {amount: "900", currency: "EUR"}, product: "vices"})'
        " { __typename ... on DealClosed { version } } }",
        {"id": account_id, "deal": deal_id},
    )["data"]["closeDeal"]
    assert closed == {"__typename": "DealClosed", "version": 4}
    deadline = time.monotonic() + 30
    while not (account := _account(api, account_id))["followUps"]:
        if time.monotonic() > deadline:
            pytest.fail("no thank-you follow-up was scheduled")
        time.sleep(0.1)
    (follow_up,) = account["followUps"]
    assert follow_up["id"] == str(thank_you_follow_up_id(deal_id))
    assert (follow_up["followsKind"], follow_up["followsId"]) == ("DEAL", deal_id)
    assert (follow_up["owner"], follow_up["scheduledBy"]) == ("bob", ACTOR)
    assert deal_id in follow_up["reason"]
    assert account["version"] == 5
