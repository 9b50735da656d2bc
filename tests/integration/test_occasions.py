"""Upcoming occasions worked out in SQL as they are read, as of fixed days:
year wrap, 29 February, greetings per year, reach, erasure and rebuilds."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.account import Occasion
from domain.application import CommandMeta
from domain.values import AccountKind, Channel, Direction, OccasionKind
from projections import queries

ALICE = CommandMeta(actor="alice")
CHRISTMAS = datetime(2026, 12, 25, 15, 0, tzinfo=UTC)
FIRST_DEAL_AT = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)


def _upcoming(database_url, as_of, days=14, **scope):
    async def run():
        async with await AsyncConnection.connect(
            database_url, row_factory=dict_row, autocommit=True
        ) as conn:
            return await queries.upcoming_occasions(conn, days, 100, as_of=as_of, **scope)

    return asyncio.run(run())


def _found(rows):
    return [
        (
            row["occasion_kind"],
            row["occasion_contact"] and row["occasion_contact"]["name"],
            row["occasion_date"],
            row["greeted"],
        )
        for row in rows
    ]


def _customer(app, manager):
    """An account with a founding day on 26 December, a first deal on 31
    December 2025, and contacts born on 2 January, 29 February and 12 April;
    one more removed, one more erased."""
    account_id = app.open_account(
        ALICE,
        name="Acme Tools",
        kind=AccountKind.ORGANIZATION,
        founded_on=date(1994, 12, 26),
        manager=manager,
    ).account_id
    contacts = {}
    for name, birthday in (
        ("Jan Novak", date(1985, 1, 2)),
        ("Lea Leap", date(1992, 2, 29)),
        ("Ann Lee", date(1980, 4, 12)),
        ("Bo Berg", date(1975, 12, 30)),
        ("Cy Dahl", date(1970, 12, 27)),
    ):
        contacts[name] = app.add_contact(
            ALICE, account_id, name=name, birthday=birthday
        ).created_id
    app.remove_contact(ALICE, account_id, contacts["Bo Berg"], reason="left Acme")
    app.erase_personal_data(
        ALICE, account_id, contact_id=contacts["Cy Dahl"], reason="Request DPO-9"
    )
    for closed_at in (FIRST_DEAL_AT, FIRST_DEAL_AT + timedelta(days=100)):
        app.close_deal(
            ALICE,
            account_id,
            amount="100.00",
            currency="EUR",
            product="wrenches",
            closed_at=closed_at,
        )
    return account_id, contacts


def _greet(app, account_id, occasion):
    return app.log_interaction(
        ALICE,
        account_id,
        channel=Channel.GREETING,
        direction=Direction.OUTBOUND,
        occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
        occasion=occasion,
    )


def test_occasions_wrap_the_year_and_29_february_falls_on_the_28th(
    app, projections, database_url
):
    manager = f"occasions.{uuid4().hex[:8]}"
    _customer(app, manager)
    projections.catch_up()

    # From Christmas 2026 to 8 January 2027, both included: the removed and the
    # erased contacts' birthdays (30 and 27 December) are not there.
    rows = _upcoming(database_url, CHRISTMAS, manager=manager)
    assert _found(rows) == [
        ("founding_day", None, date(2026, 12, 26), False),
        ("first_deal_anniversary", None, date(2026, 12, 31), False),
        ("birthday", "Jan Novak", date(2027, 1, 2), False),
    ]
    assert [(row["occasion_year"], row["occasion_since"]) for row in rows] == [
        (2026, date(1994, 12, 26)),
        (2026, date(2025, 12, 31)),  # the UTC day of the first deal
        (2027, date(1985, 1, 2)),
    ]
    # The account's row comes along, its own columns intact.
    assert (rows[0]["name"], rows[0]["kind"]) == ("Acme Tools", "organization")
    # Both ends are included; a window of 0 days is today alone.
    assert _found(_upcoming(database_url, CHRISTMAS, days=1, manager=manager)) == [
        ("founding_day", None, date(2026, 12, 26), False)
    ]
    assert _upcoming(database_url, CHRISTMAS, days=0, manager=manager) == []
    on_the_day = CHRISTMAS + timedelta(days=1, hours=8)
    assert len(_upcoming(database_url, on_the_day, days=0, manager=manager)) == 1

    # 29 February: on the 28th in 2027, on the 29th in the leap year 2028.
    for as_of, falls_on in (
        (datetime(2027, 2, 20, tzinfo=UTC), date(2027, 2, 28)),
        (datetime(2028, 2, 20, tzinfo=UTC), date(2028, 2, 29)),
    ):
        rows = _upcoming(database_url, as_of, manager=manager)
        assert _found(rows) == [("birthday", "Lea Leap", falls_on, False)]

    # A year ahead: each occasion once, and those on the window's ends twice.
    year = _upcoming(database_url, CHRISTMAS, days=366, manager=manager)
    assert [
        (r["occasion_kind"], r["occasion_date"])
        for r in year
        if r["occasion_kind"] != "birthday"
    ] == [
        ("founding_day", date(2026, 12, 26)),
        ("first_deal_anniversary", date(2026, 12, 31)),
        ("founding_day", date(2027, 12, 26)),
    ]
    assert sorted(
        r["occasion_contact"]["name"] for r in year if r["occasion_kind"] == "birthday"
    ) == [
        "Ann Lee",
        "Jan Novak",
        "Lea Leap",
    ]
    # Nothing before the year after it began: the first deal was in 2025.
    early = _upcoming(database_url, datetime(2025, 12, 30, tzinfo=UTC), manager=manager)
    assert "first_deal_anniversary" not in {row["occasion_kind"] for row in early}


def test_a_greeting_marks_its_occasion_for_its_year_only(app, projections, database_url):
    manager = f"occasions.{uuid4().hex[:8]}"
    account_id, contacts = _customer(app, manager)
    _greet(app, account_id, Occasion(OccasionKind.BIRTHDAY, 2027, contacts["Jan Novak"]))
    _greet(app, account_id, Occasion(OccasionKind.FOUNDING_DAY, 2026))
    projections.catch_up()

    rows = _upcoming(database_url, CHRISTMAS, manager=manager)
    assert [(row["occasion_kind"], row["greeted"]) for row in rows] == [
        ("founding_day", True),
        ("first_deal_anniversary", False),
        ("birthday", True),
    ]
    next_year = _upcoming(database_url, CHRISTMAS + timedelta(days=365), manager=manager)
    assert [
        (row["occasion_kind"], row["occasion_year"], row["greeted"]) for row in next_year
    ] == [
        ("founding_day", 2027, False),
        ("first_deal_anniversary", 2027, False),
        ("birthday", 2028, False),
    ]
    (greeting,) = [
        row
        for row in _timeline(database_url, account_id)
        if row["occasion_kind"] == "birthday"
    ]
    assert (greeting["occasion_contact_id"], greeting["occasion_year"]) == (
        contacts["Jan Novak"],
        2027,
    )


def _timeline(database_url, account_id):
    async def run():
        async with await AsyncConnection.connect(
            database_url, row_factory=dict_row, autocommit=True
        ) as conn:
            return await queries.interactions(conn, account_id, 100, None)

    return asyncio.run(run())


def test_occasions_stay_within_reach(app, projections, database_url):
    mine, theirs = (f"occasions.{uuid4().hex[:8]}" for _ in range(2))
    _customer(app, mine)
    _customer(app, theirs)
    projections.catch_up()
    reached = _upcoming(database_url, CHRISTMAS, managers=[mine])
    assert {row["manager"] for row in reached} == {mine}
    assert len(reached) == 3
    both = _upcoming(database_url, CHRISTMAS, managers=[mine, theirs])
    assert {row["manager"] for row in both} == {mine, theirs}
    assert _upcoming(database_url, CHRISTMAS, manager=theirs, managers=[mine]) == []


def test_an_erased_account_keeps_only_its_first_deals_anniversary(
    app, projections, database_url, db
):
    manager = f"occasions.{uuid4().hex[:8]}"
    account_id, _ = _customer(app, manager)
    raw = db.execute(
        "SELECT string_agg(convert_from(state, 'UTF8'), ' ') FROM rapport_events"
        " WHERE originator_id = %s",
        (account_id,),
    ).fetchone()[0]
    assert "1994-12-26" not in raw  # the founding date is sealed like the profile
    assert "1985-01-02" not in raw
    app.erase_personal_data(ALICE, account_id, reason="Request DPO-10")
    projections.catch_up()
    assert _found(_upcoming(database_url, CHRISTMAS, manager=manager)) == [
        ("first_deal_anniversary", None, date(2026, 12, 31), False)
    ]
    view = db.execute(
        "SELECT founded_on FROM account_view WHERE account_id = %s", (account_id,)
    ).fetchone()
    assert view == (None,)
    assert app.get_account(account_id).founded_on is None


def test_a_rebuild_gives_the_same_occasions(app, projections, database_url):
    manager = f"occasions.{uuid4().hex[:8]}"
    account_id, contacts = _customer(app, manager)
    _greet(app, account_id, Occasion(OccasionKind.BIRTHDAY, 2027, contacts["Jan Novak"]))
    app.update_profile(ALICE, account_id, founded_on=date(1994, 12, 28))
    projections.catch_up()
    before = _upcoming(database_url, CHRISTMAS, manager=manager)
    assert before[0]["occasion_date"] == date(2026, 12, 28)
    projections.rebuild(["account_view", "interaction_timeline", "deals"])
    after = _upcoming(database_url, CHRISTMAS, manager=manager)
    assert _found(after) == _found(before)
    assert [row["greeted"] for row in after] == [False, False, True]


def test_occasions_and_their_accounts_load_in_fixed_queries(
    app, projections, counted_query
):
    manager = f"occasions.{uuid4().hex[:8]}"
    for _ in range(3):
        account_id, _ = _customer(app, manager)
        _greet(app, account_id, Occasion(OccasionKind.FOUNDING_DAY, 2026))
    projections.catch_up()
    query = """query($manager: String!) {
      upcomingOccasions(days: 366, manager: $manager) {
        kind year greeted contact { name }
        account { name manager health { score } lifetimeValue { amount } }
      }
    }"""
    result, taken = counted_query(query, {"manager": manager})
    assert result.errors is None, result.errors
    occasions = result.data["upcomingOccasions"]
    assert {o["account"]["manager"] for o in occasions} == {manager}
    assert len({o["account"]["name"] for o in occasions}) == 1  # all "Acme Tools"
    assert sum(o["kind"] == "BIRTHDAY" for o in occasions) == 3 * 3
    # The occasions with their accounts, the accounts' signals, their deals.
    assert taken == 3
