"""Follow-ups and goals in their views, and the thank-you process that follows
every deal up exactly once."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.runtime import open_store
from domain.account import Account
from domain.application import CommandMeta
from domain.personal import ERASED
from domain.values import AccountKind, Channel, Direction, FollowedKind
from eventstore.audit import Audit
from eventstore.recorder import recorder_of
from projections import queries
from projections.runner import Projections
from projections.thank_you import ACTOR, ThankYouPolicy, thank_you_follow_up_id

ALICE = CommandMeta(actor="alice")
NOW = datetime.now(tz=UTC)
# The server the end-to-end tests start may run its own thank-you process on
# the shared database: the assertions there hold whichever process gets first.
DEFAULT = ThankYouPolicy()


def _rows(db, table, account_id):
    cur = db.execute(
        f"SELECT * FROM {table} WHERE account_id = %s ORDER BY due", (account_id,)
    )
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _list(database_url, where, as_of=None, limit=100, after=None):
    async def run():
        async with await AsyncConnection.connect(
            database_url, row_factory=dict_row, autocommit=True
        ) as conn:
            return await queries.list_follow_ups(conn, where, limit, after, as_of)

    return asyncio.run(run())


def _account(app, manager="bob"):
    account_id = app.open_account(
        ALICE, name="Follow SA", kind=AccountKind.ORGANIZATION, manager=manager
    ).account_id
    interaction = app.log_interaction(
        ALICE,
        account_id,
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        occurred_at=NOW - timedelta(days=1),
        summary="Quarterly review",
    ).created_id
    return account_id, interaction


def _deal(app, account_id, closed_at=NOW - timedelta(hours=1)):
    return app.close_deal(
        ALICE,
        account_id,
        amount="1200",
        currency="EUR",
        product="torque wrenches",
        closed_at=closed_at,
    ).created_id


def _thank_yous(app, account_id):
    return Audit(app).history(account_id, types=["FollowUpScheduled"])


def test_the_view_follows_follow_ups_and_goals_through_their_lifecycles(
    app, projections, db
):
    account_id, interaction = _account(app)
    done, dropped = (
        app.schedule_follow_up(
            ALICE,
            account_id,
            due=NOW + timedelta(days=days),
            owner="carol",
            reason=f"Send Ann the terms ({days})",
            follows_kind=FollowedKind.INTERACTION,
            follows_id=interaction,
        ).created_id
        for days in (1, 2)
    )
    app.complete_follow_up(
        CommandMeta("carol"), account_id, done, completed_at=NOW, outcome="Terms sent"
    )
    app.cancel_follow_up(ALICE, account_id, dropped, reason="Ann is away")
    app.assign_manager(ALICE, account_id, "dave")
    goal = app.agree_goal(
        ALICE,
        account_id,
        description="Pilot in the Lyon plant",
        owner="carol",
        due=date(2026, 6, 30),
        phase="pilot",
    ).created_id
    app.achieve_goal(ALICE, account_id, goal, achieved_at=NOW)
    projections.catch_up()

    first, second = _rows(db, "follow_ups", account_id)
    assert (first["follow_up_id"], first["status"], first["outcome"]) == (
        done,
        "completed",
        "Terms sent",
    )
    assert (first["owner"], first["scheduled_by"], first["closed_by"]) == (
        "carol",
        "alice",
        "carol",
    )
    assert (first["follows_kind"], first["follows_id"]) == ("interaction", interaction)
    assert first["completed_at"] == NOW
    assert (second["status"], second["cancel_reason"]) == ("cancelled", "Ann is away")
    assert {first["manager"], second["manager"]} == {"dave"}
    (agreed,) = _rows(db, "goals", account_id)
    assert (agreed["goal_id"], agreed["status"], agreed["phase"]) == (
        goal,
        "achieved",
        "pilot",
    )
    assert (agreed["description"], agreed["due"], agreed["achieved_at"]) == (
        "Pilot in the Lyon plant",
        date(2026, 6, 30),
        NOW,
    )

    live = {t: _rows(db, t, account_id) for t in ("follow_ups", "goals")}
    projections.rebuild(["follow_ups", "goals"])
    assert {t: _rows(db, t, account_id) for t in live} == live


def test_overdue_shows_as_time_passes_and_is_filtered_before_the_page_is_cut(
    app, projections, database_url
):
    account_id, interaction = _account(app, manager=f"owner-{uuid4()}")
    owner = f"agent-{uuid4()}"
    ids = [
        app.schedule_follow_up(
            ALICE,
            account_id,
            due=NOW + timedelta(hours=hours),
            owner=owner,
            reason="Call back",
            follows_kind=FollowedKind.INTERACTION,
            follows_id=interaction,
        ).created_id
        for hours in (-3, -2, 1, 5)
    ]
    app.complete_follow_up(ALICE, account_id, ids[0], completed_at=NOW)
    projections.catch_up()

    def overdue(as_of=None, **where):
        rows = _list(
            database_url, queries.FollowUpFilter(owner=owner, overdue=True, **where), as_of
        )
        return [r["follow_up_id"] for r in rows]

    assert overdue() == [ids[1]]  # the completed one is not overdue, however late
    assert overdue(NOW + timedelta(hours=2)) == [ids[1], ids[2]]
    assert overdue(NOW + timedelta(hours=2), status="open") == [ids[1], ids[2]]
    later = _list(
        database_url,
        queries.FollowUpFilter(owner=owner, overdue=False),
        NOW + timedelta(hours=2),
    )
    assert [r["follow_up_id"] for r in later] == [ids[0], ids[3]]
    # Soonest due first, a page at a time, without gaps or repeats.
    page = _list(database_url, queries.FollowUpFilter(owner=owner), limit=3)
    rest = _list(
        database_url,
        queries.FollowUpFilter(owner=owner),
        after=(page[-1]["due"], page[-1]["account_id"], page[-1]["follow_up_id"]),
    )
    assert [r["follow_up_id"] for r in page + rest] == ids
    # Scoped by the account's manager, not by the owner.
    manager = _rows_manager(database_url, account_id)
    assert _list(database_url, queries.FollowUpFilter(owner=owner, managers=["x"])) == []
    assert len(_list(database_url, queries.FollowUpFilter(managers=[manager]))) == 4


def _rows_manager(database_url, account_id):
    rows = _list(database_url, queries.FollowUpFilter(account_id=account_id))
    return rows[0]["manager"]


def test_erasing_the_account_erases_follow_up_and_goal_texts(app, projections, db):
    account_id, interaction = _account(app)
    follow_up = app.schedule_follow_up(
        ALICE,
        account_id,
        due=NOW,
        owner="carol",
        reason="Ask Ann Lee about her knee",
        follows_kind=FollowedKind.INTERACTION,
        follows_id=interaction,
    ).created_id
    app.cancel_follow_up(ALICE, account_id, follow_up, reason="Ann Lee left")
    goal = app.agree_goal(
        ALICE, account_id, description="Meet Ann's CFO", owner="carol", due=date(2026, 6, 1)
    ).created_id
    app.drop_goal(ALICE, account_id, goal, reason="Ann's CFO retired")
    app.erase_personal_data(CommandMeta("dpo"), account_id, reason="GDPR request")
    projections.catch_up()

    (row,) = _rows(db, "follow_ups", account_id)
    assert (row["reason"], row["cancel_reason"], row["owner"]) == (ERASED, ERASED, "carol")
    (goal_row,) = _rows(db, "goals", account_id)
    assert (goal_row["description"], goal_row["drop_reason"]) == (ERASED, ERASED)
    payloads = [e.payload for e in Audit(app).history(account_id, limit=100)]
    texts = [p.get(k) for p in payloads for k in ("reason", "description", "outcome")]
    assert not any("Ann" in str(text) for text in texts)
    raw = str(
        db.execute(
            "SELECT array_agg(state) FROM rapport_events WHERE originator_id = %s",
            (account_id,),
        ).fetchone()
    )
    assert "knee" not in raw
    assert "CFO" not in raw


def test_after_a_deal_the_process_schedules_one_thank_you(app, projections):
    account_id, _ = _account(app, manager="bob")
    closed_at = NOW - timedelta(hours=2)
    deal_id = _deal(app, account_id, closed_at)
    # Reassigned after the deal: the follow-up is the manager's of that time.
    app.assign_manager(ALICE, account_id, "carol")
    projections.thank_you.catch_up()
    projections.thank_you.catch_up()  # again over the same events

    (scheduled,) = _thank_yous(app, account_id)
    payload = scheduled.payload
    assert payload["follow_up_id"] == str(thank_you_follow_up_id(deal_id))
    assert (payload["owner"], payload["follows_kind"], payload["follows_id"]) == (
        "bob",
        "deal",
        str(deal_id),
    )
    assert datetime.fromisoformat(payload["due"]) == closed_at + DEFAULT.delay
    assert str(deal_id) in payload["reason"]
    assert scheduled.recorded.actor == ACTOR
    (deal_event,) = Audit(app).history(account_id, types=["DealClosed"])
    assert scheduled.recorded.causation_id == deal_event.recorded.event_id
    assert projections.thank_you.position() >= scheduled.recorded.position - 1


def test_no_thank_you_for_other_events_and_the_fallback_owner_without_a_manager(
    app, projections
):
    quiet, interaction = _account(app)
    app.schedule_follow_up(
        ALICE,
        quiet,
        due=NOW,
        owner="carol",
        reason="Call back",
        follows_kind=FollowedKind.INTERACTION,
        follows_id=interaction,
    )
    unmanaged = app.open_account(ALICE, name="Nobody's", kind=AccountKind.GROUP).account_id
    _deal(app, unmanaged)
    projections.thank_you.catch_up()

    assert [e.recorded.actor for e in _thank_yous(app, quiet)] == ["alice"]
    (scheduled,) = _thank_yous(app, unmanaged)
    assert scheduled.payload["owner"] == DEFAULT.fallback_owner


def test_a_crash_between_scheduling_and_tracking_or_a_reset_schedules_nothing_twice(
    app, projections, db
):
    account_id, _ = _account(app)
    deal_id = _deal(app, account_id)
    (deal_event,) = recorder_of(app).account_events(
        account_id, topics=[get_topic(Account.DealClosed)]
    )
    process = projections.thank_you
    before = process.position()
    # The process wrote the follow-up and died before recording its position.
    process.thank(deal_event)
    assert process.position() == before
    process.catch_up()
    assert process.position() > before
    # Restarted with its tracking set back before the deal.
    db.execute(
        "UPDATE thank_you_tracking SET notification_id = %s", (deal_event.position - 1,)
    )
    process.catch_up()
    (scheduled,) = _thank_yous(app, account_id)
    assert scheduled.payload["follows_id"] == str(deal_id)


def test_an_erased_account_gets_its_thank_you_without_a_reason(app, projections):
    account_id, _ = _account(app)
    app.erase_personal_data(CommandMeta("dpo"), account_id, reason="GDPR request")
    _deal(app, account_id)
    projections.thank_you.catch_up()
    (scheduled,) = _thank_yous(app, account_id)
    assert scheduled.payload["reason"] == ""


def _wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the runner did not get there")
        time.sleep(0.05)


def _run(projections):
    stop = threading.Event()
    thread = threading.Thread(target=projections.run, args=(stop, 0.2), daemon=True)
    thread.start()
    return stop, thread


def test_the_runner_schedules_the_thank_you_once_across_a_restart_from_zero(
    empty_database_url,
):
    app, _ = open_store(empty_database_url)
    policy = ThankYouPolicy(delay=timedelta(hours=3), fallback_owner="desk")
    projections = Projections(app, empty_database_url, thank_you=policy)
    try:
        stop, thread = _run(projections)
        try:
            account_id, _ = _account(app, manager="bob")
            closed_at = NOW - timedelta(minutes=5)
            deal_id = _deal(app, account_id, closed_at)
            follow_up_id = thank_you_follow_up_id(deal_id)

            def in_view():
                return any(
                    r["follow_up_id"] == follow_up_id
                    for r in _list(
                        empty_database_url, queries.FollowUpFilter(account_id=account_id)
                    )
                )

            _wait_for(in_view)
        finally:
            stop.set()
            thread.join(10)
        (row,) = _list(empty_database_url, queries.FollowUpFilter(account_id=account_id))
        assert (row["owner"], row["due"], row["scheduled_by"]) == (
            "bob",
            closed_at + timedelta(hours=3),
            ACTOR,
        )
        # Restarted with its tracking gone: it reads every event again.
        with recorder_of(app).datastore.transaction(commit=True) as cur:
            cur.execute("DELETE FROM thank_you_tracking")
        assert projections.thank_you.position() == 0
        latest = recorder_of(app).max_notification_id()
        stop, thread = _run(projections)
        try:
            _wait_for(lambda: projections.thank_you.position() >= latest)
        finally:
            stop.set()
            thread.join(10)
        assert [e.payload["follow_up_id"] for e in _thank_yous(app, account_id)] == [
            str(follow_up_id)
        ]
    finally:
        app.close()
