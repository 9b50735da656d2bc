"""Events stored in an older shape still load, through upcasters, everywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from domain.account import Account, InteractionRecord
from domain.application import CommandMeta
from domain.values import AccountKind, Channel, Direction
from eventstore.audit import Audit

META = CommandMeta("alice")
OPENED = "domain.account:Account.AccountOpened"
UPDATED = "domain.account:Account.ProfileUpdated"


def _v1(topic: str, account_id, version: int, **fields) -> StoredEvent:
    """An event as version 1 of its class wrote it: no class_version, no new fields."""
    moment = datetime(2026, 1, 5, 9, 0, tzinfo=UTC).isoformat()
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": moment}, **fields}
    return StoredEvent(
        originator_id=account_id,
        originator_version=version,
        topic=topic,
        state=json.dumps(state, separators=(",", ":")).encode(),
    )


def _store_v1_account(app):
    account_id = uuid4()
    address = {"street": "", "city": "Oulu", "postal_code": "", "country": "FI"}
    app.recorder.insert_events(
        [
            _v1(
                OPENED,
                account_id,
                1,
                originator_topic="domain.account:Account",
                name="Legacy Oy",
                kind="organization",
                business_category="forestry",
                address={"_type_": "address", "_data_": address},
                channels=[],
            ),
            _v1(
                UPDATED,
                account_id,
                2,
                name="Legacy Group Oy",
                business_category=None,
                address=None,
                channels=None,
            ),
        ],
        meta=CommandMeta("legacy-import"),
    )
    return account_id


def test_version_1_events_load_through_their_upcasters(app):
    account_id = _store_v1_account(app)
    account = app.get_account(account_id)
    assert (
        account.name,
        account.special_requirements,
        account.purchase_characteristics,
    ) == (
        "Legacy Group Oy",
        "",
        "",
    )
    app.update_profile(
        CommandMeta("alice"), account_id, special_requirements="Deliveries before 7 am"
    )
    assert app.get_account(account_id).special_requirements == "Deliveries before 7 am"
    (stored,) = app.recorder.account_events(account_id, after_version=2)
    assert json.loads(stored.stored.state)["class_version"] == 3


def test_history_and_time_travel_show_upcast_events(app):
    account_id = _store_v1_account(app)
    audit = Audit(app)
    opened, updated = audit.history(account_id)
    assert opened.payload["special_requirements"] == ""
    assert updated.payload["purchase_characteristics"] is None
    assert audit.state_at(account_id, version=1).name == "Legacy Oy"


def test_views_and_rebuilds_read_version_1_events(app, projections, db):
    account_id = _store_v1_account(app)
    projections.catch_up()
    projections.rebuild(["account_view"])
    row = db.execute(
        "SELECT name, special_requirements, purchase_characteristics"
        " FROM account_view WHERE account_id = %s",
        (account_id,),
    ).fetchone()
    assert row == ("Legacy Group Oy", "", "")


def test_a_version_1_snapshot_is_upcast_too(app):
    account_id = _store_v1_account(app)
    snapshot = Account.Snapshot.take(app.get_account(account_id))
    for key in ("special_requirements", "purchase_characteristics", "class_version"):
        snapshot.state.pop(key)
    snapshot.state["name"] = "Read from the snapshot"
    snapshot.state["interactions"] = []  # version 1 kept a list of [id, record]
    app.snapshots.put([snapshot])
    account = app.get_account(account_id, version=2)  # a replay, not the cache
    assert account.name == "Read from the snapshot"
    assert (account.version, account.special_requirements) == (2, "")


def test_a_version_7_snapshot_keeps_its_interaction_records(app):
    """Version 7 kept a JSON object per interaction record; version 8 keeps one
    list per field. A version 7 snapshot still gives the same records."""
    account_id = app.open_account(META, name="Packed Oy", kind=AccountKind.GROUP).account_id
    call, visit, mail = uuid4(), uuid4(), uuid4()
    called_at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    logged = ((call, Channel.CALL), (visit, Channel.VISIT), (mail, Channel.EMAIL))
    for interaction_id, channel in logged:
        app.log_interaction(
            META,
            account_id,
            interaction_id=interaction_id,
            channel=channel,
            direction=Direction.OUTBOUND,
            occurred_at=called_at,
            summary="Spring order",
        )
    app.record_written_confirmation(META, account_id, visit, confirmed_at=called_at)
    current = app.get_account(account_id)
    snapshot = Account.Snapshot.take(current)
    assert snapshot.state["interactions"]["confirmed"] == [False, True, False]
    snapshot.state["class_version"] = 7
    snapshot.state["interactions"] = [
        [str(key), record] for key, record in current.interactions.items()
    ]
    app.snapshots.put([snapshot])
    restored = app.get_account(account_id, version=current.version)  # from the snapshot
    assert restored.interactions == current.interactions
    assert restored.interactions[call] == InteractionRecord(
        Channel.CALL, called_at, confirmed=False
    )
    assert restored.unconfirmed_oral_interactions == 1


LOGGED = "domain.account:Account.InteractionLogged"


def test_version_1_interactions_and_openings_read_without_occasion_cost_or_founding(
    app, projections, db
):
    account_id = _store_v1_account(app)
    interaction_id = uuid4()
    app.recorder.insert_events(
        [
            _v1(
                LOGGED,
                account_id,
                3,
                interaction_id={"_type_": "uuid_hex", "_data_": interaction_id.hex},
                channel="gift",
                direction="outbound",
                occurred_at={
                    "_type_": "datetime_iso",
                    "_data_": "2026-01-05T10:00:00+00:00",
                },
                participants=[],
                summary="Hamper",
                outcome="",
                effort_minutes=10,
            )
        ],
        meta=CommandMeta("legacy-import"),
    )
    account = app.get_account(account_id)
    assert account.founded_on is None
    assert (account.greetings, len(account.interactions)) == ({}, 1)
    (logged,) = [e for e in Audit(app).history(account_id) if e.type == "InteractionLogged"]
    assert (logged.payload["occasion_kind"], logged.payload["cost_amount"]) == (None, None)
    projections.catch_up()
    row = db.execute(
        "SELECT occasion_kind, occasion_year, cost_amount, cost_currency, effort_minutes"
        " FROM interaction_timeline WHERE interaction_id = %s",
        (interaction_id,),
    ).fetchone()
    assert row == (None, None, None, None, 10)
    assert db.execute(
        "SELECT founded_on FROM account_view WHERE account_id = %s", (account_id,)
    ).fetchone() == (None,)
