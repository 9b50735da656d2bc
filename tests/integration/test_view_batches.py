"""Views write a batch at once: the rows equal those of its events one at a time.

A view queues what its handlers write for a batch (``projections.base.Writes``)
and sends it in runs: COPY for new rows, one statement for runs of the same
statement, one UPDATE for an account's changes in the batch. Nothing of that
may show in the rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import DictRow, dict_row

from domain.application import CommandMeta
from domain.values import (
    AccountKind,
    Address,
    Channel,
    Classification,
    ComplaintSeverity,
    Direction,
    FollowedKind,
    PurchaseIntent,
    RelationshipType,
    SatisfactionLevel,
    Stage,
    Tier,
)
from projections.base import Insert, Writes

CLERK = CommandMeta("clerk")
EARLIER = datetime.now(tz=UTC) - timedelta(days=5)


def _interleaved(app) -> list[UUID]:
    """Three accounts whose commands take turns: changes that fold, contact
    changes that cannot, and erasures (of a contact, of an account) between them."""
    a, b, c = (
        app.open_account(
            CLERK,
            name=f"Interleaved {n}",
            kind=AccountKind.ORGANIZATION,
            address=Address(street=f"{n} Batch Lane", city="Lyon", country="FR"),
        ).account_id
        for n in (1, 2, 3)
    )
    ann = app.add_contact(CLERK, a, name="Ann Lee", email="ann@a.test").created_id
    bea = app.add_contact(CLERK, b, name="Bea Roy", phone="+33 1 00 00 00 00").created_id

    def log(account: UUID, channel: Channel, days: int, summary: str = "") -> UUID:
        return app.log_interaction(
            CLERK,
            account,
            channel=channel,
            direction=Direction.OUTBOUND,
            occurred_at=EARLIER + timedelta(days=days),
            participants=("Ann Lee",),
            summary=summary,
        ).created_id

    call = log(a, Channel.CALL, 1, "Renewal")
    log(b, Channel.EMAIL, 2)
    log(a, Channel.VISIT, -1, "Older visit, logged late")
    app.update_profile(CLERK, a, name="Interleaved 1 SA", special_requirements="Gate B")
    app.assign_manager(CLERK, b, "bob")
    app.record_written_confirmation(
        CLERK, a, call, confirmed_at=EARLIER + timedelta(days=2), note="Sent"
    )
    app.update_contact(CLERK, a, ann, role="Buyer")
    app.change_tier(CLERK, a, Tier.PREFERRED_SUPPLIER, "volume")
    complaint = app.file_complaint(
        CLERK,
        b,
        category="delivery",
        severity=ComplaintSeverity.HIGH,
        description="Late pallets",
        channel=Channel.CALL,
        filed_at=EARLIER,
        contact_id=bea,
    ).created_id
    app.change_stage(CLERK, b, Stage.AWARENESS, "met")
    app.acknowledge_complaint(CLERK, b, complaint, acknowledged_at=EARLIER)
    # Ann's erasure reads the row after the changes queued before it.
    app.erase_personal_data(CLERK, a, contact_id=ann, reason="asked")
    cid = app.add_contact(CLERK, a, name="Cid Moss", email="cid@a.test").created_id
    log(a, Channel.CALL, 3)
    app.resolve_complaint(CLERK, b, complaint, resolution="Credit", resolved_at=EARLIER)
    app.reopen_complaint(CLERK, b, complaint, reason="Late again", reopened_at=EARLIER)
    app.update_profile(CLERK, b, special_requirements="Ring twice")
    app.remove_contact(CLERK, b, bea, "left")
    app.erase_personal_data(CLERK, b, reason="asked")
    app.assign_manager(CLERK, b, "carol")
    app.change_classification(CLERK, b, Classification.B)
    app.update_contact(CLERK, a, cid, phone="+33 6 00 00 00 00")
    app.change_classification(CLERK, c, Classification.A)
    app.change_relationship_type(CLERK, c, RelationshipType.LONG_TERM)
    app.record_survey(
        CLERK,
        c,
        satisfaction=SatisfactionLevel.SATISFIED,
        intent_to_buy_again=PurchaseIntent.YES,
        likelihood_to_recommend=8,
        comment="Fine",
        answered_at=EARLIER,
    )
    deal = app.close_deal(
        CLERK,
        c,
        amount="12.50",
        currency="EUR",
        product="paper",
        closed_at=EARLIER,
        place="Lyon",
    ).created_id
    app.schedule_follow_up(
        CLERK,
        c,
        due=EARLIER + timedelta(days=9),
        owner="carol",
        reason="Thank them",
        follows_kind=FollowedKind.DEAL,
        follows_id=deal,
    )
    app.agree_goal(CLERK, c, description="Two orders", owner="carol", due=date(2031, 1, 1))
    app.update_profile(CLERK, c, business_category="stationery")
    log(c, Channel.LETTER, 5)
    return [a, b, c]


def _replay(projections, batches: Sequence[Sequence[Any]], accounts) -> dict[str, Any]:
    """The views' rows of ``accounts`` after applying ``batches`` from empty,
    in transactions rolled back (the live views stay as they are)."""
    rows: dict[str, Any] = {}
    with ExitStack() as transactions:
        for view in projections.views.values():
            cur = transactions.enter_context(view.datastore.transaction(commit=False))
            view.reset(cur)
            position = 0
            for batch in batches:
                position = view.apply_batch(cur, batch, position)
            for table in view.tables:
                found = cur.execute(
                    f"SELECT * FROM {table} WHERE account_id = ANY(%s)",
                    (accounts,),
                ).fetchall()
                rows[table] = sorted(found, key=repr)
    return rows


def test_a_batch_writes_the_rows_of_its_events_one_at_a_time(app, projections):
    accounts = _interleaved(app)
    recorded = [
        r
        for r in projections.recorder.read_after(0, 1_000_000)
        if r.stored.originator_id in accounts
    ]
    events = [(app.mapper.to_domain_event(r.stored), r) for r in recorded]
    one_by_one = _replay(projections, [[event] for event in events], accounts)
    assert one_by_one["account_view"]
    assert one_by_one["interaction_timeline"]
    assert _replay(projections, [events], accounts) == one_by_one
    threes = [events[i : i + 3] for i in range(0, len(events), 3)]
    assert _replay(projections, threes, accounts) == one_by_one


# -- Writes on a table of the test's own ----------------------------------------------


@pytest.fixture
def cur(database_url: str) -> Iterator[psycopg.Cursor[DictRow]]:
    with (
        psycopg.connect(database_url, row_factory=dict_row) as conn,
        conn.transaction(force_rollback=True),
    ):
        cur = conn.cursor()
        cur.execute(
            "CREATE TEMP TABLE counters (id integer PRIMARY KEY, n integer,"
            " at timestamptz, label text, tags text[]) ON COMMIT DROP"
        )
        yield cur


COUNTER = Insert(
    "counters",
    {
        "id": "integer",
        "n": "integer",
        "at": "timestamptz",
        "label": "text",
        "tags": "text[]",
    },
)
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _rows(cur) -> list[dict[str, Any]]:
    return cur.execute("SELECT * FROM counters ORDER BY id").fetchall()


def _one_at_a_time(cur, steps) -> None:
    """The steps, each as its own statement: what ``Writes`` must come to."""
    for step, *args in steps:
        if step == "insert":
            cur.execute("INSERT INTO counters VALUES (%s, %s, %s, %s, %s)", args[0])
        elif step == "execute":
            cur.execute(args[0], args[1])
        else:
            key, changes = args
            kinds = {
                "assign": "{0} = %s",
                "add": "{0} = {0} + %s",
                "greatest": "{0} = greatest({0}, %s)",
            }
            assignments = [
                (kinds[kind].format(column), value)
                for kind, values in changes.items()
                for column, value in values.items()
            ]
            cur.execute(
                f"UPDATE counters SET {', '.join(a for a, _ in assignments)} WHERE id = %s",
                [*(v for _, v in assignments), key],
            )


def _batched(cur, steps) -> None:
    writes = Writes(cur)
    for step, *args in steps:
        if step == "insert":
            writes.insert(COUNTER, args[0])
        elif step == "execute":
            writes.execute(args[0], args[1], row=args[2] if len(args) > 2 else None)
        else:
            key, changes = args
            writes.update("counters", {"id": key}, **changes)
    writes.flush()


STEPS = [
    ("insert", (1, 0, None, "one", ["a"])),
    ("insert", (2, 5, T0, "", [])),
    ("update", 1, {"add": {"n": 1}, "greatest": {"at": T0}}),
    ("update", 2, {"add": {"n": 2}, "assign": {"label": "two"}}),
    ("update", 1, {"add": {"n": 1}, "greatest": {"at": T0 - timedelta(days=1)}}),
    # Names no row: the pending changes are written before it.
    ("execute", "UPDATE counters SET n = n * 10", None),
    ("update", 1, {"add": {"n": 3}, "assign": {"label": "uno"}}),
    ("update", 2, {"add": {"n": 1}}),
    # A statement naming row 2 is written after row 2's changes (not row 1's).
    ("execute", "UPDATE counters SET n = -n WHERE id = %s", (2,), ("counters", {"id": 2})),
    # A column assigned after it was added to, and added to after: in order.
    ("update", 1, {"assign": {"n": 100}}),
    ("update", 1, {"add": {"n": 1}, "greatest": {"at": None}}),
    ("update", 2, {"greatest": {"at": T0 + timedelta(hours=1)}}),
    ("insert", (3, None, None, None, ["x", "y"])),
    ("update", 3, {"add": {"n": 1}, "assign": {"tags": ["z"]}}),
    ("execute", "UPDATE counters SET label = %s WHERE id = %s", ("three", 3)),
    ("update", 3, {"greatest": {"at": T0}}),
]


def test_queued_writes_come_to_the_statements_one_at_a_time(cur):
    _one_at_a_time(cur, STEPS)
    expected = _rows(cur)
    cur.execute("DELETE FROM counters")
    _batched(cur, STEPS)
    assert _rows(cur) == expected
    assert [row["n"] for row in expected] == [101, -71, None]  # the steps do change n


def test_a_read_sees_what_was_queued_before_it(cur):
    writes = Writes(cur)
    writes.insert(COUNTER, (1, 1, None, "one", []))
    writes.update("counters", {"id": 1}, add={"n": 2}, assign={"label": "uno"})
    row = writes.fetchone("SELECT n, label FROM counters WHERE id = %s", (1,))
    assert row == {"n": 3, "label": "uno"}
    writes.update("counters", {"id": 1}, add={"n": 2})
    writes.flush()
    assert _rows(cur)[0]["n"] == 5
