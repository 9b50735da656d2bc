"""Occasions and greetings, founding dates and gift costs: the rules of the
commands and the state they leave. No I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.account import PERSONAL_DATA, Account, Occasion, occasion_key
from domain.errors import (
    ContactNotFound,
    InvalidValue,
    OccasionAlreadyGreeted,
    OccasionNotFound,
    SubjectErased,
)
from domain.values import AccountKind, Channel, Direction, OccasionKind, occasion_date

SENT = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
BIRTHDAY = OccasionKind.BIRTHDAY
FOUNDING = OccasionKind.FOUNDING_DAY
FIRST_DEAL = OccasionKind.FIRST_DEAL_ANNIVERSARY


def acme(founded_on: date | None = date(1994, 6, 1)) -> tuple[Account, object]:
    account = Account.open(
        name="Acme Tools", kind=AccountKind.ORGANIZATION, founded_on=founded_on
    )
    ann = uuid4()
    account.add_contact(contact_id=ann, name="Ann Lee", birthday=date(1980, 4, 12))
    return account, ann


def greet(account: Account, occasion: Occasion, **changes):
    interaction_id = uuid4()
    account.log_interaction(
        **{
            "interaction_id": interaction_id,
            "channel": Channel.GREETING,
            "direction": Direction.OUTBOUND,
            "occurred_at": SENT,
            "summary": "Card and flowers",
            "occasion": occasion,
        }
        | changes
    )
    return interaction_id


def test_a_greeting_marks_a_birthday_once_a_year():
    account, ann = acme()
    first = greet(account, Occasion(BIRTHDAY, 2026, ann))
    event = account.collect_events()[-1]
    assert isinstance(event, Account.InteractionLogged)
    assert (event.occasion_kind, event.occasion_contact_id, event.occasion_year) == (
        BIRTHDAY,
        ann,
        2026,
    )
    assert (event.cost_amount, event.cost_currency) == (None, None)
    assert account.greetings == {occasion_key(BIRTHDAY, ann, 2026): first}

    version = account.version
    with pytest.raises(OccasionAlreadyGreeted, match="2026"):
        greet(account, Occasion(BIRTHDAY, 2026, ann))
    assert account.version == version  # nothing triggered
    assert account.collect_events() == []
    assert OccasionAlreadyGreeted.code == "OCCASION_ALREADY_GREETED"

    # Next year's is another occasion; so is the founding day of this year.
    greet(account, Occasion(BIRTHDAY, 2027, ann))
    greet(account, Occasion(FOUNDING, 2026))
    assert len(account.greetings) == 3


def test_only_a_greeting_marks_an_occasion_and_the_occasion_must_be_on_file():
    account, ann = acme(founded_on=None)
    with pytest.raises(InvalidValue) as refused:
        greet(account, Occasion(BIRTHDAY, 2026, ann), channel=Channel.EMAIL)
    assert refused.value.field == "occasion"
    with pytest.raises(InvalidValue) as refused:
        greet(account, Occasion(BIRTHDAY, 2026))
    assert refused.value.field == "occasion.contactId"
    with pytest.raises(InvalidValue) as refused:
        greet(account, Occasion(FOUNDING, 2026, ann))
    assert refused.value.field == "occasion.contactId"
    with pytest.raises(ContactNotFound):
        greet(account, Occasion(BIRTHDAY, 2026, uuid4()))
    no_birthday = uuid4()
    account.add_contact(contact_id=no_birthday, name="Bo Berg")
    with pytest.raises(OccasionNotFound, match="no birthday"):
        greet(account, Occasion(BIRTHDAY, 2026, no_birthday))
    with pytest.raises(OccasionNotFound, match="founding date"):
        greet(account, Occasion(FOUNDING, 2026))
    with pytest.raises(OccasionNotFound, match="deal"):
        greet(account, Occasion(FIRST_DEAL, 2026))
    assert account.greetings == {}


@pytest.mark.parametrize(
    ("year", "allowed"),
    [(1980, False), (1981, True), (2026, True), (2027, True), (2028, False)],
)
def test_the_year_runs_from_the_one_after_the_occasion_began_to_the_one_after_sending(
    year, allowed
):
    account, ann = acme()
    if allowed:
        greet(account, Occasion(BIRTHDAY, year, ann))
        return
    with pytest.raises(InvalidValue) as refused:
        greet(account, Occasion(BIRTHDAY, year, ann))
    assert refused.value.field == "occasion.year"


def test_the_first_deals_anniversary_counts_from_the_first_deal():
    account, _ = acme()
    for closed in (datetime(2025, 3, 1, 23, 30, tzinfo=UTC), SENT):
        account.close_deal(
            deal_id=uuid4(), amount="10.00", currency="EUR", product="x", closed_at=closed
        )
    with pytest.raises(InvalidValue):  # the first deal's own year is no anniversary
        greet(account, Occasion(FIRST_DEAL, 2025))
    greet(account, Occasion(FIRST_DEAL, 2026))
    with pytest.raises(OccasionAlreadyGreeted):
        greet(account, Occasion(FIRST_DEAL, 2026))


def test_removed_and_erased_contacts_have_no_birthday_to_greet():
    account, ann = acme()
    bo = uuid4()
    account.add_contact(contact_id=bo, name="Bo Berg", birthday=date(1975, 1, 2))
    account.remove_contact(contact_id=bo, reason="left Acme")
    with pytest.raises(ContactNotFound):
        greet(account, Occasion(BIRTHDAY, 2026, bo))
    account.erase_personal_data(contact_id=ann, reason="Request DPO-1")
    assert account.contacts[ann].birthday is None
    with pytest.raises(SubjectErased):
        greet(account, Occasion(BIRTHDAY, 2026, ann))


def test_the_founding_date_is_part_of_the_profile_and_the_accounts_personal_data():
    account, _ = acme(founded_on=None)
    assert account.founded_on is None
    account.update_profile(founded_on=date(1994, 6, 1))
    assert account.founded_on == date(1994, 6, 1)
    with pytest.raises(Exception, match="changes nothing"):
        account.update_profile(founded_on=date(1994, 6, 1))
    with pytest.raises(InvalidValue) as refused:
        account.update_profile(founded_on=date(2999, 1, 1))
    assert refused.value.field == "foundedOn"
    with pytest.raises(InvalidValue):
        Account.open(name="x", kind=AccountKind.GROUP, founded_on=date(1850, 1, 1))
    for event in (Account.AccountOpened, Account.ProfileUpdated):
        assert "founded_on" in PERSONAL_DATA[event].fields
        assert PERSONAL_DATA[event].subject is None  # the account's own
    account.erase_personal_data(reason="Request DPO-2")
    assert account.founded_on is None
    with pytest.raises(SubjectErased):
        greet(account, Occasion(FOUNDING, 2026))


def test_older_events_and_snapshots_read_without_founding_date_or_occasion():
    opened: dict[str, object] = {}
    Account.AccountOpened.upcast_v2_v3(opened)
    updated: dict[str, object] = {}
    Account.ProfileUpdated.upcast_v2_v3(updated)
    assert opened == updated == {"founded_on": None}
    logged: dict[str, object] = {}
    Account.InteractionLogged.upcast_v1_v2(logged)
    assert logged == dict.fromkeys(
        (
            "occasion_kind",
            "occasion_contact_id",
            "occasion_year",
            "cost_amount",
            "cost_currency",
        )
    )
    state: dict[str, object] = {}
    Account.upcast_v6_v7(state)
    assert state == {"founded_on": None, "greetings": {}}
    assert "occasion_kind" not in PERSONAL_DATA[Account.InteractionLogged].fields


def test_greetings_and_the_founding_date_survive_a_snapshot():
    account, ann = acme()
    greeting = greet(account, Occasion(BIRTHDAY, 2026, ann))
    snapshot = Account.Snapshot.take(account)
    assert snapshot.state["class_version"] == Account.class_version
    restored = snapshot.mutate(None)
    assert restored.founded_on == date(1994, 6, 1)
    assert restored.greetings == {occasion_key(BIRTHDAY, ann, 2026): greeting}
    with pytest.raises(OccasionAlreadyGreeted):
        greet(restored, Occasion(BIRTHDAY, 2026, ann))


def test_a_gift_carries_its_cost_in_exact_money():
    account, _ = acme()
    account.log_interaction(
        interaction_id=uuid4(),
        channel=Channel.GIFT,
        direction=Direction.OUTBOUND,
        occurred_at=SENT,
        cost=("25.5", "eur"),
    )
    event = account.collect_events()[-1]
    assert (event.cost_amount, event.cost_currency) == (Decimal("25.50"), "EUR")
    assert event.occasion_kind is None
    for channel, cost, field in (
        (Channel.CALL, ("10.00", "EUR"), "cost"),
        (Channel.GREETING, ("10.00", "EUR"), "cost"),
        (Channel.GIFT, ("10.001", "EUR"), "cost.amount"),
        (Channel.GIFT, ("-1", "EUR"), "cost.amount"),
        (Channel.GIFT, ("10", "XYZ"), "cost.currency"),
        (Channel.GIFT, (10.5, "EUR"), "cost.amount"),
    ):
        with pytest.raises(InvalidValue) as refused:
            account.log_interaction(
                interaction_id=uuid4(),
                channel=channel,
                direction=Direction.OUTBOUND,
                occurred_at=SENT,
                cost=cost,  # type: ignore[arg-type]
            )
        assert refused.value.field == field
    assert account.collect_events() == []


@pytest.mark.parametrize(
    ("origin", "year", "falls_on"),
    [
        (date(1980, 4, 12), 2027, date(2027, 4, 12)),
        (date(1992, 2, 29), 2027, date(2027, 2, 28)),
        (date(1992, 2, 29), 2028, date(2028, 2, 29)),
        (date(1992, 2, 29), 2100, date(2100, 2, 28)),  # not a leap year
        (date(1992, 2, 29), 2000, date(2000, 2, 29)),  # a leap year
        (date(1990, 12, 31), 2026, date(2026, 12, 31)),
    ],
)
def test_an_occasion_falls_on_its_day_and_month_and_29_february_on_the_28th(
    origin, year, falls_on
):
    assert occasion_date(origin, year) == falls_on
