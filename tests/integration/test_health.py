"""Health, cadence and economics signals worked out in SQL as they are read, as
of a fixed moment; the score SQL sorts by agrees with the Python definition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from uuid import uuid4

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.application import CommandMeta
from domain.complaints import DEFAULT_COMPLAINT_TARGETS
from domain.values import (
    AccountKind,
    Channel,
    ComplaintSeverity,
    Direction,
    FollowedKind,
    PurchaseIntent,
    SatisfactionLevel,
    Tier,
)
from projections import health, queries

ALICE = CommandMeta(actor="alice")
NOW = datetime.now(tz=UTC)
SETTINGS = queries.SignalSettings(
    cadence=health.DEFAULT_CONTACT_CADENCE,
    satisfaction_span=timedelta(days=30),
    complaint_targets=DEFAULT_COMPLAINT_TARGETS,
)


def _read(database_url, query, *args, **kwargs):
    async def run():
        async with await AsyncConnection.connect(
            database_url, row_factory=dict_row, autocommit=True
        ) as conn:
            return await query(conn, *args, **kwargs)

    return asyncio.run(run())


def _signals(database_url, ids, as_of=NOW, settings=SETTINGS):
    return _read(database_url, queries.account_signals, ids, settings, as_of=as_of)


def _open(app, name, tier=Tier.TRANSACTIONAL, manager=None):
    account_id = app.open_account(
        ALICE, name=name, kind=AccountKind.ORGANIZATION, manager=manager
    ).account_id
    if tier is not Tier.TRANSACTIONAL:
        app.change_tier(ALICE, account_id, tier, reason="test")
    return account_id


def _contact(app, account_id, days_ago, channel=Channel.EMAIL, effort=0, **extra):
    return app.log_interaction(
        ALICE,
        account_id,
        channel=channel,
        direction=extra.pop("direction", Direction.OUTBOUND),
        occurred_at=NOW - timedelta(days=days_ago),
        effort_minutes=effort,
        **extra,
    ).created_id


def _survey(app, account_id, level, days_ago):
    app.record_survey(
        ALICE,
        account_id,
        satisfaction=level,
        intent_to_buy_again=PurchaseIntent.YES,
        likelihood_to_recommend=8,
        answered_at=NOW - timedelta(days=days_ago),
    )


def _deal(app, account_id, amount, currency, days_ago):
    app.close_deal(
        ALICE,
        account_id,
        amount=amount,
        currency=currency,
        product="wrenches",
        closed_at=NOW - timedelta(days=days_ago),
    )


def _complaint(app, account_id, severity, days_ago):
    return app.file_complaint(
        ALICE,
        account_id,
        category="delivery",
        severity=severity,
        description="late",
        channel=Channel.CALL,
        filed_at=NOW - timedelta(days=days_ago),
    ).created_id


def _ramp(value, start, end):
    """The factor ramp by its definition, exactly."""
    if value is None:
        return Fraction(0)
    start, end = Fraction(start), Fraction(end)
    return min(max((Fraction(value) - start) / (end - start), Fraction(0)), Fraction(1))


def _points(weight, severity):
    """weight * severity to one decimal, half up (all are positive)."""
    tenths = Fraction(weight) * severity * 10
    return Fraction(int(tenths + Fraction(1, 2)), 10)


def _gifts_and_follow_ups(app, account_id, call):
    # Gifts, whose costs are summed per currency.
    _contact(app, account_id, 41, channel=Channel.GIFT, cost=("25.50", "EUR"))
    _contact(app, account_id, 42, channel=Channel.GIFT, cost=("4.50", "EUR"))
    _contact(app, account_id, 43, channel=Channel.GIFT, cost=("10", "USD"))
    # Two follow-ups overdue; one due later; one overdue but done.
    for due_in, done in ((-2, False), (-30, False), (3, False), (-5, True)):
        follow_up = app.schedule_follow_up(
            ALICE,
            account_id,
            due=NOW + timedelta(days=due_in),
            owner="alice",
            reason="Send the terms",
            follows_kind=FollowedKind.INTERACTION,
            follows_id=call,
        ).created_id
        if done:
            app.complete_follow_up(ALICE, account_id, follow_up, completed_at=NOW)


def _check_gifts_and_follow_ups(database_url, signals):
    # The two overdue above, and the thank-you of each of the four deals, due a
    # day after it closed.
    assert signals.overdue_follow_ups == 2 + 4
    assert signals.gift_costs == (("EUR", Decimal("30.00")), ("USD", Decimal("10.00")))
    # One definition of overdue: the follow-ups list counts the same ones.
    listed = _read(
        database_url,
        queries.list_follow_ups,
        queries.FollowUpFilter(account_id=signals.account_id, overdue=True),
        100,
        None,
        as_of=NOW,
    )
    assert len(listed) == signals.overdue_follow_ups
    # Three days on, the follow-up due in three days is overdue too.
    later = _signals(
        database_url, [signals.account_id], as_of=NOW + timedelta(days=3, hours=1)
    )
    assert health.Signals.from_row(later[signals.account_id]).overdue_follow_ups == 3 + 4


def test_signals_and_score_of_an_account_against_its_known_history(
    app, projections, database_url
):
    account_id = _open(app, "Troubled Oy", tier=Tier.PARTNER)
    call = _contact(app, account_id, 40, channel=Channel.CALL, effort=90)  # unconfirmed
    _contact(app, account_id, 45, effort=30)
    _gifts_and_follow_ups(app, account_id, call)
    # Satisfaction window of 30 days: half top-two now, all top-two before.
    _survey(app, account_id, SatisfactionLevel.VERY_SATISFIED, 3)
    _survey(app, account_id, SatisfactionLevel.VERY_DISSATISFIED, 5)
    _survey(app, account_id, SatisfactionLevel.SATISFIED, 40)
    _survey(app, account_id, SatisfactionLevel.SATISFIED, 50)
    # Open and overdue; and one resolved late, but long ago (not counted).
    _complaint(app, account_id, ComplaintSeverity.CRITICAL, 10)
    old = _complaint(app, account_id, ComplaintSeverity.LOW, 200)
    app.acknowledge_complaint(
        ALICE, account_id, old, acknowledged_at=NOW - timedelta(days=199)
    )
    app.resolve_complaint(
        ALICE, account_id, old, resolution="Refund", resolved_at=NOW - timedelta(days=150)
    )
    # EUR fell from 1000 to 400; USD rose from 100 to 300.
    _deal(app, account_id, "1000.00", "EUR", 120)
    _deal(app, account_id, "400.00", "EUR", 10)
    _deal(app, account_id, "100.00", "USD", 100)
    _deal(app, account_id, "300.00", "USD", 5)
    # The thank-you process schedules a follow-up per deal. Run here, it makes
    # the count the same whether or not another process (a test server on this
    # database) got there first: each deal has one thank-you, whoever wrote it.
    projections.catch_up()
    projections.run_processes()
    projections.catch_up()

    row = _signals(database_url, [account_id])[account_id]
    signals = health.Signals.from_row(row)
    assert signals.expected_interval == timedelta(days=30)
    assert signals.last_contact_at == NOW - timedelta(days=40)
    assert abs(Fraction(signals.quiet_ratio) - Fraction(40, 30)) < Fraction(1, 10**12)
    assert (signals.survey_count, signals.csat, signals.csat_change) == (2, 50, -50)
    assert (signals.open_complaints, signals.breached_complaints) == (1, 1)
    assert (signals.deal_change, signals.deal_change_currency) == (Decimal("-0.6"), "EUR")
    assert (signals.unconfirmed_oral, signals.effort_minutes) == (1, 120)
    assert signals.contacts_last_week == 0
    _check_gifts_and_follow_ups(database_url, signals)

    inputs = {
        health.HealthFactor.CONTACT_RECENCY: Fraction(40, 30),
        health.HealthFactor.SATISFACTION_LEVEL: 50,
        health.HealthFactor.SATISFACTION_TREND: -50,
        health.HealthFactor.OPEN_COMPLAINTS: 1,
        health.HealthFactor.BREACHED_COMPLAINTS: 1,
        health.HealthFactor.DEAL_TREND: Fraction(-6, 10),
        health.HealthFactor.UNCONFIRMED_ORAL: 1,
        health.HealthFactor.OVERDUE_FOLLOW_UPS: 2 + 4,
    }
    expected = {
        rule.factor: _points(rule.weight, _ramp(inputs[rule.factor], rule.start, rule.end))
        for rule in health.RULES
    }
    scored = health.score(signals)
    assert {f.factor: Fraction(f.contribution) for f in scored.factors} == expected
    assert Fraction(scored.score) == 100 - sum(expected.values())
    assert row["health_score"] == scored.score  # the SQL that sorts agrees
    reasons = {f.factor: f.reason for f in scored.factors}
    assert reasons[health.HealthFactor.CONTACT_RECENCY] == (
        "last contact 40 days ago; partner accounts expect one every 30 days"
    )
    assert reasons[health.HealthFactor.DEAL_TREND] == (
        "deal value in EUR fell 60% against the 90 days before"
    )
    assert reasons[health.HealthFactor.OVERDUE_FOLLOW_UPS] == "6 follow-ups overdue"
    found = health.economics(
        signals.effort_minutes, health.DEFAULT_HOURLY_RATE, [], signals.gift_costs
    )
    # 120 minutes at 80.00 EUR an hour, and 30.00 EUR of gifts; the USD gift apart.
    assert (found.effort_cost, found.gift_costs, found.cost_of_serving) == (
        Decimal("160.00"),
        Decimal("30.00"),
        Decimal("190.00"),
    )
    assert found.gift_costs_in_other_currencies == (("USD", Decimal("10.00")),)


def test_cadence_and_recency_move_with_time_without_any_event(
    app, projections, database_url
):
    account_id = _open(app, "Close Ally AB", tier=Tier.STRATEGIC_ALLIANCE)
    _contact(app, account_id, 10)
    for day in (1, 2, 3, 6):
        _contact(app, account_id, day + 0.5)
    for day in (1, 2, 3):  # the customer calling us is not overdoing it
        _contact(app, account_id, day, direction=Direction.INBOUND)
    _contact(app, account_id, 8)  # outside the week
    quiet = _open(app, "Never Called Ltd")
    projections.catch_up()

    now = _signals(database_url, [account_id, quiet])
    status = health.cadence(health.Signals.from_row(now[account_id]), 3)
    assert (status.contacts_last_week, status.over_contact) == (4, True)
    assert (status.days_since_last_contact, status.under_contact) == (1, False)
    assert health.cadence(health.Signals.from_row(now[account_id]), 4).over_contact is False

    # Twenty days on: nothing happened, so the account is past its 14 days.
    later = NOW + timedelta(days=20)
    moved = _signals(database_url, [account_id, quiet], as_of=later)
    signals = health.Signals.from_row(moved[account_id])
    status = health.cadence(signals, 3)
    assert (status.contacts_last_week, status.over_contact) == (0, False)
    assert (status.days_since_last_contact, status.under_contact) == (21, True)
    assert status.contact_due_at == NOW - timedelta(days=1) + timedelta(days=14)
    recency = health.score(signals).factors[0]
    assert recency.factor is health.HealthFactor.CONTACT_RECENCY
    assert Fraction(recency.contribution) == _points(20, _ramp(Fraction(21, 14), 1, 2))
    assert moved[account_id]["health_score"] < now[account_id]["health_score"]

    # Never contacted: counted from the opening, against the 90 days of its tier.
    never = health.cadence(health.Signals.from_row(moved[quiet]), 3)
    assert never.days_since_last_contact is None
    assert never.last_contact_at is None
    assert never.days_without_contact in {19, 20}  # opened just after NOW
    assert never.under_contact is False
    far = _signals(database_url, [quiet], as_of=NOW + timedelta(days=91))[quiet]
    assert health.cadence(health.Signals.from_row(far), 3).under_contact is True

    # A shorter cadence from configuration flags it sooner, with no event.
    strict = queries.SignalSettings(
        cadence=health.ContactCadence.parse("transactional=5d"),
        satisfaction_span=SETTINGS.satisfaction_span,
        complaint_targets=DEFAULT_COMPLAINT_TARGETS,
    )
    row = _signals(database_url, [quiet], as_of=later, settings=strict)[quiet]
    assert row["expected_interval"] == timedelta(days=5)
    assert health.cadence(health.Signals.from_row(row), 3).under_contact is True


def _portfolio(app, manager):
    """Accounts of varied health under ``manager``."""
    made = []
    healthy = _open(app, "Healthy", tier=Tier.PARTNER, manager=manager)
    _contact(app, healthy, 2)
    made.append(healthy)
    quiet = _open(app, "Quiet", tier=Tier.STRATEGIC_ALLIANCE, manager=manager)
    _contact(app, quiet, 25)
    made.append(quiet)
    unhappy = _open(app, "Unhappy", manager=manager)
    _contact(app, unhappy, 1, channel=Channel.VISIT)
    _survey(app, unhappy, SatisfactionLevel.VERY_DISSATISFIED, 2)
    _complaint(app, unhappy, ComplaintSeverity.HIGH, 5)
    made.append(unhappy)
    for twin in ("Twin A", "Twin B"):  # equal scores: ordered by id
        account_id = _open(app, twin, tier=Tier.PARTNER, manager=manager)
        _contact(app, account_id, 3)
        made.append(account_id)
    return made


def test_at_risk_accounts_sort_by_the_score_page_by_keyset_and_stay_in_reach(
    app, projections, database_url
):
    mine, theirs = f"risk.{uuid4().hex[:8]}", f"other.{uuid4().hex[:8]}"
    made = _portfolio(app, mine)
    others = _portfolio(app, theirs)
    projections.catch_up()

    seen, after = [], None
    while True:
        rows = _read(
            database_url,
            queries.at_risk_accounts,
            SETTINGS,
            2,
            after,
            as_of=NOW,
            managers=[mine],
        )
        seen += rows
        if len(rows) < 2:
            break
        after = (rows[-1]["health_score"], rows[-1]["account_id"])
    assert sorted(row["account_id"] for row in seen) == sorted(made)
    scores = {
        row["account_id"]: health.score(health.Signals.from_row(row)).score for row in seen
    }
    assert all(row["health_score"] == scores[row["account_id"]] for row in seen)
    assert [row["account_id"] for row in seen] == sorted(
        made, key=lambda account_id: (scores[account_id], account_id)
    )
    assert seen[0]["account_id"] == made[2]  # the unhappy one
    assert scores[made[3]] == scores[made[4]] == 100

    both = _read(
        database_url,
        queries.at_risk_accounts,
        SETTINGS,
        100,
        None,
        as_of=NOW,
        managers=[mine, theirs],
    )
    assert {row["account_id"] for row in both} == set(made) | set(others)


def test_health_cadence_and_economics_load_in_fixed_queries_for_a_page(
    app, projections, counted_query
):
    tag = uuid4().hex[:8]
    for i in range(4):
        account_id = _open(app, f"Economics {tag} {i}", tier=Tier.PARTNER)
        for n in range(i):
            _contact(app, account_id, n + 1, effort=45)
            _deal(app, account_id, "50.00", "EUR", n + 1)
        if i == 3:
            _deal(app, account_id, "1000", "JPY", 1)
            _contact(app, account_id, 5, channel=Channel.GIFT, cost=("19.99", "EUR"))
    projections.catch_up()
    query = """query($search: String!) {
      accounts(filter: {search: $search}, first: 10) {
        edges { node {
          name
          cadence { daysSinceLastContact contactsLastWeek overContact underContact }
          health { score factors { factor contribution reason } }
          economics {
            effortMinutes costOfServing { amount currency } dealValue { amount }
            effortCost { amount } giftCosts { amount currency }
            netValue { amount } dealValueInOtherCurrencies { amount currency } luxury
          }
          lifetimeValue { amount currency }
        } }
      }
    }"""

    result, taken = counted_query(query, {"search": tag})
    assert result.errors is None, result.errors
    nodes = [edge["node"] for edge in result.data["accounts"]["edges"]]
    # 45 minutes at 80.00 EUR an hour is 60.00 EUR; each account's deals 50.00 EUR each.
    assert [n["economics"]["effortMinutes"] for n in nodes] == [0, 45, 90, 135]
    assert [n["economics"]["costOfServing"]["amount"] for n in nodes] == [
        "0.00",
        "60.00",
        "120.00",
        "199.99",
    ]
    assert nodes[3]["economics"]["effortCost"] == {"amount": "180.00"}
    assert nodes[3]["economics"]["giftCosts"] == {"amount": "19.99", "currency": "EUR"}
    assert nodes[2]["economics"]["giftCosts"] == {"amount": "0.00", "currency": "EUR"}
    assert [n["economics"]["dealValue"]["amount"] for n in nodes] == [
        "0.00",
        "50.00",
        "100.00",
        "150.00",
    ]
    assert [n["economics"]["luxury"] for n in nodes] == [False, True, True, None]
    assert nodes[3]["economics"]["dealValueInOtherCurrencies"] == [
        {"amount": "1000", "currency": "JPY"}
    ]
    assert nodes[1]["economics"]["netValue"]["amount"] == "-10.00"
    assert [n["cadence"]["daysSinceLastContact"] for n in nodes] == [None, 1, 1, 1]
    assert [n["cadence"]["contactsLastWeek"] for n in nodes] == [0, 1, 2, 4]
    assert all(len(n["health"]["factors"]) == len(health.RULES) for n in nodes)
    # The page of accounts, the signals of all of them (cadence, health and
    # effort together), and the deal summaries (shared with lifetimeValue).
    assert taken == 3
