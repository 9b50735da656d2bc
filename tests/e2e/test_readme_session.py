"""The README's GraphQL session, run as written against a real server."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from websockets.sync.client import connect

README = Path(__file__).parents[2] / "README.md"
BLOCK = re.compile(r"```graphql\n(.*?)```", re.DOTALL)
ACCOUNT_ID = "0b6a3c52-5f0e-4e0b-9a39-2f6f4c1d7a01"


def _operations() -> dict[str, str]:
    operations = {}
    for block in BLOCK.findall(README.read_text()):
        name = re.match(r"\s*(?:query|mutation|subscription) (\w+)", block)
        assert name, f"README operation without a name:\n{block}"
        operations[name.group(1)] = block
    return operations


def _stream(api, document: str, count: int) -> list[dict]:
    """The first ``count`` results of a subscription, over graphql-transport-ws."""
    url = api.base_url.replace("http://", "ws://") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(api.connection_init())
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        payload = {"query": document}
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        return [json.loads(ws.recv(timeout=30))["payload"] for _ in range(count)]


def _check_complaint(answers: dict) -> None:
    filed = answers["FileComplaint"]["fileComplaint"]
    assert (filed["__typename"], filed["version"]) == ("ComplaintFiled", 8)
    acknowledged = answers["AcknowledgeComplaint"]["acknowledgeComplaint"]
    assert acknowledged["account"] == {"openComplaints": 1}
    (complaint,) = [e["node"] for e in answers["BreachedComplaints"]["complaints"]["edges"]]
    assert (complaint["status"], complaint["severity"]) == ("ACKNOWLEDGED", "HIGH")
    assert complaint["acknowledgeBreached"] is True
    assert complaint["resolveBreached"] is True  # three days passed long ago


def _check_survey_and_deal(answers: dict) -> None:
    recorded = answers["RecordSurvey"]["recordSurvey"]
    assert (recorded["__typename"], recorded["version"]) == ("SurveyRecorded", 10)
    satisfaction = recorded["account"]["satisfaction"]
    assert satisfaction == {"surveyCount": 1, "csat": 100, "nps": 100}
    closed = answers["CloseDeal"]["closeDeal"]
    assert (closed["__typename"], closed["version"]) == ("DealClosed", 11)
    assert closed["account"]["dealCount"] == 1
    assert closed["account"]["lifetimeValue"] == [{"amount": "18450.00", "currency": "EUR"}]
    read = answers["SatisfactionAndDeals"]
    account = read["account"]
    assert account["satisfaction"]["trend"] == {
        "surveyCount": 0,
        "csatChange": None,
        "npsChange": None,
    }
    (survey,) = [edge["node"] for edge in account["surveys"]["edges"]]
    assert survey["comment"] == "Priority delivery works; order 4711 still stings"
    (deal,) = [edge["node"] for edge in account["deals"]["edges"]]
    assert deal["value"] == {"amount": "18450.00", "currency": "EUR"}
    assert account["lastDealAt"] == deal["closedAt"]
    assert account["dealTrend"] == [
        {
            "currency": "EUR",
            "days": 90,
            "recent": {"amount": "18450.00"},
            "previous": {"amount": "0.00"},
            "change": {"amount": "18450.00"},
        }
    ]
    tiers = {group["key"]: group for group in read["portfolio"]}
    assert tiers["preferred_supplier"]["surveyCount"] >= 1


def _check_thank_you(answers: dict) -> None:
    (deal,) = answers["SatisfactionAndDeals"]["account"]["deals"]["edges"]
    thanked = answers["ThankYou"]["account"]
    assert thanked["version"] == 12
    (follow_up,) = thanked["followUps"]
    assert follow_up == {
        "owner": "bob.martin",
        "due": follow_up["due"],
        "reason": "Thank the customer for deal 6f4b2d1e-8c7a-4e5f-b3a2-1d0c9e8f7a06 "
        "(torque wrenches) and check their satisfaction",
        "followsKind": "DEAL",
        "followsId": "6f4b2d1e-8c7a-4e5f-b3a2-1d0c9e8f7a06",
        "status": "OPEN",
        "overdue": False,
        "scheduledBy": "process:thank-you",
    }
    closed_at = datetime.fromisoformat(deal["node"]["closedAt"])
    assert datetime.fromisoformat(follow_up["due"]) == closed_at + timedelta(hours=24)


ANN = "5c1f9a7e-3b2d-4c8e-a1f0-6d2e9b4c8a02"


def _check_greetings(answers: dict) -> None:
    greeted = answers["GreetAnn"]["logInteraction"]
    assert (greeted["__typename"], greeted["version"]) == ("InteractionLogged", 13)
    again = answers["GreetAnnAgain"]["logInteraction"]
    assert (again["__typename"], again["code"]) == (
        "RuleViolation",
        "OCCASION_ALREADY_GREETED",
    )
    occasions = [
        o
        for o in answers["UpcomingOccasions"]["upcomingOccasions"]
        if o["account"]["id"] == ACCOUNT_ID
    ]
    birthdays = [o for o in occasions if o["kind"] == "BIRTHDAY"]
    # Within 366 days from today there is one 12 April, or two on 12 April itself.
    assert 1 <= len(birthdays) <= 2
    for birthday in birthdays:
        assert birthday["contact"] == {"name": "Ann Lee"}
        assert birthday["since"] == "1980-04-12"
        assert birthday["date"] == f"{birthday['year']}-04-12"
        assert birthday["greeted"] is (birthday["year"] == 2027)
    (deal,) = answers["SatisfactionAndDeals"]["account"]["deals"]["edges"]
    first_deal = datetime.fromisoformat(deal["node"]["closedAt"]).astimezone(UTC).date()
    anniversaries = [o for o in occasions if o["kind"] == "FIRST_DEAL_ANNIVERSARY"]
    assert [o["since"] for o in anniversaries] == [first_deal.isoformat()]
    assert anniversaries[0]["year"] == first_deal.year + 1
    assert anniversaries[0]["greeted"] is False


def _check_stream(streamed: list[dict]) -> None:
    assert [p["data"]["events"]["version"] for p in streamed] == list(range(1, 15))
    assert streamed[11]["data"]["events"]["type"] == "FollowUpScheduled"
    assert streamed[11]["data"]["events"]["actor"] == "process:thank-you"
    greeting = streamed[12]["data"]["events"]
    assert greeting["type"] == "InteractionLogged"
    assert greeting["payload"]["occasion_kind"] == "birthday"
    assert greeting["payload"]["occasion_year"] == 2027
    assert streamed[-1]["data"]["events"]["type"] == "PersonalDataErased"


def _answer(api, name: str, document: str) -> dict:
    body = api.graphql(document)
    if name == "ThankYou":  # scheduled by the runner moments after the deal
        deadline = time.monotonic() + 30
        while not body["data"]["account"]["followUps"]:
            assert time.monotonic() < deadline, "no thank-you follow-up"
            time.sleep(0.1)
            body = api.graphql(document)
    assert "errors" not in body, (name, body)
    return body["data"]


def _register_and_remove_webhook(api, document: str) -> None:
    webhook = api.graphql(document)["data"]["registerWebhook"]
    assert webhook["__typename"] == "Webhook", webhook
    # Nobody listens there: stop it rather than let it retry for the session.
    removed = api.graphql(
        "mutation($id: UUID!) { removeWebhook(id: $id) { ... on Webhook { active } } }",
        {"id": webhook["id"]},
    )
    assert removed["data"]["removeWebhook"] == {"active": False}


def test_the_readme_session_works_as_written(api):
    operations = _operations()
    assert list(operations) == [
        "OpenAccount",
        "AddContact",
        "AssignManager",
        "LogCall",
        "ConfirmCall",
        "ChangeTier",
        "ChangeStage",
        "SkipStage",
        "Account",
        "PreferredSuppliers",
        "FileComplaint",
        "AcknowledgeComplaint",
        "BreachedComplaints",
        "RecordSurvey",
        "CloseDeal",
        "SatisfactionAndDeals",
        "ThankYou",
        "GreetAnn",
        "GreetAnnAgain",
        "UpcomingOccasions",
        "Audit",
        "EraseAnn",
        "AcmeEvents",
        "RegisterBilling",
    ]
    subscription = operations.pop("AcmeEvents")
    _register_and_remove_webhook(api, operations.pop("RegisterBilling"))
    answers = {}
    for name, document in operations.items():
        answers[name] = _answer(api, name, document)

    assert answers["OpenAccount"]["openAccount"]["account"] == {
        "name": "Acme Tools",
        "tier": "TRANSACTIONAL",
        "stage": "EXPLORATION",
    }
    assert answers["LogCall"]["logInteraction"]["account"] == {
        "pendingWrittenConfirmations": 1
    }
    assert answers["ConfirmCall"]["recordWrittenConfirmation"]["account"] == {
        "pendingWrittenConfirmations": 0
    }
    skipped = answers["SkipStage"]["changeStage"]
    assert skipped["__typename"] == "RuleViolation"
    assert skipped["code"] == "STAGE_TRANSITION_NOT_ALLOWED"

    account = answers["Account"]["account"]
    assert (account["tier"], account["stage"], account["manager"]) == (
        "PREFERRED_SUPPLIER",
        "AWARENESS",
        "bob.martin",
    )
    assert account["version"] == 7
    assert account["contacts"] == [
        {
            "name": "Ann Lee",
            "role": "Head of purchasing",
            "email": "ann.lee@acme.example",
            "birthday": "1980-04-12",
        }
    ]
    (call,) = [edge["node"] for edge in account["interactions"]["edges"]]
    assert call["channel"] == "CALL"
    assert call["confirmedAt"] is not None
    assert call["awaitingConfirmation"] is False
    assert [p["value"] for p in account["tierHistory"]] == [
        "transactional",
        "preferred_supplier",
    ]
    assert account["tierHistory"][1]["reason"] == (
        "Priority delivery agreed; teams on both sides"
    )
    assert account["tierHistory"][1]["actor"] == "tester"
    assert [p["value"] for p in account["stageHistory"]] == ["exploration", "awareness"]
    assert account["stageHistory"][0]["leftAt"] is not None
    assert account["stageHistory"][1]["leftAt"] is None
    assert account["managerHistory"][0]["value"] == "bob.martin"

    listed = answers["PreferredSuppliers"]["accounts"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == [ACCOUNT_ID]

    _check_complaint(answers)
    _check_survey_and_deal(answers)
    _check_thank_you(answers)
    _check_greetings(answers)
    audit = answers["Audit"]
    history = [edge["node"] for edge in audit["account"]["history"]["edges"]]
    assert [(e["version"], e["type"]) for e in history] == [
        (6, "TierChanged"),
        (7, "StageChanged"),
    ]
    assert (
        history[0]["payload"]["reason"] == "Priority delivery agreed; teams on both sides"
    )
    assert audit["before"] == {
        "version": 5,
        "asOf": audit["before"]["asOf"],
        "tier": "TRANSACTIONAL",
        "stage": "EXPLORATION",
    }
    assert [(c["version"], c["field"], c["after"]) for c in audit["accountChanges"]] == [
        (6, "tier", "preferred_supplier"),
        (7, "stage", "awareness"),
    ]
    assert audit["auditReport"]["intact"] is True

    erased = answers["EraseAnn"]["eraseSubject"]
    assert erased["version"] == 14
    assert erased["account"]["contacts"] == [
        {"name": "[erased]", "email": "[erased]", "birthday": None, "erased": True}
    ]

    _check_stream(_stream(api, subscription, 14))

    again = api.graphql(operations["OpenAccount"])["data"]["openAccount"]
    assert again["code"] == "ACCOUNT_ALREADY_EXISTS"
