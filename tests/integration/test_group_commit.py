"""Concurrent writers share transactions; each still gets its own answer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from domain.application import CommandMeta
from domain.errors import ConcurrencyConflict
from domain.values import AccountKind, Channel, Direction
from eventstore.integrity import verify

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
