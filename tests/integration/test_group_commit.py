"""Concurrent writers share transactions; each still gets its own answer."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
from eventsourcing.persistence import IntegrityError, OperationalError
from psycopg.rows import dict_row
from psycopg.sql import SQL

from domain.account import Account
from domain.application import CommandMeta
from domain.errors import CommandAlreadyRecorded, ConcurrencyConflict
from domain.values import AccountKind, Channel, Direction
from eventstore.integrity import verify
from eventstore.recorder import _Write, recorder_of

WRITERS = 8
WRITES = 15


def _log(app, account_id, **kwargs):
    return app.log_interaction(
        CommandMeta("writer"),
        account_id,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        occurred_at=datetime.now(tz=UTC) - timedelta(minutes=1),
        **kwargs,
    )


def _together(work):
    errors: list[BaseException] = []

    def guarded(i):
        try:
            work(i)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_concurrent_writers_each_get_their_own_committed_positions(app, db):
    accounts = [
        app.open_account(CommandMeta("w"), name=f"Group {i}", kind=AccountKind.GROUP)
        for i in range(WRITERS)
    ]
    outcomes: list[list] = [[] for _ in range(WRITERS)]

    def work(i):
        for _ in range(WRITES):
            outcomes[i].append(_log(app, accounts[i].account_id))

    _together(work)
    positions = [o.position for per_writer in outcomes for o in per_writer]
    assert len(set(positions)) == WRITERS * WRITES
    for i, per_writer in enumerate(outcomes):
        assert [o.version for o in per_writer] == list(range(2, WRITES + 2))
        assert [o.position for o in per_writer] == sorted(o.position for o in per_writer)
        stored = db.execute(
            "SELECT originator_version, notification_id FROM rapport_events"
            " WHERE originator_id = %s AND originator_version > 1"
            " ORDER BY originator_version",
            (accounts[i].account_id,),
        ).fetchall()
        assert stored == [(o.version, o.position) for o in per_writer]
    assert verify(app.recorder).intact


def test_a_conflict_fails_only_its_own_write(app):
    account_id = app.open_account(
        CommandMeta("w"), name="Contended", kind=AccountKind.GROUP
    ).account_id
    written = [0] * WRITERS
    conflicts = [0] * WRITERS

    def work(i):
        for _ in range(WRITES):
            version = app.get_account(account_id).version
            try:
                _log(app, account_id, expected_version=version)
                written[i] += 1
            except ConcurrencyConflict:
                conflicts[i] += 1

    _together(work)
    assert sum(written) + sum(conflicts) == WRITERS * WRITES
    assert sum(written) >= 1
    assert app.get_account(account_id).version == 1 + sum(written)
    assert verify(app.recorder).intact


def _opening(app, name):
    """An account's first event, stored as the application would store it."""
    account = Account.open(name=name, kind=AccountKind.GROUP)
    return [app.mapper.to_stored_event(e) for e in account.collect_events()]


def _group(recorder, *writes):
    """Commit ``writes`` as one group, as concurrent callers would share it."""
    queued = [_Write(events, {"meta": meta}) for events, meta in writes]
    recorder._commit_group(queued)  # noqa: SLF001 - the group, without the threads
    return queued


def test_a_group_goes_in_one_statement_with_each_write_in_order(app, db, monkeypatch):
    recorder = recorder_of(app)
    first, second = _opening(app, "First"), _opening(app, "Second")
    meta = CommandMeta("a", command_id=uuid4(), idempotent=True)
    inserts = []
    insert_writes = recorder._insert_writes  # noqa: SLF001 - counting its statements

    def counted(cur, writes):
        inserts.append(len(writes))
        insert_writes(cur, writes)

    monkeypatch.setattr(recorder, "_insert_writes", counted)
    one, two = _group(recorder, (first, CommandMeta("a")), (second, meta))
    assert inserts == [2]  # one INSERT for both writes, no savepoint each
    assert (one.error, two.error) == (None, None)
    assert two.positions == [one.positions[-1] + 1]
    row = db.execute(
        "SELECT account_id, position FROM rapport_events_commands WHERE command_id = %s",
        (meta.command_id,),
    ).fetchone()
    assert row == (second[0].originator_id, two.positions[0])


def test_a_bad_write_in_a_group_fails_alone(app, db):
    recorder = recorder_of(app)
    taken = _opening(app, "Taken")
    _group(recorder, (taken, CommandMeta("a")))
    again = [replace(taken[0], topic=taken[0].topic)]  # the same version once more
    before, after = _opening(app, "Before"), _opening(app, "After")
    used = CommandMeta("a", command_id=uuid4(), idempotent=True)
    _group(recorder, (_opening(app, "Used"), used))
    writes = _group(
        recorder,
        (before, CommandMeta("a")),
        (again, CommandMeta("a")),
        (_opening(app, "Reused"), used),
        (after, CommandMeta("a")),
    )
    ok, conflict, reused, ok_too = writes
    assert isinstance(conflict.error, IntegrityError)
    assert isinstance(reused.error, CommandAlreadyRecorded)
    assert (conflict.positions, reused.positions) == ([], [])
    assert (ok.error, ok_too.error) == (None, None)
    assert ok.positions[0] < ok_too.positions[0]
    names = db.execute(
        "SELECT originator_id FROM rapport_events WHERE notification_id = ANY(%s)",
        (ok.positions + ok_too.positions,),
    ).fetchall()
    assert {n for (n,) in names} == {before[0].originator_id, after[0].originator_id}
    assert verify(app.recorder).intact


def _connection_fails_once(recorder, monkeypatch, *, after_commit):
    """The group's first transaction loses its connection at COMMIT: after the
    server stored it, or before. How many writes each transaction held."""
    insert_group = recorder._insert_group  # noqa: SLF001 - failing its transaction
    transactions: list[int] = []

    def failing(group):
        transactions.append(len(group))
        if len(transactions) == 1:
            if after_commit:
                insert_group(group)
            # As the datastore raises psycopg's error at COMMIT.
            msg = "server closed the connection unexpectedly"
            raise OperationalError(msg)
        insert_group(group)

    monkeypatch.setattr(recorder, "_insert_group", failing)
    monkeypatch.setattr("eventstore.recorder.GROUP_RETRY_WAIT", 0)
    return transactions


def _positions(db, account_id):
    return [
        position
        for (position,) in db.execute(
            "SELECT notification_id FROM rapport_events WHERE originator_id = %s"
            " ORDER BY originator_version",
            (account_id,),
        )
    ]


def test_a_write_committed_before_its_connection_failed_is_answered_not_redone(
    app, db, monkeypatch
):
    account_id = app.open_account(
        CommandMeta("w"), name="Committed", kind=AccountKind.GROUP
    ).account_id
    transactions = _connection_fails_once(recorder_of(app), monkeypatch, after_commit=True)
    outcome = _log(app, account_id)
    assert transactions == [1]  # found stored: not written again
    positions = _positions(db, account_id)
    assert (outcome.version, outcome.position) == (2, positions[-1])
    assert len(positions) == 2  # opened, then one interaction
    assert app.get_account(account_id).version == 2


def test_a_write_whose_commit_failed_is_written_again(app, db, monkeypatch):
    account_id = app.open_account(
        CommandMeta("w"), name="Uncommitted", kind=AccountKind.GROUP
    ).account_id
    transactions = _connection_fails_once(recorder_of(app), monkeypatch, after_commit=False)
    outcome = _log(app, account_id)
    assert transactions == [1, 1]
    assert (outcome.version, outcome.position) == (2, _positions(db, account_id)[-1])


def test_after_a_failed_commit_only_the_writes_not_stored_go_again(app, db, monkeypatch):
    recorder = recorder_of(app)
    taken = _opening(app, "Taken again")
    _group(recorder, (taken, CommandMeta("a")))
    # Another first event for the same account: the version is taken.
    rival = [replace(_opening(app, "Rival")[0], originator_id=taken[0].originator_id)]
    transactions = _connection_fails_once(recorder, monkeypatch, after_commit=True)
    ok, conflict = _group(
        recorder, (_opening(app, "Stored"), CommandMeta("a")), (rival, CommandMeta("a"))
    )
    assert transactions == [2, 1]  # the conflicting write alone went again
    assert ok.error is None
    assert len(ok.positions) == 1
    assert isinstance(conflict.error, IntegrityError)
    assert conflict.positions == []


def _racing(app, monkeypatch):
    """Retries that each looked for their command's outcome before any of them
    committed: the first lookup of each finds none."""
    recorded_outcome = app.recorded_outcome
    caller = threading.local()

    def before_any_commit(command_id):
        if not getattr(caller, "looked", False):
            caller.looked = True
            return None
        return recorded_outcome(command_id)

    monkeypatch.setattr(app, "recorded_outcome", before_any_commit)


def _in_turn(work, count):
    """``work`` in ``count`` threads one after another: what each returned or raised."""
    answers: list[object] = []

    def run():
        try:
            answers.append(work())
        except Exception as error:  # noqa: BLE001 - the answer under test
            answers.append(error)

    for _ in range(count):
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    return answers


def test_racing_retries_that_open_one_account_answer_as_the_first(app, monkeypatch):
    meta = CommandMeta("clerk", command_id=uuid4(), idempotent=True)
    account_id = uuid4()
    _racing(app, monkeypatch)
    first, *retries = _in_turn(
        lambda: app.open_account(
            meta, account_id=account_id, name="Raced", kind=AccountKind.GROUP
        ),
        3,
    )
    assert first.account_id == account_id
    assert retries == [first, first]  # not AccountAlreadyExists
    assert app.get_account(account_id).version == 1


def test_racing_retries_with_an_expected_version_answer_as_the_first(app, monkeypatch):
    account_id = app.open_account(
        CommandMeta("clerk"), name="Raced version", kind=AccountKind.GROUP
    ).account_id
    meta = CommandMeta("clerk", command_id=uuid4(), idempotent=True)
    _racing(app, monkeypatch)
    first, *retries = _in_turn(
        lambda: app.log_interaction(
            meta,
            account_id,
            expected_version=1,
            channel=Channel.CALL,
            direction=Direction.OUTBOUND,
            occurred_at=datetime.now(tz=UTC) - timedelta(minutes=1),
        ),
        3,
    )
    assert first.version == 2
    assert retries == [first, first]  # not ConcurrencyConflict
    assert app.get_account(account_id).version == 2


def test_a_commit_still_under_way_when_the_connection_failed_is_waited_for(
    app, db, database_url, monkeypatch
):
    """The connection fails while the server is still committing the group (a
    slow COMMIT): the retry's look at the table waits for it, and finds it."""
    recorder = recorder_of(app)
    account_id = app.open_account(
        CommandMeta("w"), name="Slow commit", kind=AccountKind.GROUP
    ).account_id
    under_way = threading.Event()

    def commit_slowly(group):
        # The group's own transaction, on a connection of its own.
        with (
            psycopg.connect(database_url, row_factory=dict_row) as conn,
            conn.transaction(),
        ):
            cur = conn.cursor()
            writes = [_Write(w.stored_events, w.kwargs) for w in group]
            recorder._insert_writes(cur, writes)  # noqa: SLF001
            under_way.set()
            time.sleep(0.5)  # still committing when the client gives up

    transactions: list[int] = []
    insert_group = recorder._insert_group  # noqa: SLF001 - failing its transaction

    def failing(group):
        transactions.append(len(group))
        if len(transactions) > 1:
            return insert_group(group)
        threading.Thread(target=commit_slowly, args=(group,)).start()
        under_way.wait()
        msg = "server closed the connection unexpectedly"
        raise OperationalError(msg)

    monkeypatch.setattr(recorder, "_insert_group", failing)
    monkeypatch.setattr("eventstore.recorder.GROUP_RETRY_WAIT", 0)
    outcome = _log(app, account_id)
    assert transactions == [1]  # found once committed: not written again
    positions = _positions(db, account_id)
    assert (outcome.version, outcome.position, len(positions)) == (2, positions[-1], 2)


def test_a_group_waits_for_the_writers_lock_no_longer_than_the_lock_timeout(
    app, db, database_url, monkeypatch
):
    """Another writer holds the lock for longer than the lock timeout: the
    group gives up with an error instead of waiting for it, and stores nothing."""
    recorder = recorder_of(app)
    monkeypatch.setattr(recorder.datastore, "lock_timeout", 1)
    monkeypatch.setattr("eventstore.recorder.GROUP_ATTEMPTS", 1)
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock():
        with psycopg.connect(database_url) as conn, conn.transaction():
            conn.execute(SQL("SELECT {}()").format(recorder.lock_function))
            locked.set()
            release.wait(30)  # far beyond the timeout

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    locked.wait()
    try:
        events = _opening(app, "Locked out")
        (write,) = _group(recorder, (events, CommandMeta("a")))
    finally:
        release.set()
        holder.join()
    assert isinstance(write.error, OperationalError)
    assert "lock" in str(write.error)
    assert write.positions == []
    stored = db.execute(
        "SELECT count(*) FROM rapport_events WHERE originator_id = %s",
        (events[0].originator_id,),
    ).fetchone()
    assert stored == (0,)
