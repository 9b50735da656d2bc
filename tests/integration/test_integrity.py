"""The hash chain finds exactly the row that was edited behind the trigger's back."""

from __future__ import annotations

import psycopg
import pytest

from api.runtime import open_store
from domain.account import Account
from domain.application import CommandMeta
from domain.values import AccountKind, Tier
from eventstore.integrity import CONTENT_CHANGED, LINK_BROKEN, verify

GUARD = "rapport_events_no_update_delete"


@pytest.fixture
def own_store(empty_database_url):
    app, _ = open_store(empty_database_url)
    meta = CommandMeta("alice")
    for i in range(3):
        opened = app.open_account(meta, name=f"Chained {i}", kind=AccountKind.GROUP)
        app.change_tier(meta, opened.account_id, Tier.PARTNER, "plans")
    yield app, empty_database_url
    app.close()


def _behind_the_trigger(url: str, statement: str) -> None:
    """What only the table's owner can do: switch the guard off, act, switch it on."""
    with psycopg.connect(url) as owner:
        owner.execute(f"ALTER TABLE rapport_events DISABLE TRIGGER {GUARD}")
        owner.execute(statement)
        owner.execute(f"ALTER TABLE rapport_events ENABLE TRIGGER {GUARD}")


def test_an_untouched_store_verifies(own_store):
    app, _ = own_store
    report = verify(app.recorder)
    assert report.intact
    assert (report.events, report.head_position) == (6, 6)
    assert len(report.head_hash or "") == 64


def test_events_saved_together_are_chained_one_after_the_other(own_store):
    app, url = own_store
    account = Account.open(name="Batch", kind=AccountKind.GROUP)
    account.change_tier(tier=Tier.PARTNER, reason="one save, three events")
    account.assign_manager(manager="bob")
    app.save(account, meta=CommandMeta("alice"))
    assert verify(app.recorder).intact
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT prev_hash, hash FROM rapport_events ORDER BY notification_id"
        ).fetchall()
    assert len(rows) == 9
    assert rows[0][0] is None
    assert all(rows[i][0] == rows[i - 1][1] for i in range(1, len(rows)))


def test_verify_names_exactly_the_edited_row(own_store):
    app, url = own_store
    _behind_the_trigger(
        url, "UPDATE rapport_events SET actor = 'mallory' WHERE notification_id = 4"
    )
    report = verify(app.recorder)
    assert report.first_break is not None
    assert report.first_break.position == 4
    assert report.first_break.version == 2
    assert report.first_break.problem == CONTENT_CHANGED


def test_verify_finds_a_removed_row_at_the_next_link(own_store):
    app, url = own_store
    _behind_the_trigger(url, "DELETE FROM rapport_events WHERE notification_id = 3")
    report = verify(app.recorder)
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.problem) == (4, LINK_BROKEN)


def test_a_saved_head_reveals_dropped_newest_events(own_store):
    app, url = own_store
    head = verify(app.recorder)
    assert head.head_position is not None
    assert head.head_hash is not None
    saved = (head.head_position, head.head_hash)
    assert verify(app.recorder, saved).intact
    _behind_the_trigger(
        url, f"DELETE FROM rapport_events WHERE notification_id = {saved[0]}"
    )
    report = verify(app.recorder, saved)
    assert report.first_break is None  # the chain alone cannot tell
    assert report.anchor_problem == f"position {saved[0]} is gone: events were removed"
    assert not report.intact


def test_a_saved_head_reveals_a_chain_rewritten_and_rehashed(own_store):
    app, url = own_store
    before = verify(app.recorder)
    assert before.head_position is not None
    assert before.head_hash is not None
    saved = (before.head_position, before.head_hash)
    _behind_the_trigger(
        url,
        """
        DO $$ DECLARE r record; prev bytea; BEGIN
          UPDATE rapport_events SET actor = 'mallory' WHERE notification_id = 2;
          SELECT hash INTO prev FROM rapport_events WHERE notification_id = 1;
          FOR r IN SELECT notification_id FROM rapport_events
                   WHERE notification_id >= 2 ORDER BY notification_id LOOP
            UPDATE rapport_events SET prev_hash = prev
             WHERE notification_id = r.notification_id;
            UPDATE rapport_events e SET hash = rapport_events_digest(prev, e)
             WHERE notification_id = r.notification_id RETURNING hash INTO prev;
          END LOOP;
        END $$""",
    )
    assert verify(app.recorder).intact  # a consistent forgery
    report = verify(app.recorder, saved)
    assert report.anchor_problem is not None
    assert "the chain was rewritten" in report.anchor_problem
