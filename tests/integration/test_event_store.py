"""The events table on real PostgreSQL: metadata, immutability, concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
import pytest

from api.runtime import open_store
from domain.account import Account
from domain.application import CommandMeta
from domain.errors import ConcurrencyConflict
from domain.values import (
    AccountKind,
    Address,
    Channel,
    ContactChannel,
    ContactChannelKind,
    Direction,
    Influence,
    Stage,
    Tier,
)
from eventstore.recorder import event_id


def test_every_event_carries_its_audit_metadata_in_columns(app, db):
    meta = CommandMeta(actor="alice", causation_id=uuid4())
    opened = app.open_account(meta, name="Acme", kind=AccountKind.ORGANIZATION)
    changed = app.change_tier(meta, opened.account_id, Tier.PARTNER, "joint plans")
    row = db.execute(
        "SELECT event_id, occurred_at, recorded_at, actor, correlation_id,"
        " causation_id, command_id, notification_id, topic"
        " FROM rapport_events WHERE originator_id = %s AND originator_version = 2",
        (opened.account_id,),
    ).fetchone()
    assert row is not None
    event, occurred, recorded, actor, correlation, causation, command, position, topic = row
    assert event == event_id(opened.account_id, 2)
    assert (actor, correlation, causation, command) == (
        "alice",
        meta.correlation_id,
        meta.causation_id,
        meta.command_id,
    )
    assert position == changed.position
    assert topic.endswith("Account.TierChanged")
    assert occurred == app.get_account(opened.account_id).modified_on
    assert recorded >= occurred


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE rapport_events SET actor = 'mallory'",
        "DELETE FROM rapport_events",
        "TRUNCATE rapport_events",
    ],
)
def test_the_events_table_refuses_update_delete_and_truncate(app, db, statement):
    app.open_account(CommandMeta("alice"), name="Kept", kind=AccountKind.GROUP)
    (before,) = db.execute("SELECT count(*) FROM rapport_events").fetchone() or (0,)
    with pytest.raises(psycopg.errors.RestrictViolation, match="events are immutable"):
        db.execute(statement)
    (after,) = db.execute("SELECT count(*) FROM rapport_events").fetchone() or (0,)
    assert after == before > 0


def test_schema_creation_is_idempotent(database_url, app):
    opened = app.open_account(CommandMeta("alice"), name="Acme", kind=AccountKind.GROUP)
    again, projections = open_store(database_url)
    projections.migrate()
    assert again.get_account(opened.account_id).name == "Acme"
    again.close()


def _race(command, writers: int) -> list[object]:
    barrier = threading.Barrier(writers)
    results: list[object] = [None] * writers

    def write(index: int) -> None:
        barrier.wait()
        try:
            results[index] = command(index)
        except ConcurrencyConflict as conflict:
            results[index] = conflict

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_racing_writers_with_the_same_expected_version_lose_no_update(app):
    opened = app.open_account(CommandMeta("alice"), name="Race", kind=AccountKind.GROUP)
    account_id: UUID = opened.account_id
    results = _race(
        lambda i: app.assign_manager(
            CommandMeta(f"writer-{i}"), account_id, f"manager-{i}", expected_version=1
        ),
        writers=4,
    )
    winners = [r for r in results if not isinstance(r, ConcurrencyConflict)]
    assert len(winners) == 1
    assert app.get_account(account_id).version == 2


def test_racing_writers_without_expected_version_are_all_applied(app):
    opened = app.open_account(CommandMeta("alice"), name="Busy", kind=AccountKind.GROUP)
    account_id = opened.account_id
    results = _race(
        lambda i: app.change_tier(
            CommandMeta(f"writer-{i}"),
            account_id,
            [Tier.PARTNER, Tier.PREFERRED_SUPPLIER, Tier.STRATEGIC_ALLIANCE][i],
            f"review {i}",
        ),
        writers=3,
    )
    assert not [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert app.get_account(account_id).version == 4


def test_stored_history_replays_to_the_state_the_commands_built(app, database_url):
    meta = CommandMeta("alice")
    account = Account.open(
        name="Replayed",
        kind=AccountKind.ORGANIZATION,
        address=Address(city="Brno", country="CZ"),
        channels=(ContactChannel(kind=ContactChannelKind.WEB, value="https://x.cz"),),
    )
    account.add_contact(
        contact_id=uuid4(),
        name="Jana",
        influence=Influence.HIGH,
        birthday=date(1985, 5, 17),
        email="jana@x.cz",
    )
    account.assign_manager(manager="bob")
    account.change_stage(stage=Stage.AWARENESS)
    call = uuid4()
    account.log_interaction(
        interaction_id=call,
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        occurred_at=datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
        participants=("Jana",),
    )
    account.record_written_confirmation(
        interaction_id=call, confirmed_at=datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
    )
    app.save(account, meta=meta)
    fresh, _ = open_store(database_url)
    try:
        assert vars(fresh.get_account(account.id)) == vars(account)
    finally:
        fresh.close()


def test_replay_does_not_recheck_rules_on_stored_events(app):
    """An event stored under older, looser rules still loads."""
    opened = app.open_account(CommandMeta("alice"), name="Old", kind=AccountKind.GROUP)
    account = app.get_account(opened.account_id)
    far_future = datetime.now(tz=UTC) + timedelta(days=400)
    account.trigger_event(
        Account.InteractionLogged,
        interaction_id=uuid4(),
        channel=Channel.MEETING,
        direction=Direction.INBOUND,
        occurred_at=far_future,
        participants=(),
        summary="",
        outcome="",
        effort_minutes=0,
        occasion_kind=None,
        occasion_contact_id=None,
        occasion_year=None,
        cost_amount=None,
        cost_currency=None,
    )
    app.save(account, meta=CommandMeta("legacy-import"))
    assert app.get_account(opened.account_id).unconfirmed_oral_interactions == 1


def test_processes_starting_together_on_a_new_database_all_start(new_database):
    """API workers (and the API beside ``rapport project``) set up the tables
    at once; one at a time, each finds what the other made."""
    url = new_database()
    starting = threading.Barrier(3)
    opened, failed = [], []

    def start() -> None:
        starting.wait()
        try:
            app, _ = open_store(url, migrate=True)
        except Exception as error:  # noqa: BLE001 - reported by the test
            failed.append(error)
        else:
            opened.append(app)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for app in opened:
        app.close()
    assert failed == []
    assert len(opened) == 3


def test_a_command_answers_with_the_version_it_wrote_as_its_account_moves_on(
    app, database_url, db, monkeypatch
):
    """The saved account is cached; a read may bring it up to date at once.
    The answer is still the version this command wrote."""
    other, _ = open_store(database_url)  # a writer in another process
    meta = CommandMeta("alice")
    account_id = app.open_account(meta, name="Moving", kind=AccountKind.GROUP).account_id
    remember = app._remember  # noqa: SLF001 - the moment the account is cached

    def then_another_write_and_a_read(account):
        remember(account)
        other.change_tier(meta, account_id, Tier.PARTNER, "grew")
        app.get_account(account_id)  # brings the cached account to that version

    monkeypatch.setattr(app, "_remember", then_another_write_and_a_read)
    outcome = app.change_stage(meta, account_id, Stage.AWARENESS, "met")
    monkeypatch.undo()
    other.close()
    (version,) = db.execute(
        "SELECT originator_version FROM rapport_events WHERE notification_id = %s",
        (outcome.position,),
    ).fetchone()
    assert outcome.version == version == 2
    assert app.get_account(account_id).version == 3
