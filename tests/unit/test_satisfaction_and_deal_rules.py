"""Surveys and deals: the rules of their commands, and exact money. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.account import PERSONAL_DATA, Account
from domain.errors import ContactNotFound, InvalidValue, SubjectErased
from domain.money import CURRENCIES, MINOR_UNITS, amount_in, currency_code, money_text
from domain.values import AccountKind, PurchaseIntent, SatisfactionLevel

ANSWERED = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def opened() -> Account:
    return Account.open(name="Acme Tools", kind=AccountKind.ORGANIZATION)


def survey(account: Account, **changes):
    survey_id = changes.pop("survey_id", uuid4())
    account.record_survey(
        **{
            "survey_id": survey_id,
            "satisfaction": SatisfactionLevel.SATISFIED,
            "intent_to_buy_again": PurchaseIntent.YES,
            "likelihood_to_recommend": 9,
            "comment": "Fast delivery",
            "answered_at": ANSWERED,
        }
        | changes
    )
    return survey_id


def deal(account: Account, **changes):
    deal_id = changes.pop("deal_id", uuid4())
    account.close_deal(
        **{
            "deal_id": deal_id,
            "amount": "1250.50",
            "currency": "EUR",
            "product": "Torque wrenches",
            "closed_at": ANSWERED,
        }
        | changes
    )
    return deal_id


def test_a_survey_is_recorded_with_its_scores_and_comment():
    account = opened()
    survey_id = survey(account, likelihood_to_recommend=0, comment="  Too slow  ")
    (event,) = account.collect_events()[1:]
    assert isinstance(event, Account.SurveyRecorded)
    assert (event.survey_id, event.likelihood_to_recommend) == (survey_id, 0)
    assert (event.satisfaction, event.intent_to_buy_again) == (
        SatisfactionLevel.SATISFIED,
        PurchaseIntent.YES,
    )
    assert event.comment == "Too slow"
    assert account.surveys == {survey_id: ANSWERED}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"likelihood_to_recommend": 11}, "likelihoodToRecommend"),
        ({"likelihood_to_recommend": -1}, "likelihoodToRecommend"),
        ({"answered_at": datetime(2026, 1, 15, 10, 0)}, "answeredAt"),  # noqa: DTZ001
        ({"answered_at": datetime.now(tz=UTC) + timedelta(days=3)}, "answeredAt"),
        ({"answered_at": datetime(1899, 12, 31, tzinfo=UTC)}, "answeredAt"),
        ({"comment": "x" * 4001}, "comment"),
    ],
)
def test_a_bad_survey_is_refused_and_records_nothing(changes, field):
    account = opened()
    with pytest.raises(InvalidValue) as refused:
        survey(account, **changes)
    assert refused.value.field == field
    assert len(account.collect_events()) == 1  # only the opening


def test_a_survey_id_is_used_once():
    account = opened()
    survey_id = survey(account)
    with pytest.raises(InvalidValue) as refused:
        survey(account, survey_id=survey_id)
    assert refused.value.field == "surveyId"


def test_the_answering_contact_must_be_a_current_contact():
    account = opened()
    with pytest.raises(ContactNotFound):
        survey(account, contact_id=uuid4())
    ann = uuid4()
    account.add_contact(contact_id=ann, name="Ann Lee")
    survey(account, contact_id=ann)
    account.remove_contact(contact_id=ann, reason="left the company")
    with pytest.raises(ContactNotFound):
        survey(account, contact_id=ann)


def test_the_comment_is_the_accounts_personal_data_and_the_scores_are_not():
    personal = PERSONAL_DATA[Account.SurveyRecorded]
    assert (personal.fields, personal.subject) == (("comment",), None)
    account = opened()
    account.erase_personal_data(reason="customer asked")
    with pytest.raises(SubjectErased):
        survey(account, comment="Still unhappy")
    survey(account, comment="")  # the scores are recorded without a comment
    assert len(account.surveys) == 1


def test_a_deal_keeps_its_amount_exact_with_the_currencys_decimals():
    account = opened()
    deal_id = deal(account, amount="1250.5", currency="eur", place=" Lyon fair ")
    (event,) = account.collect_events()[1:]
    assert isinstance(event, Account.DealClosed)
    assert (event.deal_id, event.amount, event.currency) == (
        deal_id,
        Decimal("1250.50"),
        "EUR",
    )
    assert str(event.amount) == "1250.50"
    assert event.place == "Lyon fair"
    assert account.deals == {deal_id: ANSWERED}
    deal(account, amount=Decimal(1500), currency="JPY")
    deal(account, amount="0.125", currency="KWD")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"currency": "EUX"}, "currency"),
        ({"currency": "XAU"}, "currency"),  # gold has no minor unit: not a price
        ({"currency": ""}, "currency"),
        ({"amount": "0"}, "amount"),
        ({"amount": "0.00"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"amount": "12,50"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": Decimal("Infinity")}, "amount"),
        ({"amount": Decimal("-1.00")}, "amount"),
        ({"amount": 0.1}, "amount"),  # a float is never money
        ({"amount": "0.001"}, "amount"),  # EUR has two decimals
        ({"amount": "10.5", "currency": "JPY"}, "amount"),  # JPY has none
        ({"amount": "1" + "0" * 15}, "amount"),
        ({"product": "  "}, "product"),
        ({"place": "x" * 201}, "place"),
        ({"closed_at": datetime.now(tz=UTC) + timedelta(days=3)}, "closedAt"),
    ],
)
def test_a_bad_deal_is_refused_and_records_nothing(changes, field):
    account = opened()
    with pytest.raises(InvalidValue) as refused:
        deal(account, **changes)
    assert refused.value.field == field
    assert len(account.collect_events()) == 1


def test_a_deal_id_is_used_once_and_deals_go_on_after_an_erasure():
    account = opened()
    deal_id = deal(account)
    with pytest.raises(InvalidValue):
        deal(account, deal_id=deal_id)
    account.erase_personal_data(reason="customer asked")
    deal(account)  # nothing of a deal is personal
    assert len(account.deals) == 2


def test_decimal_text_adds_up_exactly():
    tenth, fifth = amount_in("a", "0.10", "EUR"), amount_in("a", "0.20", "EUR")
    assert tenth + fifth == Decimal("0.30")
    assert money_text(tenth + fifth, "EUR") == "0.30"
    assert money_text(Decimal(7), "EUR") == "7.00"
    assert money_text(Decimal(1500), "JPY") == "1500"
    assert money_text(Decimal(-3), "EUR") == "-3.00"


def test_the_currency_list_is_iso_4217_codes_with_their_decimals():
    assert all(len(code) == 3 and code.isupper() for code in CURRENCIES)
    assert {MINOR_UNITS[c] for c in ("EUR", "USD", "GBP", "CHF", "CNY", "CZK")} == {2}
    assert {MINOR_UNITS[c] for c in ("JPY", "KRW", "ISK", "CLP")} == {0}
    assert {MINOR_UNITS[c] for c in ("KWD", "BHD", "TND")} == {3}
    assert currency_code("currency", " usd ") == "USD"


def test_surveys_and_deals_survive_a_snapshot():
    account = opened()
    survey_id, deal_id = survey(account), deal(account)
    snapshot = Account.Snapshot.take(account)
    assert snapshot.state["class_version"] == Account.class_version
    restored = snapshot.mutate(None)
    assert (restored.surveys, restored.deals) == (account.surveys, account.deals)
    assert survey_id in restored.surveys
    assert deal_id in restored.deals


def test_a_snapshot_from_before_surveys_and_deals_is_upcast():
    state: dict[str, object] = {}
    Account.upcast_v4_v5(state)
    assert state == {"surveys": [], "deals": []}
