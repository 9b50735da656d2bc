"""The complaints view: built from events, breaches worked out as it is read."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.account import Account
from domain.application import CommandMeta
from domain.complaints import DEFAULT_COMPLAINT_TARGETS, ComplaintTargets
from domain.errors import ComplaintNotResolved
from domain.values import AccountKind, Channel, ComplaintSeverity, ComplaintStatus
from projections import queries

ALICE = CommandMeta(actor="alice")
NOW = datetime.now(tz=UTC)


def _row(db, account_id, complaint_id):
    cur = db.execute(
        "SELECT * FROM complaints WHERE account_id = %s AND complaint_id = %s",
        (account_id, complaint_id),
    )
    names = [c.name for c in cur.description]
    row = cur.fetchone()
    return None if row is None else dict(zip(names, row, strict=True))


def _file(app, account_id, severity=ComplaintSeverity.CRITICAL, filed_at=NOW, **extra):
    facts = {
        "category": "delivery",
        "severity": severity,
        "description": "Pallets late",
        "channel": Channel.CALL,
        "filed_at": filed_at,
    }
    return app.file_complaint(ALICE, account_id, **(facts | extra)).created_id


def _list(database_url, where, targets=DEFAULT_COMPLAINT_TARGETS, as_of=None, **page):
    async def run():
        async with await AsyncConnection.connect(
            database_url, row_factory=dict_row, autocommit=True
        ) as conn:
            return await queries.list_complaints(
                conn, where, targets, page.get("limit", 100), page.get("after"), as_of
            )

    return asyncio.run(run())


def test_the_view_follows_a_complaint_through_its_lifecycle(app, projections, db):
    account_id = app.open_account(
        ALICE, name="Lifecycle AB", kind=AccountKind.GROUP
    ).account_id
    ann = app.add_contact(ALICE, account_id, name="Ann Lee").created_id
    app.assign_manager(ALICE, account_id, "bob")
    filed = NOW - timedelta(days=3)
    complaint = _file(app, account_id, filed_at=filed, contact_id=ann)
    app.acknowledge_complaint(
        ALICE, account_id, complaint, acknowledged_at=filed + timedelta(minutes=20)
    )
    app.escalate_complaint(
        CommandMeta("dave"),
        account_id,
        complaint,
        escalated_to="carol",
        level=2,
        reason="Third time",
        escalated_at=filed + timedelta(minutes=40),
    )
    app.resolve_complaint(
        ALICE,
        account_id,
        complaint,
        resolution="Credit note",
        root_cause="Carrier overbooked",
        resolved_at=filed + timedelta(hours=3),
    )
    projections.catch_up()
    row = _row(db, account_id, complaint)
    assert row is not None
    assert (row["status"], row["manager"], row["contact_id"], row["filed_by"]) == (
        "resolved",
        "bob",
        ann,
        "alice",
    )
    assert (row["escalation_level"], row["escalated_to"], row["escalation_reason"]) == (
        2,
        "carol",
        "Third time",
    )
    assert row["time_to_acknowledge"] == timedelta(minutes=20)
    assert row["time_to_resolve"] == timedelta(hours=3)
    assert (row["resolution"], row["root_cause"]) == ("Credit note", "Carrier overbooked")

    app.reopen_complaint(
        ALICE,
        account_id,
        complaint,
        reason="Late again",
        reopened_at=filed + timedelta(days=1),
    )
    app.assign_manager(ALICE, account_id, "erin", "bob moved on")
    projections.catch_up()
    row = _row(db, account_id, complaint)
    assert row is not None
    assert (row["status"], row["reopen_count"], row["reopen_reason"]) == (
        "reopened",
        1,
        "Late again",
    )
    assert (row["resolved_at"], row["resolution"], row["time_to_resolve"]) == (None,) * 3
    assert row["manager"] == "erin"  # the account's manager now

    app.resolve_complaint(
        ALICE,
        account_id,
        complaint,
        resolution="New carrier",
        resolved_at=filed + timedelta(days=2),
    )
    closed = app.close_complaint(ALICE, account_id, complaint, closed_at=NOW)
    projections.catch_up()
    row = _row(db, account_id, complaint)
    assert row is not None
    assert (row["status"], row["closed_at"], row["time_to_resolve"]) == (
        "closed",
        NOW,
        timedelta(days=2),
    )
    assert row["position"] == closed.position
    account = db.execute(
        "SELECT open_complaints, version FROM account_view WHERE account_id = %s",
        (account_id,),
    ).fetchone()
    assert account == (0, closed.version)


def test_the_account_view_counts_open_complaints_and_keeps_its_version(
    app, projections, db
):
    account_id = app.open_account(
        ALICE, name="Counted Oy", kind=AccountKind.GROUP
    ).account_id
    first, second = _file(app, account_id), _file(app, account_id)
    app.acknowledge_complaint(ALICE, account_id, first, acknowledged_at=NOW)
    outcome = app.resolve_complaint(
        ALICE, account_id, first, resolution="Refund", resolved_at=NOW
    )
    projections.catch_up()
    assert db.execute(
        "SELECT open_complaints, version FROM account_view WHERE account_id = %s",
        (account_id,),
    ).fetchone() == (1, outcome.version)
    with pytest.raises(ComplaintNotResolved):
        app.close_complaint(ALICE, account_id, second, closed_at=NOW)
    projections.catch_up()
    assert app.get_account(account_id).version == outcome.version
    row = _row(db, account_id, second)
    assert row is not None
    assert (row["status"], row["closed_at"]) == ("filed", None)


def test_breaches_show_as_time_passes_without_an_event(app, projections, database_url):
    account_id = app.open_account(
        ALICE, name="Clock GmbH", kind=AccountKind.GROUP
    ).account_id
    complaint = _file(app, account_id, filed_at=NOW - timedelta(minutes=30))
    projections.catch_up()
    mine = queries.ComplaintFilter(account_id=account_id)

    (now,) = _list(database_url, mine)
    assert (now["acknowledge_breached"], now["resolve_breached"], now["breached"]) == (
        False,
        False,
        False,
    )
    assert now["acknowledge_due_at"] == NOW + timedelta(minutes=30)
    (later,) = _list(database_url, mine, as_of=NOW + timedelta(hours=1))
    assert (later["acknowledge_breached"], later["breached"]) == (True, True)
    (much_later,) = _list(database_url, mine, as_of=NOW + timedelta(days=2))
    assert much_later["resolve_breached"] is True

    # Acknowledged in time: that target is met for good; resolution still runs.
    app.acknowledge_complaint(ALICE, account_id, complaint, acknowledged_at=NOW)
    projections.catch_up()
    (later,) = _list(database_url, mine, as_of=NOW + timedelta(hours=1))
    assert (later["acknowledge_breached"], later["breached"]) == (False, False)
    (much_later,) = _list(database_url, mine, as_of=NOW + timedelta(days=2))
    assert (much_later["acknowledge_breached"], much_later["resolve_breached"]) == (
        False,
        True,
    )
    # Stricter targets: the same acknowledgement came late.
    strict = ComplaintTargets.parse("critical=10m/1h")
    (strictly,) = _list(database_url, mine, targets=strict)
    assert (strictly["acknowledge_breached"], strictly["resolve_breached"]) == (True, False)


def test_the_breached_filter_works_in_sql_before_the_page_is_cut(
    app, projections, database_url
):
    manager = f"breach-{uuid4().hex[:8]}"
    account_id = app.open_account(
        ALICE, name="Filter AS", kind=AccountKind.GROUP
    ).account_id
    app.assign_manager(ALICE, account_id, manager)
    # The newest complaints are fine; the breached ones are older than a page.
    overdue = [
        _file(app, account_id, filed_at=NOW - timedelta(hours=hours)) for hours in (5, 6)
    ]
    fine = [_file(app, account_id, filed_at=NOW - timedelta(minutes=m)) for m in (1, 2, 3)]
    low = _file(
        app, account_id, severity=ComplaintSeverity.LOW, filed_at=NOW - timedelta(hours=7)
    )
    projections.catch_up()

    def ids(**where):
        rows = _list(
            database_url, queries.ComplaintFilter(manager=manager, **where), limit=2
        )
        return [row["complaint_id"] for row in rows]

    assert ids(breached=True) == overdue
    assert ids(breached=False) == fine[:2]
    assert ids(breached=False, severity="low") == [low]
    assert ids(status="filed", severity="critical", breached=True) == overdue
    assert ids(status="acknowledged") == []


def test_complaints_page_newest_first_without_gaps_or_repeats(
    app, projections, database_url
):
    manager = f"pager-{uuid4().hex[:8]}"
    filed: list[tuple[datetime, UUID, UUID]] = []
    same_moment = NOW - timedelta(hours=2)
    for i in range(3):
        account_id = app.open_account(
            ALICE, name=f"Pager {i}", kind=AccountKind.GROUP
        ).account_id
        app.assign_manager(ALICE, account_id, manager)
        filed.extend(
            (moment, account_id, _file(app, account_id, filed_at=moment))
            for moment in (same_moment, same_moment - timedelta(minutes=i))
        )
    projections.catch_up()
    expected = [key[2] for key in sorted(filed, reverse=True)]
    seen, after = [], None
    while True:
        rows = _list(
            database_url, queries.ComplaintFilter(manager=manager), limit=2, after=after
        )
        seen += [row["complaint_id"] for row in rows]
        if len(rows) < 2:
            break
        last = rows[-1]
        after = (last["filed_at"], last["account_id"], last["complaint_id"])
    assert seen == expected


def test_account_complaints_are_loaded_in_one_query_for_a_page_of_accounts(
    app, projections, counted_query
):
    tag = uuid4().hex[:8]
    for i in range(4):
        account_id = app.open_account(
            ALICE, name=f"Batched {tag} {i}", kind=AccountKind.GROUP
        ).account_id
        for n in range(i):
            _file(app, account_id, filed_at=NOW - timedelta(days=n), description=f"{i}/{n}")
    projections.catch_up()
    query = """query($search: String!) {
      accounts(filter: {search: $search}, first: 10) {
        edges { node { name openComplaints complaints { description account { name } } } }
      }
    }"""

    result, taken = counted_query(query, {"search": tag})
    assert result.errors is None
    nodes = [edge["node"] for edge in result.data["accounts"]["edges"]]
    assert [
        (n["name"], n["openComplaints"], [c["description"] for c in n["complaints"]])
        for n in nodes
    ] == [(f"Batched {tag} {i}", i, [f"{i}/{n}" for n in range(i)]) for i in range(4)]
    assert all(c["account"]["name"] == n["name"] for n in nodes for c in n["complaints"])
    assert taken == 2  # the page of accounts, then every account's complaints


def test_complaints_survive_a_snapshot(app):
    account_id = app.open_account(
        ALICE, name="Snapshot Ltd", kind=AccountKind.GROUP
    ).account_id
    complaint = _file(app, account_id)
    app.acknowledge_complaint(ALICE, account_id, complaint, acknowledged_at=NOW)
    app.escalate_complaint(
        ALICE, account_id, complaint, escalated_to="carol", escalated_at=NOW
    )
    snapshot = Account.Snapshot.take(app.get_account(account_id))
    [[key, record]] = snapshot.state["complaints"]
    snapshot.state["complaints"] = [[key, replace(record, escalation_level=7)]]
    app.snapshots.put([snapshot])
    account = app.get_account(account_id, version=4)  # a replay, from the snapshot
    record = account.complaints[complaint]
    assert (record.status, record.escalation_level) == (ComplaintStatus.ACKNOWLEDGED, 7)
    app.resolve_complaint(
        ALICE, account_id, complaint, resolution="Refund", resolved_at=NOW
    )
    assert (
        app.get_account(account_id).complaints[complaint].status is ComplaintStatus.RESOLVED
    )


def test_a_snapshot_from_before_complaints_reads_with_none(app):
    account_id = app.open_account(
        ALICE, name="Older Ltd", kind=AccountKind.GROUP
    ).account_id
    app.assign_manager(ALICE, account_id, "bob")
    snapshot = Account.Snapshot.take(app.get_account(account_id))
    snapshot.state.pop("complaints")
    snapshot.state["class_version"] = 3
    snapshot.state["interactions"] = []  # version 3 kept a list of [id, record]
    snapshot.state["manager"] = "read from the snapshot"
    app.snapshots.put([snapshot])
    account = app.get_account(account_id, version=2)
    assert (account.manager, account.complaints) == ("read from the snapshot", {})
    complaint = _file(app, account_id)
    assert complaint in app.get_account(account_id).complaints
