"""Occasions and greetings through GraphQL: upcoming occasions within reach,
greetings once per occasion and year, birthdays withheld from services, gift
costs in the cost of serving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from api.auth import Role

UPCOMING = """
query($days: Int!) {
  upcomingOccasions(days: $days) {
    account { id name foundedOn }
    contact { id name birthday }
    kind year date since greeted
  }
}"""

LOG = """
mutation($input: LogInteractionInput!) {
  logInteraction(input: $input) {
    __typename
    ... on InteractionLogged { interactionId version }
    ... on ValidationError { field }
    ... on Error { code message }
  }
}"""


def _in_days(days: int):
    return (datetime.now(tz=UTC) + timedelta(days=days)).date()


def _customer(api, agent: str) -> tuple[str, str, object]:
    """An account managed by ``agent``, founded five days from now 30 years
    ago, with a contact whose birthday is three days from now."""
    account_id, contact_id = str(uuid4()), str(uuid4())
    founded = _in_days(5).replace(year=1996, day=min(_in_days(5).day, 28))
    opened = api.graphql(
        "mutation($id: UUID!, $founded: Date!) { openAccount(input: {id: $id, "
        'name: "Greeted GmbH", kind: ORGANIZATION, foundedOn: $founded}) '
        "{ __typename } }",
        {"id": account_id, "founded": founded.isoformat()},
        actor=agent,
        role=Role.AGENT,
    )
    assert opened["data"]["openAccount"]["__typename"] == "AccountChanged", opened
    birthday = _in_days(3).replace(year=1980)  # 1980 had a 29 February
    added = api.graphql(
        "mutation($id: UUID!, $c: UUID!, $b: Date!) { addContact(input: {accountId: "
        '$id, contactId: $c, name: "Gus Greet", birthday: $b}) { __typename } }',
        {"id": account_id, "c": contact_id, "b": birthday.isoformat()},
        actor=agent,
        role=Role.AGENT,
    )
    assert added["data"]["addContact"]["__typename"] == "ContactAdded", added
    return account_id, contact_id, founded


def _mine(api, account_id: str, days: int = 14, **who) -> list[dict]:
    body = api.graphql(UPCOMING, {"days": days}, **who)
    assert "errors" not in body, body
    return [
        o for o in body["data"]["upcomingOccasions"] if o["account"]["id"] == account_id
    ]


def _greeting(account_id: str, contact_id: str | None, kind: str, year: int) -> dict:
    occasion = {"kind": kind, "year": year}
    if contact_id is not None:
        occasion["contactId"] = contact_id
    return {
        "accountId": account_id,
        "channel": "GREETING",
        "direction": "OUTBOUND",
        "occurredAt": datetime.now(tz=UTC).isoformat(),
        "summary": "A handwritten card",
        "occasion": occasion,
    }


def test_a_birthday_is_greeted_once_a_year_and_shows_as_greeted(api):
    agent = f"ada.{uuid4().hex[:8]}"
    account_id, contact_id, founded = _customer(api, agent)
    as_agent = {"actor": agent, "role": Role.AGENT}

    found = _mine(api, account_id, **as_agent)
    birthday = _in_days(3)
    assert [(o["kind"], o["contact"] and o["contact"]["id"]) for o in found][:1] == [
        ("BIRTHDAY", contact_id)
    ]
    (occasion,) = [o for o in found if o["kind"] == "BIRTHDAY"]
    assert occasion["date"] == birthday.isoformat()
    assert occasion["year"] == birthday.year
    assert occasion["since"] == birthday.replace(year=1980).isoformat()
    assert occasion["greeted"] is False
    assert occasion["account"]["foundedOn"] == founded.isoformat()
    founding = [o for o in found if o["kind"] == "FOUNDING_DAY"]
    assert [o["date"] for o in founding] == [
        founded.replace(year=y).isoformat()
        for y in {_in_days(0).year, _in_days(14).year}
        if _in_days(0) <= founded.replace(year=y) <= _in_days(14)
    ]

    greeting = _greeting(account_id, contact_id, "BIRTHDAY", birthday.year)
    sent = api.graphql(LOG, {"input": greeting}, **as_agent)["data"]["logInteraction"]
    assert sent["__typename"] == "InteractionLogged", sent
    again = api.graphql(LOG, {"input": greeting}, **as_agent)["data"]["logInteraction"]
    assert (again["__typename"], again["code"]) == (
        "RuleViolation",
        "OCCASION_ALREADY_GREETED",
    )
    version = api.graphql(
        "query($id: UUID!) { account(id: $id) { version interactions(first: 5) { edges "
        "{ node { channel occasion { kind contactId year } cost { amount } } } } } }",
        {"id": account_id},
    )["data"]["account"]
    assert version["version"] == sent["version"]  # the refusal wrote nothing
    (node,) = [edge["node"] for edge in version["interactions"]["edges"]]
    assert node == {
        "channel": "GREETING",
        "occasion": {"kind": "BIRTHDAY", "contactId": contact_id, "year": birthday.year},
        "cost": None,
    }
    (greeted,) = [o for o in _mine(api, account_id, **as_agent) if o["kind"] == "BIRTHDAY"]
    assert greeted["greeted"] is True


def test_greetings_are_refused_for_occasions_not_on_file(api):
    agent = f"ada.{uuid4().hex[:8]}"
    account_id, contact_id, _ = _customer(api, agent)
    year = _in_days(0).year
    for kind, contact, typename, code in (
        ("FIRST_DEAL_ANNIVERSARY", None, "NotFoundError", "OCCASION_NOT_FOUND"),
        ("FOUNDING_DAY", contact_id, "ValidationError", "INVALID_VALUE"),
        ("BIRTHDAY", str(uuid4()), "NotFoundError", "CONTACT_NOT_FOUND"),
    ):
        answer = api.graphql(LOG, {"input": _greeting(account_id, contact, kind, year)})
        refused = answer["data"]["logInteraction"]
        assert (refused["__typename"], refused["code"]) == (typename, code), refused
    on_email = _greeting(account_id, contact_id, "BIRTHDAY", year) | {"channel": "EMAIL"}
    refused = api.graphql(LOG, {"input": on_email})["data"]["logInteraction"]
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "occasion")
    body = api.graphql(UPCOMING, {"days": 367})
    assert "days must be between 0 and 366" in body["errors"][0]["message"]


def test_birthdays_are_withheld_from_services_and_occasions_stay_within_reach(api):
    agent = f"ada.{uuid4().hex[:8]}"
    account_id, _, _ = _customer(api, agent)
    service = _mine(api, account_id, actor="billing", role=Role.SERVICE)
    birthday = next(o for o in service if o["kind"] == "BIRTHDAY")
    assert (birthday["date"], birthday["since"]) == (None, None)
    assert birthday["contact"]["name"] == "[withheld]"
    assert birthday["contact"]["birthday"] is None
    assert birthday["account"]["foundedOn"] is None
    assert birthday["year"] == _in_days(3).year  # not personal
    other = f"otto.{uuid4().hex[:8]}"
    assert _mine(api, account_id, actor=other, role=Role.AGENT) == []
    assert len(_mine(api, account_id)) == len(service)  # an admin reaches every account


def test_a_gifts_cost_counts_in_the_cost_of_serving(api):
    agent = f"ada.{uuid4().hex[:8]}"
    account_id, _, _ = _customer(api, agent)
    gift = {
        "accountId": account_id,
        "channel": "GIFT",
        "direction": "OUTBOUND",
        "occurredAt": datetime.now(tz=UTC).isoformat(),
        "effortMinutes": 15,
        "cost": {"amount": "42.50", "currency": "EUR"},
    }
    sent = api.graphql(LOG, {"input": gift})["data"]["logInteraction"]
    assert sent["__typename"] == "InteractionLogged", sent
    wrong = api.graphql(LOG, {"input": gift | {"channel": "CALL"}})["data"]
    assert wrong["logInteraction"]["field"] == "cost"
    account = api.graphql(
        "query($id: UUID!) { account(id: $id) { "
        "interactions(first: 1) { edges { node { cost { amount currency } } } } "
        "economics { effortCost { amount } giftCosts { amount currency } "
        "costOfServing { amount currency } luxury } } }",
        {"id": account_id},
    )["data"]["account"]
    (node,) = [edge["node"] for edge in account["interactions"]["edges"]]
    assert node["cost"] == {"amount": "42.50", "currency": "EUR"}
    # 15 minutes at the default 80.00 EUR an hour, and the gift.
    assert account["economics"] == {
        "effortCost": {"amount": "20.00"},
        "giftCosts": {"amount": "42.50", "currency": "EUR"},
        "costOfServing": {"amount": "62.50", "currency": "EUR"},
        "luxury": True,
    }
