"""History, state at a past moment and changes, all replayed from events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from domain.account import Account
from domain.application import SNAPSHOT_INTERVAL, CommandMeta
from domain.errors import AccountNotFound, InvalidValue
from domain.values import AccountKind, Stage, Tier
from eventstore.audit import Audit
from eventstore.recorder import SnapshotRecorder

TIERS = [Tier.PREFERRED_SUPPLIER, Tier.PARTNER, Tier.TRANSACTIONAL]


@pytest.fixture
def audit(app):
    return Audit(app)


def _long_account(app, events: int):
    opened = app.open_account(CommandMeta("alice"), name="Long", kind=AccountKind.GROUP)
    for i in range(events - 1):
        app.change_tier(
            CommandMeta(f"user-{i % 3}"), opened.account_id, TIERS[i % 3], f"r{i}"
        )
    return opened.account_id


def test_history_lists_every_event_with_metadata_and_filters_by_type(app, audit):
    meta = CommandMeta("alice")
    opened = app.open_account(meta, name="Told", kind=AccountKind.ORGANIZATION)
    app.assign_manager(meta, opened.account_id, "bob")
    app.change_stage(CommandMeta("carol"), opened.account_id, Stage.AWARENESS, "met")
    entries = audit.history(opened.account_id)
    assert [e.type for e in entries] == [
        "AccountOpened",
        "AccountManagerAssigned",
        "StageChanged",
    ]
    stage = entries[-1]
    assert stage.payload == {
        "stage": "awareness",
        "previous": "exploration",
        "reason": "met",
    }
    assert stage.recorded.actor == "carol"
    assert stage.recorded.stored.originator_version == 3
    only = audit.history(opened.account_id, types=["StageChanged"])
    assert [e.type for e in only] == ["StageChanged"]
    with pytest.raises(InvalidValue):
        audit.history(opened.account_id, types=["Nonsense"])


def test_state_at_a_version_past_snapshots_equals_a_full_replay(app, audit):
    account_id = _long_account(app, SNAPSHOT_INTERVAL * 2 + 20)
    assert len(list(app.snapshots.get(account_id))) == 2
    for version in (
        1,
        SNAPSHOT_INTERVAL - 1,
        SNAPSHOT_INTERVAL + 7,
        SNAPSHOT_INTERVAL * 2 + 20,
    ):
        through_snapshots = audit.state_at(account_id, version=version)
        state = None
        for event in app.events.get(account_id, lte=version):
            state = event.mutate(state)
        assert vars(through_snapshots) == vars(state), version
    # Commands keep the account they saved; it is the state a replay gives.
    assert vars(app.get_account(account_id)) == vars(state)


def test_a_save_that_crosses_the_interval_snapshots_the_version_on_it(app, audit):
    account = Account.open(name="Imported", kind=AccountKind.GROUP)
    for i in range(SNAPSHOT_INTERVAL + 20):
        account.change_tier(tier=TIERS[i % 3], reason=f"r{i}")
    app.save(account, meta=CommandMeta("import"))
    snapshots = list(app.snapshots.get(account.id))
    assert [s.originator_version for s in snapshots] == [SNAPSHOT_INTERVAL]
    for version in (SNAPSHOT_INTERVAL, SNAPSHOT_INTERVAL + 5):
        state = None
        for event in app.events.get(account.id, lte=version):
            state = event.mutate(state)
        assert vars(audit.state_at(account.id, version=version)) == vars(state)


def test_state_at_a_moment_is_the_last_version_before_it(app, audit):
    meta = CommandMeta("alice")
    opened = app.open_account(meta, name="Moments", kind=AccountKind.GROUP)
    first = app.get_account(opened.account_id).modified_on
    app.change_tier(meta, opened.account_id, Tier.PARTNER, "later")
    assert audit.state_at(opened.account_id, at=first).tier is Tier.TRANSACTIONAL
    now = datetime.now(tz=UTC)
    assert audit.state_at(opened.account_id, at=now).tier is Tier.PARTNER
    with pytest.raises(AccountNotFound):
        audit.state_at(opened.account_id, at=first - timedelta(seconds=1))
    with pytest.raises(InvalidValue):
        audit.state_at(opened.account_id, version=9)
    with pytest.raises(InvalidValue):
        audit.state_at(opened.account_id)


def test_changes_name_each_field_with_before_after_and_actor(app, audit):
    opened = app.open_account(CommandMeta("alice"), name="Diff", kind=AccountKind.GROUP)
    contact = app.add_contact(CommandMeta("bob"), opened.account_id, name="Ann")
    app.change_tier(CommandMeta("carol"), opened.account_id, Tier.PARTNER, "deeper")
    changes = audit.changes(opened.account_id, 1, 3)
    assert [(c.version, c.field, c.before, c.after, c.actor) for c in changes] == [
        (
            2,
            f"contacts.{contact.created_id}",
            None,
            {
                "contact_id": str(contact.created_id),
                "name": "Ann",
                "role": "",
                "influence": "medium",
                "email": None,
                "phone": None,
                "birthday": None,
                "preferences": "",
                "erased": False,
            },
            "bob",
        ),
        (3, "tier", "transactional", "partner", "carol"),
    ]
    opening = audit.changes(opened.account_id, 0, 1)
    assert {c.field for c in opening} >= {"name", "tier", "stage", "kind"}
    with pytest.raises(AccountNotFound):
        audit.changes(uuid4(), 0, 1)


def test_snapshots_are_stored_byte_for_byte_in_one_binary_insert(app):
    # Quotes, backslashes and braces are what the text form had to escape.
    account = Account.open(name='Quote " and \\ {brace}', kind=AccountKind.GROUP)
    account.collect_events()
    recorder = app.snapshots.recorder
    assert isinstance(recorder, SnapshotRecorder)
    stored = app.snapshots.mapper.to_stored_event(Account.Snapshot.take(account))
    recorder.insert_events([stored])
    (read,) = recorder.select_events(account.id)
    assert (read.originator_version, read.topic, read.state) == (
        stored.originator_version,
        stored.topic,
        stored.state,
    )
    assert next(iter(app.snapshots.get(account.id))).mutate(None).name == account.name
    with pytest.raises(IntegrityError):  # a version is snapshot once
        recorder.insert_events([stored])
