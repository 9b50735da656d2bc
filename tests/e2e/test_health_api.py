"""Cadence, health and economics through GraphQL, and atRiskAccounts: sorted by
risk, paged by keyset at one moment, holding only the accounts within reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from api.auth import Role

ACCOUNT = """
query($id: UUID!) {
  account(id: $id) {
    cadence {
      expectedIntervalDays lastContactAt daysSinceLastContact daysWithoutContact
      contactDueAt underContact contactsLastWeek overContactLimit overContact
    }
    health { score asOf factors { factor weight severity contribution reason } }
    economics {
      effortMinutes hourlyRate { amount currency } costOfServing { amount currency }
      dealValue { amount currency } netValue { amount } luxury
      dealValueInOtherCurrencies { amount currency }
    }
  }
}"""

AT_RISK = """
query($first: Int!, $after: String) {
  atRiskAccounts(first: $first, after: $after) {
    edges {
      cursor node { account { id manager } health { score asOf factors { reason } } }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _ok(body: dict, field: str) -> dict:
    assert "errors" not in body, body
    result: dict = body["data"][field]
    return result


def _days_ago(days: float) -> str:
    return (datetime.now(tz=UTC) - timedelta(days=days)).isoformat()


def _open(api, manager: str, tier: str | None = None) -> str:
    account_id = str(uuid4())
    opened = api.graphql(
        'mutation($id: UUID!) { openAccount(input: {id: $id, name: "Health SA", '
        "kind: ORGANIZATION}) { __typename } }",
        {"id": account_id},
    )
    assert _ok(opened, "openAccount")["__typename"] == "AccountChanged"
    assigned = api.graphql(
        "mutation($id: UUID!, $m: String!) { assignAccountManager(input: "
        "{accountId: $id, manager: $m}) { __typename } }",
        {"id": account_id, "m": manager},
    )
    assert _ok(assigned, "assignAccountManager")["__typename"] == "AccountChanged"
    if tier is not None:
        changed = api.graphql(
            "mutation($id: UUID!, $t: Tier!) { changeTier(input: {accountId: $id, "
            'tier: $t, reason: "test"}) { __typename } }',
            {"id": account_id, "t": tier},
        )
        assert _ok(changed, "changeTier")["__typename"] == "AccountChanged"
    return account_id


def _log(api, account_id: str, days_ago: float, channel: str = "EMAIL", effort: int = 0):
    logged = api.graphql(
        "mutation($input: LogInteractionInput!) { logInteraction(input: $input) "
        "{ __typename ... on Error { message } } }",
        {
            "input": {
                "accountId": account_id,
                "channel": channel,
                "direction": "OUTBOUND",
                "occurredAt": _days_ago(days_ago),
                "effortMinutes": effort,
            }
        },
    )
    assert _ok(logged, "logInteraction")["__typename"] == "InteractionLogged", logged


def _deal(api, account_id: str, amount: str, currency: str, days_ago: float = 1):
    closed = api.graphql(
        "mutation($input: CloseDealInput!) { closeDeal(input: $input) { __typename } }",
        {
            "input": {
                "accountId": account_id,
                "value": {"amount": amount, "currency": currency},
                "product": "wrenches",
                "closedAt": _days_ago(days_ago),
            }
        },
    )
    assert _ok(closed, "closeDeal")["__typename"] == "DealClosed"


def test_an_account_answers_with_its_cadence_health_and_economics(api):
    agent = f"agent.{uuid4().hex[:8]}"
    account_id = _open(api, agent, tier="PARTNER")
    _log(api, account_id, 40, channel="CALL", effort=90)  # not confirmed in writing
    for day in (5, 6):
        _log(api, account_id, 50 + day, effort=15)
    _deal(api, account_id, "100.00", "EUR")
    _deal(api, account_id, "2500", "JPY")

    account = _ok(
        api.graphql(ACCOUNT, {"id": account_id}, actor=agent, role=Role.AGENT), "account"
    )
    cadence = account["cadence"]
    assert cadence | {"lastContactAt": None, "contactDueAt": None} == {
        "expectedIntervalDays": 30,
        "lastContactAt": None,
        "daysSinceLastContact": 40,
        "daysWithoutContact": 40,
        "contactDueAt": None,
        "underContact": True,
        "contactsLastWeek": 0,
        "overContactLimit": 3,
        "overContact": False,
    }
    last = datetime.fromisoformat(cadence["lastContactAt"])
    assert datetime.fromisoformat(cadence["contactDueAt"]) == last + timedelta(days=30)

    found = account["health"]
    factors = {f["factor"]: f for f in found["factors"]}
    assert sum(f["weight"] for f in found["factors"]) == 100
    assert found["score"] == round(
        100 - sum(f["contribution"] for f in found["factors"]), 1
    )
    recency = factors["CONTACT_RECENCY"]
    assert recency["reason"] == (
        "last contact 40 days ago; partner accounts expect one every 30 days"
    )
    assert 0 < recency["contribution"] < recency["weight"]
    assert factors["UNCONFIRMED_ORAL"]["reason"] == (
        "1 oral interaction without written confirmation"
    )
    assert factors["SATISFACTION_LEVEL"]["contribution"] == 0  # no survey: not counted

    # 120 minutes at 80.00 EUR an hour; the JPY deal is not converted.
    assert account["economics"] == {
        "effortMinutes": 120,
        "hourlyRate": {"amount": "80.00", "currency": "EUR"},
        "costOfServing": {"amount": "160.00", "currency": "EUR"},
        "dealValue": {"amount": "100.00", "currency": "EUR"},
        "netValue": {"amount": "-60.00"},
        "luxury": None,
        "dealValueInOtherCurrencies": [{"amount": "2500", "currency": "JPY"}],
    }


def _at_risk(api, first: int, **who) -> list[dict]:
    nodes, after = [], None
    while True:
        page = _ok(
            api.graphql(AT_RISK, {"first": first, "after": after}, **who), "atRiskAccounts"
        )
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def test_at_risk_accounts_are_sorted_by_score_and_hold_only_those_within_reach(api):
    tag = uuid4().hex[:8]
    mine, theirs = f"agent.a.{tag}", f"agent.b.{tag}"
    own = [_open(api, mine, tier=tier) for tier in ("STRATEGIC_ALLIANCE", "PARTNER", None)]
    _log(api, own[0], 20)  # past its 14 days
    _log(api, own[1], 2)
    other = _open(api, theirs, tier="STRATEGIC_ALLIANCE")  # never contacted

    agent = _at_risk(api, 1, actor=mine, role=Role.AGENT)
    assert sorted(n["account"]["id"] for n in agent) == sorted(own)
    assert agent[0]["account"]["id"] == own[0]
    scores = [n["health"]["score"] for n in agent]
    assert scores == sorted(scores)
    assert scores[0] < 100
    assert len({n["health"]["asOf"] for n in agent}) == 1  # every page at one moment
    assert any(
        "last contact 20 days ago" in f["reason"] for f in agent[0]["health"]["factors"]
    )

    assert {
        n["account"]["id"] for n in _at_risk(api, 2, actor=theirs, role=Role.AGENT)
    } == {other}
    lead = _at_risk(api, 50, actor=f"lead.{tag}", role=Role.MANAGER, team=(mine,))
    assert {n["account"]["id"] for n in lead} == set(own)

    everyone = _at_risk(api, 100)
    ids = [n["account"]["id"] for n in everyone]
    assert set(own) | {other} <= set(ids)
    assert len(ids) == len(set(ids))
    every_score = [n["health"]["score"] for n in everyone]
    assert every_score == sorted(every_score)


def test_a_cursor_of_another_list_is_refused(api):
    body = api.graphql(AT_RISK, {"first": 1, "after": "bm90IGEgY3Vyc29y"})
    assert body["errors"][0]["message"].startswith("not a cursor of this list")


def test_the_factors_and_the_cadence_are_described(api):
    body = api.graphql(
        "{ healthFactors { factor weight formula } "
        "contactCadence { tier expectedIntervalDays } }"
    )
    assert "errors" not in body, body
    factors = body["data"]["healthFactors"]
    assert sum(f["weight"] for f in factors) == 100
    assert all(f["formula"] for f in factors)
    assert body["data"]["contactCadence"] == [
        {"tier": "TRANSACTIONAL", "expectedIntervalDays": 90},
        {"tier": "PREFERRED_SUPPLIER", "expectedIntervalDays": 45},
        {"tier": "PARTNER", "expectedIntervalDays": 30},
        {"tier": "STRATEGIC_ALLIANCE", "expectedIntervalDays": 14},
    ]


def test_overdue_follow_ups_count_against_health_as_the_list_shows_them(api):
    agent = f"agent.{uuid4().hex[:8]}"
    account_id = _open(api, agent)
    interaction_id = str(uuid4())
    logged = api.graphql(
        "mutation($input: LogInteractionInput!) { logInteraction(input: $input) "
        "{ __typename } }",
        {
            "input": {
                "accountId": account_id,
                "interactionId": interaction_id,
                "channel": "EMAIL",
                "direction": "OUTBOUND",
                "occurredAt": _days_ago(3),
            }
        },
    )
    assert _ok(logged, "logInteraction")["__typename"] == "InteractionLogged"
    for due in (_days_ago(2), _days_ago(-5)):  # one overdue, one due in five days
        scheduled = api.graphql(
            "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) "
            "{ __typename ... on Error { message } } }",
            {
                "input": {
                    "accountId": account_id,
                    "due": due,
                    "owner": agent,
                    "reason": "Send the terms",
                    "followsKind": "INTERACTION",
                    "followsId": interaction_id,
                }
            },
        )
        assert _ok(scheduled, "scheduleFollowUp")["__typename"] == "FollowUpScheduled"

    account = _ok(api.graphql(ACCOUNT, {"id": account_id}), "account")
    factors = {f["factor"]: f for f in account["health"]["factors"]}
    overdue = factors["OVERDUE_FOLLOW_UPS"]
    assert (overdue["weight"], overdue["severity"], overdue["contribution"]) == (10, 0.5, 5)
    assert overdue["reason"] == "1 follow-up overdue"
    assert account["health"]["score"] == 95  # nothing else counts against it
    listed = _ok(
        api.graphql(
            "query($id: UUID!) { followUps(filter: {accountId: $id, overdue: true}) "
            "{ edges { node { due } } } }",
            {"id": account_id},
        ),
        "followUps",
    )
    assert len(listed["edges"]) == 1
    described = _ok(api.graphql("{ healthFactors { factor weight } }"), "healthFactors")
    assert {"factor": "OVERDUE_FOLLOW_UPS", "weight": 10} in described
