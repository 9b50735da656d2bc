"""Views built only from events, exactly once, and identical after a rebuild."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from domain.application import CommandMeta
from domain.errors import ContactNotFound, StageTransitionNotAllowed
from domain.values import (
    AccountKind,
    Channel,
    ComplaintSeverity,
    Direction,
    PurchaseIntent,
    SatisfactionLevel,
    Stage,
    Tier,
)
from projections.runner import VIEW_CLASSES

ALICE = CommandMeta(actor="alice")
EARLIER = datetime.now(tz=UTC) - timedelta(days=3)


def _row(db, sql, *params):
    cur = db.execute(sql, params)
    names = [c.name for c in cur.description]
    row = cur.fetchone()
    return None if row is None else dict(zip(names, row, strict=True))


def _story(app):
    """An account that went through most of what the first slice knows."""
    opened = app.open_account(ALICE, name="Acme Tools", kind=AccountKind.ORGANIZATION)
    account_id = opened.account_id
    ann = app.add_contact(ALICE, account_id, name="Ann Lee", email="ann@acme.test")
    app.update_contact(ALICE, account_id, ann.created_id, role="Head of purchasing")
    app.assign_manager(ALICE, account_id, "bob")
    app.assign_manager(CommandMeta("carol"), account_id, "carol", "bob left")
    call = app.log_interaction(
        ALICE,
        account_id,
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        occurred_at=EARLIER,
        participants=("Ann Lee",),
        summary="Quarterly review",
        effort_minutes=30,
    )
    app.log_interaction(
        ALICE,
        account_id,
        channel=Channel.VISIT,
        direction=Direction.OUTBOUND,
        occurred_at=EARLIER - timedelta(days=1),
    )
    app.record_written_confirmation(
        ALICE, account_id, call.created_id, confirmed_at=EARLIER + timedelta(hours=1)
    )
    app.change_tier(ALICE, account_id, Tier.PREFERRED_SUPPLIER, "priority deliveries")
    for stage in (Stage.AWARENESS, Stage.DISSOLUTION, Stage.EXPLORATION, Stage.AWARENESS):
        app.change_stage(CommandMeta("dave"), account_id, stage, "review")
    _complaints(app, account_id, ann.created_id)
    _surveys_and_deals(app, account_id, ann.created_id)
    return account_id


def _surveys_and_deals(app, account_id, contact_id):
    """Two surveys (one from Ann) and deals in two currencies."""
    for level, score, contact in (
        (SatisfactionLevel.VERY_SATISFIED, 10, contact_id),
        (SatisfactionLevel.NEUTRAL, 6, None),
    ):
        app.record_survey(
            ALICE,
            account_id,
            satisfaction=level,
            intent_to_buy_again=PurchaseIntent.UNSURE,
            likelihood_to_recommend=score,
            comment=f"scored {score}",
            contact_id=contact,
            answered_at=EARLIER,
        )
    for amount, currency in (("0.10", "EUR"), ("0.20", "EUR"), ("1500", "JPY")):
        app.close_deal(
            CommandMeta("erin"),
            account_id,
            amount=amount,
            currency=currency,
            product="torque wrenches",
            closed_at=EARLIER,
            place="Lyon",
        )


def _complaints(app, account_id, contact_id):
    """One complaint through its whole lifecycle, reopened once; one left open."""
    complaint = app.file_complaint(
        ALICE,
        account_id,
        category="delivery",
        severity=ComplaintSeverity.CRITICAL,
        description="Pallets a week late",
        channel=Channel.CALL,
        filed_at=EARLIER,
        contact_id=contact_id,
    ).created_id
    at = EARLIER
    for step, fields in (
        (app.acknowledge_complaint, {"acknowledged_at": at + timedelta(minutes=30)}),
        (
            app.escalate_complaint,
            {"escalated_to": "carol", "escalated_at": at + timedelta(hours=1)},
        ),
        (
            app.resolve_complaint,
            {"resolution": "Credit note", "resolved_at": at + timedelta(hours=5)},
        ),
        (
            app.reopen_complaint,
            {"reason": "Late again", "reopened_at": at + timedelta(days=1)},
        ),
        (
            app.resolve_complaint,
            {
                "resolution": "New carrier",
                "root_cause": "Carrier overbooked",
                "prevention_action": "Second carrier on contract",
                "resolved_at": at + timedelta(days=2),
            },
        ),
        (app.close_complaint, {"closed_at": at + timedelta(days=2, hours=1)}),
    ):
        step(ALICE, account_id, complaint, **fields)
    app.file_complaint(
        CommandMeta("erin"),
        account_id,
        category="billing",
        severity=ComplaintSeverity.LOW,
        description="Invoice twice",
        channel=Channel.EMAIL,
        filed_at=EARLIER + timedelta(days=1),
    )


def test_account_view_shows_the_current_state(app, projections, db):
    account_id = _story(app)
    projections.catch_up()
    view = _row(db, "SELECT * FROM account_view WHERE account_id = %s", account_id)
    assert view is not None
    assert (view["tier"], view["stage"], view["manager"]) == (
        "preferred_supplier",
        "awareness",
        "carol",
    )
    (contact,) = view["contacts"].values()
    assert (contact["name"], contact["role"]) == ("Ann Lee", "Head of purchasing")
    assert view["interaction_count"] == 2
    assert view["last_interaction_at"] == EARLIER
    assert view["pending_confirmations"] == 1  # the visit
    assert view["version"] == app.get_account(account_id).version


def test_stage_history_has_one_period_per_stage_entered(app, projections, db):
    account_id = _story(app)
    projections.catch_up()
    periods = db.execute(
        "SELECT value, previous, left_at IS NULL, actor, duration IS NULL"
        " FROM stage_history WHERE account_id = %s ORDER BY period",
        (account_id,),
    ).fetchall()
    assert periods == [
        ("exploration", None, False, "alice", False),
        ("awareness", "exploration", False, "dave", False),
        ("dissolution", "awareness", False, "dave", False),
        ("exploration", "dissolution", False, "dave", False),
        ("awareness", "exploration", True, "dave", True),
    ]
    durations = _row(
        db,
        "SELECT times_entered, is_current, first_entered_at < last_entered_at AS reentered"
        " FROM stage_durations WHERE account_id = %s AND value = 'exploration'",
        account_id,
    )
    assert durations == {"times_entered": 2, "is_current": False, "reentered": True}
    spent = db.execute(
        "SELECT sum(duration) FROM stage_history"
        " WHERE account_id = %s AND value = 'exploration'",
        (account_id,),
    ).fetchone()
    total = _row(
        db,
        "SELECT time_spent FROM stage_durations"
        " WHERE account_id = %s AND value = 'exploration'",
        account_id,
    )
    assert spent is not None
    assert total is not None
    assert total["time_spent"] == spent[0]


def test_tier_and_manager_histories_keep_every_period(app, projections, db):
    account_id = _story(app)
    projections.catch_up()
    tiers = db.execute(
        "SELECT value, reason FROM tier_history WHERE account_id = %s ORDER BY period",
        (account_id,),
    ).fetchall()
    assert tiers == [
        ("transactional", "account opened"),
        ("preferred_supplier", "priority deliveries"),
    ]
    managers = db.execute(
        "SELECT value, previous, actor FROM manager_history"
        " WHERE account_id = %s ORDER BY period",
        (account_id,),
    ).fetchall()
    assert managers == [("bob", None, "alice"), ("carol", "bob", "carol")]


def test_interaction_timeline_records_confirmation(app, projections, db):
    account_id = _story(app)
    projections.catch_up()
    rows = db.execute(
        "SELECT channel, oral, confirmed_at IS NOT NULL, participants"
        " FROM interaction_timeline WHERE account_id = %s ORDER BY occurred_at DESC",
        (account_id,),
    ).fetchall()
    assert rows == [("call", True, True, ["Ann Lee"]), ("visit", True, False, [])]


def test_each_event_is_applied_exactly_once(app, projections, db):
    account_id = _story(app)
    projections.catch_up()
    recorded = projections.recorder.read_after(0, 100_000)
    batch = [(app.mapper.to_domain_event(r.stored), r) for r in recorded]
    for view in projections.views.values():
        view.process(batch)  # a redelivered batch, as after a crash
    view = _row(
        db, "SELECT interaction_count FROM account_view WHERE account_id = %s", account_id
    )
    assert view == {"interaction_count": 2}
    (periods,) = db.execute(
        "SELECT count(*) FROM stage_history WHERE account_id = %s", (account_id,)
    ).fetchone() or (0,)
    assert periods == 5


def _dump(db, table):
    return db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def test_a_rebuild_reproduces_the_live_tables_exactly(app, projections, db):
    _story(app)
    _story(app)
    # Every deal's thank-you first, so that no runner writes one between the
    # live tables and the rebuild (a server's may be running on this database).
    projections.thank_you.catch_up()
    projections.catch_up()
    tables = [table for cls in VIEW_CLASSES for table in cls.tables]
    live = {table: _dump(db, table) for table in tables}
    seen: list[tuple[int, int]] = []
    projections.rebuild(projections.views, lambda done, total: seen.append((done, total)))
    assert {table: _dump(db, table) for table in tables} == live
    assert seen
    assert seen[-1][0] == seen[-1][1]
    for view in projections.views.values():
        assert view.position() == seen[-1][1]


def test_a_refused_command_writes_no_event_and_changes_no_view(app, projections, db):
    opened = app.open_account(ALICE, name="Solo", kind=AccountKind.INDIVIDUAL)
    projections.catch_up()
    events = "SELECT count(*) FROM rapport_events"
    before = (db.execute(events).fetchone(), _dump(db, "account_view"))
    with pytest.raises(ContactNotFound):
        app.update_contact(ALICE, opened.account_id, uuid4(), role="x")
    with pytest.raises(StageTransitionNotAllowed):
        app.change_stage(ALICE, opened.account_id, Stage.COMMITMENT)
    projections.catch_up()
    assert (db.execute(events).fetchone(), _dump(db, "account_view")) == before


def test_the_same_interaction_id_on_two_accounts_keeps_both_timelines(app, projections, db):
    shared = uuid4()
    accounts = [
        app.open_account(ALICE, name=f"Twin {i}", kind=AccountKind.GROUP).account_id
        for i in range(2)
    ]
    for account_id in accounts:
        app.log_interaction(
            ALICE,
            account_id,
            channel=Channel.CALL,
            direction=Direction.INBOUND,
            occurred_at=EARLIER,
            interaction_id=shared,
        )
    app.record_written_confirmation(ALICE, accounts[0], shared, confirmed_at=EARLIER)
    projections.catch_up()
    rows = db.execute(
        "SELECT account_id, confirmed_at IS NOT NULL FROM interaction_timeline"
        " WHERE interaction_id = %s ORDER BY account_id = %s DESC",
        (shared, accounts[0]),
    ).fetchall()
    assert rows == [(accounts[0], True), (accounts[1], False)]
    for view in projections.views.values():
        assert view.position() == projections.recorder.max_notification_id()


def test_a_rebuild_lets_readers_and_the_other_views_carry_on(
    app, projections, database_url
):
    opened = app.open_account(ALICE, name="Rebuilt", kind=AccountKind.GROUP)
    projections.catch_up()
    halfway, release = threading.Event(), threading.Event()

    def hold(done: int, total: int) -> None:
        halfway.set()
        assert release.wait(30)

    rebuild = threading.Thread(target=projections.rebuild, args=(["account_view"], hold))
    rebuild.start()
    try:
        assert halfway.wait(30)
        app.change_tier(ALICE, opened.account_id, Tier.PARTNER, "during the rebuild")
        with psycopg.connect(database_url, autocommit=True) as reader:
            reader.execute("SET statement_timeout = '2s'")
            row = reader.execute(
                "SELECT tier FROM account_view WHERE account_id = %s", (opened.account_id,)
            ).fetchone()
            assert row == ("transactional",)
            projections.catch_up()  # account_view is held: the others move on
            tiers = reader.execute(
                "SELECT value FROM tier_history WHERE account_id = %s ORDER BY period",
                (opened.account_id,),
            ).fetchall()
            assert tiers == [("transactional",), ("partner",)]
    finally:
        release.set()
        rebuild.join()
    projections.catch_up()
    with psycopg.connect(database_url, autocommit=True) as reader:
        row = reader.execute(
            "SELECT tier FROM account_view WHERE account_id = %s", (opened.account_id,)
        ).fetchone()
    assert row == ("partner",)


def test_a_failing_view_stays_behind_while_the_others_move_on(
    app, projections, db, monkeypatch, caplog
):
    """The views share one transaction a round; when one fails, each view is
    applied on its own, so the failure holds back that view alone."""
    projections.catch_up()
    account_id = _story(app)
    head = app.recorder.max_notification_id()
    failing = projections.views["tier_history"]

    def fail(*_):
        raise RuntimeError("a view's bug")

    monkeypatch.setattr(failing, "apply_batch", fail)
    projections.catch_up()
    # Another runner on this database (a test server's) may apply the view
    # meanwhile; this one tried it alone, and failed there too.
    assert "view tier_history failed" in caplog.text
    others = {n: v.position() for n, v in projections.views.items() if v is not failing}
    assert min(others.values()) >= head
    (count,) = db.execute(
        "SELECT interaction_count FROM account_view WHERE account_id = %s", (account_id,)
    ).fetchone()
    assert count == 2  # applied once, not again after the shared round failed

    # Next round the failing view goes alone; the others still share one.
    caplog.clear()
    app.change_tier(ALICE, account_id, Tier.PARTNER, "next round")
    projections.catch_up()
    assert "view tier_history failed" in caplog.text
    assert "in one transaction" not in caplog.text

    monkeypatch.undo()
    assert projections.catch_up() >= head  # a test server's process may write too
    assert failing.position() >= head
