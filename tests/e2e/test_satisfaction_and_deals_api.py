"""Surveys and deals through GraphQL: the mutations, typed refusals that write
nothing, CSAT and NPS per account and across the portfolio, exact money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

ACCOUNT = """
query($id: UUID!) {
  account(id: $id) {
    version dealCount lastDealAt
    lifetimeValue { amount currency }
    dealTrend {
      currency days recent { amount currency } previous { amount } change { amount }
    }
    deals(first: 10) {
      edges { node { id value { amount currency } product place closedAt } }
    }
    surveys(first: 10) {
      edges {
        node { id satisfaction intentToBuyAgain likelihoodToRecommend comment contactId }
      }
    }
    satisfaction {
      surveyCount csat nps windowStart windowEnd
      trend { surveyCount csat nps csatChange npsChange }
    }
  }
}"""

RECORD = """
mutation($input: RecordSurveyInput!) {
  recordSurvey(input: $input) {
    __typename
    ... on SurveyRecorded {
      surveyId version account { version satisfaction { surveyCount csat nps } }
    }
    ... on ValidationError { field }
    ... on Error { code message }
  }
}"""

CLOSE = """
mutation($input: CloseDealInput!) {
  closeDeal(input: $input) {
    __typename
    ... on DealClosed {
      dealId version account { version dealCount lifetimeValue { amount currency } }
    }
    ... on ValidationError { field }
    ... on Error { code message }
  }
}"""


def _open(api, manager: str | None = None) -> str:
    account_id = str(uuid4())
    body = api.graphql(
        'mutation($id: UUID!) { openAccount(input: {id: $id, name: "Surveyed SA", '
        "kind: ORGANIZATION}) { __typename } }",
        {"id": account_id},
    )
    assert body["data"]["openAccount"]["__typename"] == "AccountChanged", body
    if manager is not None:
        assigned = api.graphql(
            "mutation($id: UUID!, $m: String!) { assignAccountManager(input: "
            "{accountId: $id, manager: $m}) { __typename } }",
            {"id": account_id, "m": manager},
        )
        assert assigned["data"]["assignAccountManager"]["__typename"] == "AccountChanged"
    return account_id


def _days_ago(days: float) -> str:
    return (datetime.now(tz=UTC) - timedelta(days=days)).isoformat()


def _record(api, account_id: str, **fields) -> dict:
    payload = {
        "accountId": account_id,
        "satisfaction": "SATISFIED",
        "intentToBuyAgain": "YES",
        "likelihoodToRecommend": 9,
        "answeredAt": _days_ago(2),
    } | fields
    body = api.graphql(RECORD, {"input": payload})
    assert "errors" not in body, body
    return body["data"]["recordSurvey"]


def _close(api, account_id: str, amount: str, currency: str, **fields) -> dict:
    payload = {
        "accountId": account_id,
        "value": {"amount": amount, "currency": currency},
        "product": "torque wrenches",
        "closedAt": _days_ago(1),
    } | fields
    body = api.graphql(CLOSE, {"input": payload})
    assert "errors" not in body, body
    return body["data"]["closeDeal"]


def _account(api, account_id: str) -> dict:
    body = api.graphql(ACCOUNT, {"id": account_id})
    assert "errors" not in body, body
    return body["data"]["account"]


def _without_window(account: dict) -> dict:
    """The account's answer without the window's bounds, which move with the clock."""
    satisfaction = {
        k: v
        for k, v in account["satisfaction"].items()
        if k not in {"windowStart", "windowEnd"}
    }
    return account | {"satisfaction": satisfaction}


def test_surveys_answer_with_the_account_and_its_csat_and_nps(api):
    account_id = _open(api)
    ann = str(uuid4())
    api.graphql(
        "mutation($id: UUID!, $c: UUID!) { addContact(input: {accountId: $id, "
        'contactId: $c, name: "Ann Lee"}) { __typename } }',
        {"id": account_id, "c": ann},
    )
    first = _record(
        api,
        account_id,
        satisfaction="VERY_SATISFIED",
        likelihoodToRecommend=10,
        comment="Deliveries on time, at last",
        contactId=ann,
    )
    assert first["__typename"] == "SurveyRecorded"
    assert first["version"] == first["account"]["version"] == 3
    assert first["account"]["satisfaction"] == {"surveyCount": 1, "csat": 100, "nps": 100}
    second = _record(
        api, account_id, satisfaction="SOMEWHAT_DISSATISFIED", likelihoodToRecommend=4
    )
    assert second["account"]["satisfaction"] == {"surveyCount": 2, "csat": 50, "nps": 0}
    # Answered four months ago: in the 90 days before the current window.
    _record(
        api,
        account_id,
        satisfaction="NEUTRAL",
        likelihoodToRecommend=0,
        answeredAt=_days_ago(120),
    )

    account = _account(api, account_id)
    satisfaction = account["satisfaction"]
    assert (satisfaction["surveyCount"], satisfaction["csat"], satisfaction["nps"]) == (
        2,
        50,
        0,
    )
    assert satisfaction["trend"] == {
        "surveyCount": 1,
        "csat": 0,
        "nps": -100,
        "csatChange": 50,
        "npsChange": 100,
    }
    start = datetime.fromisoformat(satisfaction["windowStart"])
    end = datetime.fromisoformat(satisfaction["windowEnd"])
    assert end - start == timedelta(days=90)
    surveys = [edge["node"] for edge in account["surveys"]["edges"]]
    assert [s["id"] for s in surveys[:1]] == [second["surveyId"]]  # newest answered first
    assert surveys[1] == {
        "id": first["surveyId"],
        "satisfaction": "VERY_SATISFIED",
        "intentToBuyAgain": "YES",
        "likelihoodToRecommend": 10,
        "comment": "Deliveries on time, at last",
        "contactId": ann,
    }


def test_deal_values_are_exact_per_currency(api):
    account_id = _open(api)
    for amount, currency in (("0.10", "EUR"), ("0.2", "eur"), ("1500", "JPY")):
        closed = _close(api, account_id, amount, currency, place="Lyon")
        assert closed["__typename"] == "DealClosed", closed
    assert closed["account"]["dealCount"] == 3
    assert closed["account"]["lifetimeValue"] == [
        {"amount": "0.30", "currency": "EUR"},
        {"amount": "1500", "currency": "JPY"},
    ]
    _close(api, account_id, "99.99", "EUR", closedAt=_days_ago(120))

    account = _account(api, account_id)
    assert account["lifetimeValue"][0] == {"amount": "100.29", "currency": "EUR"}
    assert account["dealTrend"] == [
        {
            "currency": "EUR",
            "days": 90,
            "recent": {"amount": "0.30", "currency": "EUR"},
            "previous": {"amount": "99.99"},
            "change": {"amount": "-99.69"},
        },
        {
            "currency": "JPY",
            "days": 90,
            "recent": {"amount": "1500", "currency": "JPY"},
            "previous": {"amount": "0"},
            "change": {"amount": "1500"},
        },
    ]
    deals = [edge["node"] for edge in account["deals"]["edges"]]
    assert [d["value"] for d in deals][-1] == {"amount": "99.99", "currency": "EUR"}
    assert {d["place"] for d in deals} == {"Lyon", ""}
    assert account["lastDealAt"] == max(d["closedAt"] for d in deals)


def test_a_refused_survey_or_deal_answers_with_a_typed_error_and_writes_nothing(api):
    account_id = _open(api)
    before = _without_window(_account(api, account_id))
    refusals = [
        (_record(api, account_id, likelihoodToRecommend=11), "likelihoodToRecommend"),
        (_record(api, account_id, answeredAt=_days_ago(-3)), "answeredAt"),
        (_record(api, account_id, comment="x" * 4001), "comment"),
        (_close(api, account_id, "12.50", "EUX"), "currency"),
        (_close(api, account_id, "12.505", "EUR"), "amount"),
        (_close(api, account_id, "-12.50", "EUR"), "amount"),
        (_close(api, account_id, "0", "EUR"), "amount"),
        (_close(api, account_id, "1e3", "EUR"), "amount"),
        (_close(api, account_id, "12.50", "EUR", product=" "), "product"),
    ]
    for answer, field in refusals:
        assert (answer["__typename"], answer["field"]) == ("ValidationError", field), answer
        assert answer["code"] == "INVALID_VALUE"
    unknown = _record(api, account_id, contactId=str(uuid4()))
    assert (unknown["__typename"], unknown["code"]) == (
        "NotFoundError",
        "CONTACT_NOT_FOUND",
    )
    nowhere = _close(api, str(uuid4()), "12.50", "EUR")
    assert nowhere["__typename"] == "NotFoundError"
    stale = _close(api, account_id, "12.50", "EUR", expectedVersion=0)
    assert stale["__typename"] == "ConcurrencyConflict"
    assert _without_window(_account(api, account_id)) == before


def test_the_portfolio_groups_satisfaction_by_manager(api):
    tag = uuid4().hex[:8]
    bob, carol = f"bob-{tag}", f"carol-{tag}"
    for manager, answers in ((bob, [10, 9, 3]), (carol, [7])):
        account_id = _open(api, manager=manager)
        for score in answers:
            _record(api, account_id, likelihoodToRecommend=score)
    body = api.graphql(
        "{ portfolio(groupBy: MANAGER) { key surveyCount csat nps "
        "trend { surveyCount npsChange } } }"
    )
    assert "errors" not in body, body
    groups = {g["key"]: g for g in body["data"]["portfolio"]}
    assert groups[bob]["surveyCount"] == 3
    assert round(groups[bob]["nps"], 6) == round(100 * (2 - 1) / 3, 6)
    assert groups[bob]["csat"] == 100
    assert groups[carol] == {
        "key": carol,
        "surveyCount": 1,
        "csat": 100,
        "nps": 0,
        "trend": {"surveyCount": 0, "npsChange": None},
    }
    tiers = api.graphql("{ portfolio(groupBy: TIER) { key surveyCount } }")
    assert "TRANSACTIONAL".lower() in {g["key"] for g in tiers["data"]["portfolio"]}
