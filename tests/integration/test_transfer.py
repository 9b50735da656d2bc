"""Export to NDJSON, import into an empty database, rebuild: the same views."""

from __future__ import annotations

import json

import psycopg
import pytest

from api.runtime import open_store
from domain.application import CommandMeta
from domain.values import AccountKind, Stage, Tier
from eventstore.integrity import verify
from eventstore.transfer import ImportRefused, export_lines, import_lines
from projections.runner import VIEW_CLASSES


def _populate(app):
    meta = CommandMeta("alice")
    for i in range(3):
        opened = app.open_account(meta, name=f"Exported {i}", kind=AccountKind.GROUP)
        app.add_contact(meta, opened.account_id, name="Ann", email="ann@x.example")
        app.change_tier(meta, opened.account_id, Tier.PARTNER, "plans")
        app.change_stage(CommandMeta("bob"), opened.account_id, Stage.AWARENESS, "met")


def _tables(url):
    tables = [table for cls in VIEW_CLASSES for table in cls.tables]
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables
        }


def test_import_then_rebuild_reproduces_identical_views(
    app, projections, database_url, empty_database_url
):
    _populate(app)
    projections.catch_up()
    lines = list(export_lines(app.recorder))
    header, end = json.loads(lines[0]), json.loads(lines[-1])
    assert header == {"rapport_export": 1, "scope": "store", "account_id": None}
    assert end["events"] + end["keys"] == len(lines) - 2
    copy, copy_projections = open_store(empty_database_url)
    try:
        assert import_lines(copy.recorder, lines) == end["events"]
        copy_projections.rebuild(copy_projections.views)
        assert _tables(empty_database_url) == _tables(database_url)
        original, imported = verify(app.recorder), verify(copy.recorder)
        assert imported.intact
        assert (imported.head_position, imported.head_hash) == (
            original.head_position,
            original.head_hash,
        )
        later = copy.open_account(
            CommandMeta("carol"), name="After", kind=AccountKind.GROUP
        )
        assert later.position > imported.head_position
    finally:
        copy.close()


def test_an_altered_export_is_refused_whole(app, empty_database_url):
    _populate(app)
    lines = list(export_lines(app.recorder))
    record = json.loads(lines[len(lines) // 2])
    record["actor"] = "mallory"
    lines[len(lines) // 2] = json.dumps(record)
    copy, _ = open_store(empty_database_url)
    try:
        with pytest.raises(ImportRefused, match=f"position {record['position']}"):
            import_lines(copy.recorder, lines)
        assert copy.recorder.max_notification_id() is None
    finally:
        copy.close()


def test_an_import_into_a_store_with_events_is_refused(app):
    _populate(app)
    with pytest.raises(ImportRefused, match="not empty"):
        import_lines(app.recorder, list(export_lines(app.recorder))[:1])


def test_an_account_export_holds_only_its_events(app):
    opened = app.open_account(CommandMeta("alice"), name="Alone", kind=AccountKind.GROUP)
    app.change_tier(CommandMeta("alice"), opened.account_id, Tier.PARTNER, "plans")
    header, *records, end = [
        json.loads(line) for line in export_lines(app.recorder, opened.account_id)
    ]
    *records, key = records
    assert header["scope"] == "account"
    assert (end["events"], end["last_hash"], end["keys"]) == (2, records[-1]["hash"], 1)
    # The account's name is personal data, sealed in the event; its key follows.
    assert "Alone" not in json.dumps(records)
    assert key["subject_key"]["subject_id"] == str(opened.account_id)
    assert key["subject_key"]["key"] is not None
    assert [(r["version"], r["type"]) for r in records] == [
        (1, "AccountOpened"),
        (2, "TierChanged"),
    ]
    assert records[1]["state"]["reason"] == "plans"


def test_a_whole_export_with_a_missing_line_is_refused(app, empty_database_url):
    _populate(app)
    lines = list(export_lines(app.recorder))
    del lines[3]
    copy, _ = open_store(empty_database_url)
    try:
        with pytest.raises(ImportRefused, match="missing or out of place"):
            import_lines(copy.recorder, lines)
        assert copy.recorder.max_notification_id() is None
    finally:
        copy.close()


def _refused(app, empty_database_url, lines, match):
    copy, _ = open_store(empty_database_url)
    try:
        with pytest.raises(ImportRefused, match=match):
            import_lines(copy.recorder, lines)
        assert copy.recorder.max_notification_id() is None
    finally:
        copy.close()


def test_a_whole_export_without_its_first_or_last_events_is_refused(
    app, empty_database_url
):
    _populate(app)
    lines = list(export_lines(app.recorder, keys=False))
    _refused(app, empty_database_url, [lines[0], *lines[2:]], "first events are missing")
    _refused(app, empty_database_url, [*lines[:-2], lines[-1]], "events are missing")
    _refused(app, empty_database_url, lines[:-1], "end line is missing")


def test_a_reordered_account_export_is_refused(app, empty_database_url):
    opened = app.open_account(CommandMeta("alice"), name="Turned", kind=AccountKind.GROUP)
    app.change_tier(CommandMeta("alice"), opened.account_id, Tier.PARTNER, "plans")
    header, *events, end = export_lines(app.recorder, opened.account_id, keys=False)
    _refused(app, empty_database_url, [header, *reversed(events), end], "out of order")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("[1, 2]", "not a JSON object"),
        ("{not json", "not JSON"),
        ('{"position": "one"}', "not an event"),
    ],
)
def test_lines_that_are_not_events_are_refused(app, empty_database_url, line, match):
    opened = app.open_account(CommandMeta("alice"), name="Odd", kind=AccountKind.GROUP)
    header, event, end = export_lines(app.recorder, opened.account_id, keys=False)
    _refused(app, empty_database_url, [header, line, event, end], match)


def test_a_malformed_value_is_refused(app, empty_database_url):
    opened = app.open_account(CommandMeta("alice"), name="Bad", kind=AccountKind.GROUP)
    header, event, end = export_lines(app.recorder, opened.account_id, keys=False)
    record = json.loads(event)
    record["recorded_at"] = "yesterday"
    _refused(
        app, empty_database_url, [header, json.dumps(record), end], "not an export line"
    )


def test_an_account_export_imports_even_when_it_starts_the_store(new_database):
    source, _ = open_store(new_database())
    try:
        first = source.open_account(
            CommandMeta("alice"), name="First", kind=AccountKind.GROUP
        )
        source.open_account(CommandMeta("alice"), name="Second", kind=AccountKind.GROUP)
        source.change_tier(CommandMeta("alice"), first.account_id, Tier.PARTNER, "plans")
        lines = list(export_lines(source.recorder, first.account_id))
    finally:
        source.close()
    copy, _ = open_store(new_database())
    try:
        assert import_lines(copy.recorder, lines) == 2
        assert verify(copy.recorder).intact
    finally:
        copy.close()


def test_an_export_missing_a_key_line_is_refused(app, empty_database_url):
    _populate(app)
    lines = list(export_lines(app.recorder))
    assert json.loads(lines[-2])["subject_key"]
    _refused(app, empty_database_url, [*lines[:-2], lines[-1]], "keys are missing")


def test_an_export_without_keys_imports_with_personal_data_unreadable(
    app, empty_database_url
):
    opened = app.open_account(CommandMeta("alice"), name="Keyless", kind=AccountKind.GROUP)
    app.change_tier(CommandMeta("alice"), opened.account_id, Tier.PARTNER, "plans")
    lines = list(export_lines(app.recorder, opened.account_id, keys=False))
    assert json.loads(lines[-1])["keys"] == 0
    copy, _ = open_store(empty_database_url)
    try:
        assert import_lines(copy.recorder, lines) == 2
        account = copy.get_account(opened.account_id)
        assert (account.name, account.tier) == ("[erased]", Tier.PARTNER)
        assert verify(copy.recorder).intact
    finally:
        copy.close()
