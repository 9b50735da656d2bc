"""The surveys and deals views: CSAT, NPS and deal values worked out in SQL as
they are read, over windows that move with time; money exact, per currency."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from uuid import uuid4

import pytest
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.account import Account
from domain.application import CommandMeta
from domain.errors import ContactNotFound, InvalidValue
from domain.values import AccountKind, PurchaseIntent, SatisfactionLevel, Tier
from eventstore.audit import Audit
from projections import queries

ALICE = CommandMeta(actor="alice")
NOW = datetime.now(tz=UTC)
WINDOW = timedelta(days=30)
VS, S, N, SD, VD = list(SatisfactionLevel)


def _read(database_url, query, *args, **kwargs):
    async def run():
        async with await AsyncConnection.connect(
            database_url, row_factory=dict_row, autocommit=True
        ) as conn:
            return await query(conn, *args, **kwargs)

    return asyncio.run(run())


def _open(app, name="Surveyed AB", manager=None):
    account_id = app.open_account(ALICE, name=name, kind=AccountKind.GROUP).account_id
    if manager is not None:
        app.assign_manager(ALICE, account_id, manager)
    return account_id


def _survey(app, account_id, level, score, days_ago, **extra):
    return app.record_survey(
        ALICE,
        account_id,
        satisfaction=level,
        intent_to_buy_again=PurchaseIntent.YES,
        likelihood_to_recommend=score,
        answered_at=NOW - timedelta(days=days_ago),
        **extra,
    ).created_id


def _deal(app, account_id, amount, currency, days_ago, **extra):
    return app.close_deal(
        ALICE,
        account_id,
        amount=amount,
        currency=currency,
        product="torque wrenches",
        closed_at=NOW - timedelta(days=days_ago),
        **extra,
    ).created_id


def _expected(answers):
    """CSAT and NPS by their definitions, as exact fractions (None: no answers)."""
    if not answers:
        return None, None
    share = Fraction(100, len(answers))
    csat = share * sum(level in (VS, S) for level, _ in answers)
    promoters = sum(score >= 9 for _, score in answers)
    detractors = sum(score <= 6 for _, score in answers)
    return csat, share * (promoters - detractors)


TOLERANCE = Fraction(1, 10**9)  # numeric division keeps about twenty decimals


def _close(value, exact):
    if value is None or exact is None:
        return value is None and exact is None
    return abs(Fraction(value) - exact) < TOLERANCE


RECENT = [(VS, 10), (S, 9), (N, 7), (SD, 3), (VD, 0), (S, 8)]  # days 1..29 ago
BEFORE = [(VS, 10), (VD, 2), (S, 6)]  # 31..59 days ago
LONG_AGO = [(VD, 0), (VD, 0)]  # outside both windows


def test_csat_and_nps_over_a_rolling_window_and_the_window_before(
    app, projections, database_url
):
    account_id = _open(app)
    for i, (level, score) in enumerate(RECENT):
        _survey(app, account_id, level, score, days_ago=1 + 4 * i)
    for i, (level, score) in enumerate(BEFORE):
        _survey(app, account_id, level, score, days_ago=31 + 9 * i)
    for level, score in LONG_AGO:
        _survey(app, account_id, level, score, days_ago=75)
    quiet = _open(app, name="Silent Oy")
    projections.catch_up()

    rows = _read(
        database_url,
        queries.satisfaction_by_account,
        [account_id, quiet],
        WINDOW,
        as_of=NOW,
    )
    row = rows[account_id]
    csat, nps = _expected(RECENT)
    before_csat, before_nps = _expected(BEFORE)
    assert (row["survey_count"], row["previous_survey_count"]) == (6, 3)
    assert (row["csat"], row["nps"]) == (50, 0)  # 3 of 6 top-two; 2 promoters, 2 detractors
    assert _close(row["csat"], csat)
    assert _close(row["nps"], nps)
    assert _close(row["previous_csat"], before_csat)
    assert _close(row["previous_nps"], before_nps)
    assert _close(row["csat_change"], csat - before_csat)
    assert _close(row["nps_change"], nps - before_nps)
    assert (row["window_start"], row["window_end"]) == (NOW - WINDOW, NOW)
    assert row["previous_window_start"] == NOW - 2 * WINDOW

    # No survey: counts of 0, no figures.
    empty = rows[quiet]
    assert (empty["survey_count"], empty["csat"], empty["nps"], empty["nps_change"]) == (
        0,
        None,
        None,
        None,
    )

    # Forty days on, with no new event: the recent surveys form the window
    # before, and the oldest of them have left it.
    later = _read(
        database_url,
        queries.satisfaction_by_account,
        [account_id],
        WINDOW,
        as_of=NOW + timedelta(days=40),
    )[account_id]
    moved = [a for i, a in enumerate(RECENT) if 1 + 4 * i < 40 - 30 + 10]
    assert (later["survey_count"], later["csat"]) == (0, None)
    assert 0 < later["previous_survey_count"] == len(moved) < len(RECENT)
    assert _close(later["previous_csat"], _expected(moved)[0])
    assert _close(later["previous_nps"], _expected(moved)[1])
    # A longer window takes in the older surveys too.
    wide = _read(
        database_url,
        queries.satisfaction_by_account,
        [account_id],
        timedelta(days=60),
        as_of=NOW,
    )[account_id]
    assert wide["survey_count"] == len(RECENT) + len(BEFORE)
    assert _close(wide["nps"], _expected(RECENT + BEFORE)[1])


def test_the_portfolio_groups_by_tier_stage_and_manager(app, projections, database_url):
    tag = uuid4().hex[:8]
    bob, carol = f"bob-{tag}", f"carol-{tag}"
    partner = _open(app, manager=bob)
    app.change_tier(ALICE, partner, Tier.PARTNER, "joint plans")
    other_partner = _open(app, manager=carol)
    app.change_tier(ALICE, other_partner, Tier.PARTNER, "joint plans")
    plain = _open(app, manager=carol)
    answers = {
        partner: [(VS, 10), (N, 5)],
        other_partner: [(S, 9), (S, 8)],
        plain: [(VD, 0)],
    }
    for account_id, given in answers.items():
        for level, score in given:
            _survey(app, account_id, level, score, days_ago=3)
    _survey(app, plain, VS, 10, days_ago=40)  # in the window before
    projections.catch_up()

    def groups(group_by):
        rows = _read(
            database_url,
            queries.portfolio,
            group_by,
            WINDOW,
            as_of=NOW,
            managers=[bob, carol],
        )
        return {row["key"]: row for row in rows}

    by_tier = groups("tier")
    assert list(by_tier) == ["transactional", "partner"]  # the tiers' order
    partners = answers[partner] + answers[other_partner]
    assert by_tier["partner"]["survey_count"] == len(partners)
    assert _close(by_tier["partner"]["csat"], _expected(partners)[0])
    assert _close(by_tier["partner"]["nps"], _expected(partners)[1])
    assert by_tier["partner"]["previous_survey_count"] == 0
    assert by_tier["partner"]["nps_change"] is None
    transactional = by_tier["transactional"]
    assert (transactional["survey_count"], transactional["nps"]) == (1, -100)
    assert (transactional["previous_survey_count"], transactional["previous_nps"]) == (
        1,
        100,
    )
    assert transactional["nps_change"] == -200

    by_manager = groups("manager")
    assert list(by_manager) == [bob, carol]
    carols = answers[other_partner] + answers[plain]
    assert by_manager[carol]["survey_count"] == len(carols)
    assert _close(by_manager[carol]["csat"], _expected(carols)[0])
    assert _close(by_manager[bob]["nps"], _expected(answers[partner])[1])

    (stage,) = groups("stage").values()
    assert stage["key"] == "exploration"
    assert stage["survey_count"] == sum(len(given) for given in answers.values())


def test_a_refused_survey_or_deal_writes_nothing(app, projections, db):
    account_id = _open(app)
    projections.catch_up()
    count = "SELECT count(*) FROM rapport_events WHERE originator_id = %s"
    before = db.execute(count, (account_id,)).fetchone()
    with pytest.raises(ContactNotFound):
        _survey(app, account_id, VS, 10, days_ago=1, contact_id=uuid4())
    with pytest.raises(InvalidValue):
        _survey(app, account_id, VS, 11, days_ago=1)
    with pytest.raises(InvalidValue):
        _deal(app, account_id, "9.999", "EUR", days_ago=1)
    with pytest.raises(InvalidValue):
        _deal(app, account_id, "10", "ZZZ", days_ago=1)
    projections.catch_up()
    assert db.execute(count, (account_id,)).fetchone() == before
    for table in ("surveys", "deals"):
        rows = db.execute(
            f"SELECT count(*) FROM {table} WHERE account_id = %s", (account_id,)
        )
        assert rows.fetchone() == (0,)


def test_deal_values_are_exact_and_never_summed_across_currencies(
    app, projections, database_url, db
):
    account_id = _open(app, name="Dealer GmbH")
    _deal(app, account_id, "0.10", "EUR", days_ago=5)
    _deal(app, account_id, "0.20", "EUR", days_ago=100)
    _deal(app, account_id, "1500", "JPY", days_ago=10, place="Osaka")
    _deal(app, account_id, "2.5", "EUR", days_ago=400)
    none_yet = _open(app, name="No Deals Yet")
    projections.catch_up()
    amount = db.execute(
        "SELECT amount, pg_typeof(amount)::text FROM deals"
        " WHERE account_id = %s AND currency = 'EUR' ORDER BY closed_at DESC LIMIT 1",
        (account_id,),
    ).fetchone()
    assert amount == (Decimal("0.10"), "numeric")
    history = Audit(app).history(account_id, types=["DealClosed"])
    assert [(e.payload["amount"], e.payload["currency"]) for e in history] == [
        ("0.10", "EUR"),  # exact text in the event, never a JSON number
        ("0.20", "EUR"),
        ("1500", "JPY"),
        ("2.50", "EUR"),
    ]
    message = json.loads(json.dumps(history[0].message(personal_data="withheld")))
    assert message["payload"]["amount"] == "0.10"

    summaries = _read(database_url, queries.deal_summaries, [account_id, none_yet])
    assert none_yet not in summaries
    summary = summaries[account_id]
    assert summary["deal_count"] == 4
    assert summary["last_deal_at"] == NOW - timedelta(days=5)
    eur, jpy = summary["currencies"]
    assert (eur["currency"], eur["lifetime_value"]) == ("EUR", Decimal("2.80"))
    assert Decimal("0.10") + Decimal("0.20") + Decimal("2.50") == eur["lifetime_value"]
    assert (jpy["currency"], jpy["lifetime_value"]) == ("JPY", Decimal(1500))
    assert (eur["recent_value"], eur["previous_value"]) == (
        Decimal("0.10"),
        Decimal("0.20"),
    )
    assert (jpy["recent_value"], jpy["previous_value"]) == (Decimal(1500), 0)
    assert (eur["deal_count"], eur["trend_deals"]) == (3, 2)

    # A year on, every deal has left the trend's windows but the lifetime value.
    later = _read(
        database_url,
        queries.deal_summaries,
        [account_id],
        as_of=NOW + timedelta(days=365),
    )[account_id]
    assert [(c["lifetime_value"], c["trend_deals"]) for c in later["currencies"]] == [
        (Decimal("2.80"), 0),
        (Decimal(1500), 0),
    ]


def test_surveys_and_deals_survive_a_stored_snapshot(app):
    account_id = _open(app, name="Snapshot Surveys")
    survey = _survey(app, account_id, VS, 10, days_ago=1)
    deal = _deal(app, account_id, "10.00", "EUR", days_ago=1)
    snapshot = Account.Snapshot.take(app.get_account(account_id))
    app.snapshots.put([snapshot])
    account = app.get_account(account_id, version=3)  # a replay, from the snapshot
    assert (account.surveys, account.deals) == (
        {survey: NOW - timedelta(days=1)},
        {deal: NOW - timedelta(days=1)},
    )
    with pytest.raises(InvalidValue):
        _survey(app, account_id, VS, 10, days_ago=1, survey_id=survey)


def test_satisfaction_and_deals_are_loaded_in_one_query_each_for_a_page_of_accounts(
    app, projections, counted_query
):
    tag = uuid4().hex[:8]
    for i in range(4):
        account_id = _open(app, name=f"Batched {tag} {i}")
        for n in range(i):
            _survey(app, account_id, VS if n % 2 else VD, 10 - n, days_ago=n + 1)
            _deal(app, account_id, f"{n}.25", "EUR", days_ago=n + 1)
            _deal(app, account_id, f"{n + 1}00", "JPY", days_ago=n + 1)
    projections.catch_up()
    query = """query($search: String!) {
      accounts(filter: {search: $search}, first: 10) {
        edges { node {
          name dealCount lastDealAt
          lifetimeValue { amount currency }
          dealTrend { currency recent { amount } previous { amount } change { amount } }
          deals(first: 2) { edges { node { value { amount currency } } } }
          surveys(first: 5) { edges { node { likelihoodToRecommend } } }
          satisfaction { surveyCount csat nps trend { surveyCount npsChange } }
        } }
      }
    }"""

    result, taken = counted_query(query, {"search": tag})
    assert result.errors is None, result.errors
    nodes = [edge["node"] for edge in result.data["accounts"]["edges"]]
    assert [n["dealCount"] for n in nodes] == [2 * i for i in range(4)]
    assert nodes[0]["lifetimeValue"] == []
    assert nodes[0]["satisfaction"]["csat"] is None
    assert nodes[3]["lifetimeValue"] == [
        {"amount": "3.75", "currency": "EUR"},  # 0.25 + 1.25 + 2.25
        {"amount": "600", "currency": "JPY"},  # 100 + 200 + 300
    ]
    assert [len(n["deals"]["edges"]) for n in nodes] == [0, 2, 2, 2]
    assert [len(n["surveys"]["edges"]) for n in nodes] == [0, 1, 2, 3]
    assert [n["satisfaction"]["surveyCount"] for n in nodes] == [0, 1, 2, 3]
    assert nodes[2]["satisfaction"]["csat"] == 50
    assert nodes[3]["dealTrend"][0] == {
        "currency": "EUR",
        "recent": {"amount": "3.75"},
        "previous": {"amount": "0.00"},
        "change": {"amount": "3.75"},
    }
    # The page of accounts, then one query each: satisfaction, the first
    # surveys, the first deals, and the deal summaries (count, last deal,
    # lifetime value and trend together).
    assert taken == 5
