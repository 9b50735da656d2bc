"""Erasure of personal data (GDPR article 17) in an immutable history.

Personal values are sealed in the events with a key per subject; erasing the
subject destroys its key. The raw tables never hold the plaintext, history
still replays, and the non-personal audit trail stays as it was.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from api.runtime import open_store
from domain.application import SNAPSHOT_INTERVAL, CommandMeta
from domain.errors import InvalidValue, SubjectErased
from domain.personal import ERASED
from domain.values import (
    AccountKind,
    Address,
    Channel,
    ComplaintSeverity,
    Direction,
    PurchaseIntent,
    SatisfactionLevel,
    Stage,
    Tier,
)
from eventstore.audit import Audit
from eventstore.integrity import verify
from eventstore.transfer import export_lines, import_lines
from projections.runner import VIEW_CLASSES

CLERK, DPO = CommandMeta("clerk"), CommandMeta("dpo")

# What must never be readable once erased (and never sits in a table as is).
JANE = ("Jane Quillfeather", "jane.quillfeather@example.org", "+44 20 7946 0718")
ACCOUNT = ("Quillfeather Stationers", "17 Inkwell Mews", "Discussed the Quill renewal")
KEPT = "Bartholomew Keepsake"
# A complaint's texts: description, escalation reason, resolution, root cause,
# prevention action, reopening reason.
COMPLAINT = (
    "Ink smudged on every ream",
    "Third smudged delivery",
    "Replaced the batch",
    "Damp store room",
    "Dehumidifier installed",
    "Smudged again",
)
# A survey's comment, in the customer's words.
SURVEY = "Jane says the new paper feels like velvet"


def _story(app):
    """An account with two contacts, interactions and enough events for a snapshot."""
    opened = app.open_account(
        CLERK,
        name=ACCOUNT[0],
        kind=AccountKind.ORGANIZATION,
        address=Address(street=ACCOUNT[1], city="Leeds", country="GB"),
        special_requirements="Deliveries before nine",
    )
    account_id = opened.account_id
    jane = app.add_contact(
        CLERK,
        account_id,
        name=JANE[0],
        email=JANE[1],
        birthday=date(1980, 5, 17),
        preferences="Prefers letters",
    ).created_id
    app.update_contact(CLERK, account_id, jane, phone=JANE[2])
    kept = app.add_contact(CLERK, account_id, name=KEPT, role="buyer").created_id
    app.change_tier(CLERK, account_id, Tier.PARTNER, "volume grew")
    app.change_stage(CLERK, account_id, Stage.AWARENESS, "first order")
    call = app.log_interaction(
        CLERK,
        account_id,
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        occurred_at=datetime.now(tz=UTC) - timedelta(days=2),
        participants=(JANE[0],),
        summary=ACCOUNT[2],
        effort_minutes=15,
    ).created_id
    app.record_written_confirmation(
        CLERK,
        account_id,
        call,
        confirmed_at=datetime.now(tz=UTC) - timedelta(days=1),
        note="Minutes sent by letter",
    )
    _complaint(app, account_id, jane)
    app.record_survey(
        CLERK,
        account_id,
        satisfaction=SatisfactionLevel.SATISFIED,
        intent_to_buy_again=PurchaseIntent.YES,
        likelihood_to_recommend=9,
        comment=SURVEY,
        contact_id=jane,
        answered_at=datetime.now(tz=UTC) - timedelta(days=1),
    )
    version = app.get_account(account_id).version
    for i in range(SNAPSHOT_INTERVAL - version + 1):
        app.log_interaction(
            CLERK,
            account_id,
            channel=Channel.EMAIL,
            direction=Direction.INBOUND,
            occurred_at=datetime.now(tz=UTC) - timedelta(hours=1),
            summary=f"Order {i}",
        )
    return account_id, jane, kept


def _complaint(app, account_id, jane):
    """A complaint from Jane, resolved and reopened: every text it can hold."""
    filed = datetime.now(tz=UTC) - timedelta(days=3)
    complaint = app.file_complaint(
        CLERK,
        account_id,
        category="quality",
        severity=ComplaintSeverity.HIGH,
        description=f"{JANE[0]}: {COMPLAINT[0]}",
        channel=Channel.LETTER,
        filed_at=filed,
        contact_id=jane,
    ).created_id
    app.acknowledge_complaint(
        CLERK, account_id, complaint, acknowledged_at=filed + timedelta(hours=1)
    )
    app.escalate_complaint(
        CLERK,
        account_id,
        complaint,
        escalated_to="quality desk",
        reason=COMPLAINT[1],
        escalated_at=filed + timedelta(hours=2),
    )
    app.resolve_complaint(
        CLERK,
        account_id,
        complaint,
        resolution=COMPLAINT[2],
        root_cause=COMPLAINT[3],
        prevention_action=COMPLAINT[4],
        resolved_at=filed + timedelta(days=1),
    )
    app.reopen_complaint(
        CLERK,
        account_id,
        complaint,
        reason=COMPLAINT[5],
        reopened_at=filed + timedelta(days=2),
    )


def _stored_text(db, account_id) -> str:
    """The account's events and snapshots as the tables hold them."""
    return "\n".join(
        [
            db.execute(
                "SELECT string_agg(convert_from(state, 'UTF8'), ' ') FROM rapport_events"
                " WHERE originator_id = %s",
                (account_id,),
            ).fetchone()[0],
            db.execute(
                "SELECT coalesce(string_agg(convert_from(state, 'UTF8'), ' '), '')"
                " FROM rapport_snapshots WHERE originator_id = %s",
                (account_id,),
            ).fetchone()[0],
        ]
    )


def _raw_text(db, account_id) -> str:
    """Everything the database holds about the account, as text."""
    parts = [_stored_text(db, account_id)]
    for cls in VIEW_CLASSES:
        for table in cls.tables:
            rows = db.execute(
                f"SELECT t::text FROM {table} t WHERE account_id = %s",
                (account_id,),
            ).fetchall()
            parts.extend(row[0] for row in rows)
    return "\n".join(parts)


def _views(db):
    tables = [table for cls in VIEW_CLASSES for table in cls.tables]
    return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}


def test_personal_values_are_sealed_in_the_tables_but_read_back(app, db):
    account_id, jane, _ = _story(app)
    raw = _stored_text(db, account_id)
    snapshots = db.execute(
        "SELECT count(*) FROM rapport_snapshots WHERE originator_id = %s", (account_id,)
    ).fetchone()[0]
    assert snapshots == 1
    for secret in (
        *JANE,
        *ACCOUNT,
        *COMPLAINT,
        SURVEY,
        KEPT,
        "1980-05-17",
        "Prefers letters",
    ):
        assert secret not in raw
    (survey,) = Audit(app).history(account_id, types=["SurveyRecorded"])
    assert survey.payload["comment"] == SURVEY
    # Non-personal facts stay readable to anyone with the table.
    assert "volume grew" in raw
    assert '"effort_minutes":15' in raw
    account = app.get_account(account_id)
    assert (account.name, account.contacts[jane].email) == (ACCOUNT[0], JANE[1])
    assert account.contacts[jane].birthday == date(1980, 5, 17)


def test_erasing_a_contact_destroys_its_key_and_keeps_the_rest(app, projections, db):
    account_id, jane, kept = _story(app)
    projections.catch_up()
    before = app.get_account(account_id).version
    outcome = app.erase_personal_data(DPO, account_id, contact_id=jane, reason="REQ-77")
    projections.catch_up()

    key, erased_by = db.execute(
        "SELECT key, erased_by FROM rapport_subject_keys"
        " WHERE account_id = %s AND subject_id = %s",
        (account_id, jane),
    ).fetchone()
    assert key is None
    assert erased_by is not None
    account = app.get_account(account_id)
    erased = account.contacts[jane]
    assert erased.erased
    assert (erased.name, erased.email, erased.phone, erased.birthday) == (
        ERASED,
        ERASED,
        ERASED,
        None,
    )
    assert account.contacts[kept].name == KEPT
    assert account.name == ACCOUNT[0]
    assert (account.tier, account.stage) == (Tier.PARTNER, Stage.AWARENESS)

    # History and time travel replay, with the values erased.
    audit = Audit(app)
    contact_events = audit.history(
        account_id, types=["ContactAdded", "ContactUpdated", "PersonalDataErased"]
    )
    added, updated, added_kept, erasure = contact_events
    assert added.payload["name"] == ERASED
    assert added_kept.payload["name"] == KEPT
    assert updated.payload["phone"] == ERASED
    assert erasure.type == "PersonalDataErased"
    assert erasure.recorded.actor == "dpo"
    assert erasure.payload == {"contact_id": str(jane), "reason": "REQ-77"}
    assert audit.state_at(account_id, version=3).contacts[jane].name == ERASED
    assert audit.state_at(account_id, version=before).contacts[kept].name == KEPT
    assert outcome.version == before + 1

    # The views show it erased; the raw tables hold none of it.
    card = db.execute(
        "SELECT contacts -> %s::text FROM account_view WHERE account_id = %s",
        (jane, account_id),
    ).fetchone()[0]
    assert card["erased"] is True
    assert card["name"] == ERASED
    assert "birthday" not in card
    raw = _raw_text(db, account_id)
    for secret in JANE[1:]:
        assert secret not in raw
    # The boundary: interactions are the account's record, sealed with the
    # account's key, so a contact's erasure leaves their participant lists and
    # texts; erasing the account erases those too.
    summary, participants = db.execute(
        "SELECT summary, participants FROM interaction_timeline"
        " WHERE account_id = %s AND channel = 'call'",
        (account_id,),
    ).fetchone()
    assert (summary, participants) == (ACCOUNT[2], [JANE[0]])
    (description,) = db.execute(
        "SELECT description FROM complaints WHERE account_id = %s", (account_id,)
    ).fetchone()
    assert description == f"{JANE[0]}: {COMPLAINT[0]}"
    assert verify(app.recorder).intact


def test_an_erased_contact_takes_no_new_personal_data(app):
    account_id, jane, _ = _story(app)
    app.erase_personal_data(DPO, account_id, contact_id=jane, reason="REQ-78")
    with pytest.raises(SubjectErased):
        app.update_contact(CLERK, account_id, jane, name="Jane Again")
    with pytest.raises(SubjectErased):
        app.erase_personal_data(DPO, account_id, contact_id=jane, reason="twice")
    with pytest.raises(SubjectErased):
        app.remove_contact(CLERK, account_id, jane, reason="gone")


def test_the_store_refuses_to_seal_for_an_erased_subject(app):
    """A command that read the state before the erasure cannot slip data past it."""
    account_id, jane, _ = _story(app)
    stale = app.get_account(account_id)
    app.erase_personal_data(DPO, account_id, contact_id=jane, reason="REQ-79")
    stale.update_contact(contact_id=jane, name="Jane Stale")
    (event,) = stale.collect_events()
    with pytest.raises(SubjectErased):
        app.mapper.to_stored_event(event)


def test_a_removed_contact_can_still_be_erased(app, projections, db):
    account_id, jane, _ = _story(app)
    app.remove_contact(CLERK, account_id, jane, reason=f"{JANE[0]} left")
    app.erase_personal_data(DPO, account_id, contact_id=jane, reason="REQ-80")
    projections.catch_up()
    removed = Audit(app).history(account_id, types=["ContactRemoved"])
    assert removed[0].payload["reason"] == ERASED
    assert app.get_account(account_id).former_contacts[jane].erased


def test_erasing_the_account_erases_every_subject_of_it(app, projections, db):
    account_id, _, _ = _story(app)
    projections.catch_up()
    app.erase_personal_data(DPO, account_id, reason="customer asked, REQ-81")
    projections.catch_up()

    keys = db.execute(
        "SELECT count(*), count(key) FROM rapport_subject_keys WHERE account_id = %s",
        (account_id,),
    ).fetchone()
    assert keys == (3, 0)  # the account, Jane and Bartholomew: all destroyed
    account = app.get_account(account_id)
    assert account.personal_data_erased
    assert account.name == ERASED
    assert account.address == Address(street=ERASED, city=ERASED, country=ERASED)
    assert all(c.erased for c in account.contacts.values())
    # The audit trail of non-personal facts is intact.
    assert (account.tier, account.stage) == (Tier.PARTNER, Stage.AWARENESS)
    tier_change = Audit(app).history(account_id, types=["TierChanged"])[0]
    assert tier_change.payload["reason"] == "volume grew"
    interaction = db.execute(
        "SELECT participants, summary, confirmation_note, effort_minutes"
        " FROM interaction_timeline WHERE account_id = %s AND channel = 'call'",
        (account_id,),
    ).fetchone()
    assert interaction == ([ERASED], ERASED, ERASED, 15)
    unconfirmed = db.execute(
        "SELECT count(*) FROM interaction_timeline WHERE account_id = %s"
        " AND channel = 'email' AND confirmation_note IS NOT NULL",
        (account_id,),
    ).fetchone()[0]
    assert unconfirmed == 0  # no confirmation, no note: nothing to erase
    complaint = db.execute(
        "SELECT complaint_id, category, severity, escalated_to, description,"
        " escalation_reason, reopen_reason, status FROM complaints"
        " WHERE account_id = %s",
        (account_id,),
    ).fetchone()
    assert complaint[1:] == (
        "quality",
        "high",
        "quality desk",
        ERASED,
        ERASED,
        ERASED,
        "reopened",
    )
    history = Audit(app).history(
        account_id, types=["ComplaintFiled", "ComplaintResolved", "ComplaintReopened"]
    )
    assert [
        (e.payload.get("description"), e.payload.get("resolution"), e.payload.get("reason"))
        for e in history
    ] == [(ERASED, None, None), (None, ERASED, None), (None, None, ERASED)]
    assert history[1].payload["prevention_action"] == ERASED
    survey = db.execute(
        "SELECT satisfaction, likelihood_to_recommend, comment FROM surveys"
        " WHERE account_id = %s",
        (account_id,),
    ).fetchone()
    assert survey == ("satisfied", 9, ERASED)  # the scores stay
    (recorded,) = Audit(app).history(account_id, types=["SurveyRecorded"])
    assert (recorded.payload["comment"], recorded.payload["satisfaction"]) == (
        ERASED,
        "satisfied",
    )
    raw = _raw_text(db, account_id)
    for secret in (*JANE, *ACCOUNT, *COMPLAINT, SURVEY, KEPT, "Order 7"):
        assert secret not in raw

    # Non-personal work goes on; new personal data is refused.
    app.change_tier(CLERK, account_id, Tier.PREFERRED_SUPPLIER, "scaled back")
    with pytest.raises(SubjectErased):
        app.add_contact(CLERK, account_id, name="Someone New")
    with pytest.raises(SubjectErased):
        app.log_interaction(
            CLERK,
            account_id,
            channel=Channel.CALL,
            direction=Direction.INBOUND,
            occurred_at=datetime.now(tz=UTC),
        )
    # Surveys are still recorded, without a comment.
    with pytest.raises(SubjectErased):
        app.record_survey(
            CLERK,
            account_id,
            satisfaction=SatisfactionLevel.NEUTRAL,
            intent_to_buy_again=PurchaseIntent.UNSURE,
            likelihood_to_recommend=5,
            comment="Anything",
            answered_at=datetime.now(tz=UTC),
        )
    app.record_survey(
        CLERK,
        account_id,
        satisfaction=SatisfactionLevel.NEUTRAL,
        intent_to_buy_again=PurchaseIntent.UNSURE,
        likelihood_to_recommend=5,
        answered_at=datetime.now(tz=UTC),
    )
    # An open complaint still goes through its lifecycle, without new text.
    with pytest.raises(SubjectErased):
        app.resolve_complaint(
            CLERK,
            account_id,
            complaint[0],
            resolution="Sent new stock",
            resolved_at=datetime.now(tz=UTC),
        )
    app.resolve_complaint(
        CLERK, account_id, complaint[0], resolution="", resolved_at=datetime.now(tz=UTC)
    )
    app.close_complaint(CLERK, account_id, complaint[0], closed_at=datetime.now(tz=UTC))
    with pytest.raises(SubjectErased):
        app.file_complaint(
            CLERK,
            account_id,
            category="quality",
            severity=ComplaintSeverity.LOW,
            description="Anything",
            channel=Channel.EMAIL,
            filed_at=datetime.now(tz=UTC),
        )


def test_a_rebuild_after_erasures_equals_the_live_views(app, projections, db):
    first, jane, _ = _story(app)
    second, _, _ = _story(app)
    projections.catch_up()
    app.erase_personal_data(DPO, first, contact_id=jane, reason="REQ-82")
    app.erase_personal_data(DPO, second, reason="REQ-83")
    projections.catch_up()
    live = _views(db)
    projections.rebuild(projections.views)
    assert _views(db) == live


def test_values_stored_before_sealing_read_as_erased_after_an_erasure(app, db):
    """Events written in plain text (before sealing existed) honour an erasure."""
    account_id, contact_id = uuid4(), uuid4()
    moment = {"_type_": "datetime_iso", "_data_": datetime.now(tz=UTC).isoformat()}
    address = {"street": "", "city": "", "postal_code": "", "country": ""}

    def plain(version: int, topic: str, **fields) -> StoredEvent:
        return StoredEvent(
            originator_id=account_id,
            originator_version=version,
            topic=f"domain.account:Account.{topic}",
            state=json.dumps(
                {"timestamp": moment, **fields}, separators=(",", ":")
            ).encode(),
        )

    app.recorder.insert_events(
        [
            plain(
                1,
                "AccountOpened",
                originator_topic="domain.account:Account",
                class_version=2,
                name="Plain Old Ltd",
                kind="organization",
                business_category="",
                address={"_type_": "address", "_data_": address},
                channels=[],
                special_requirements="",
                purchase_characteristics="",
            ),
            plain(
                2,
                "ContactAdded",
                contact_id={"_type_": "uuid_hex", "_data_": contact_id.hex},
                name="Plain Person",
                role="",
                influence="medium",
                email="plain@example.org",
                phone=None,
                birthday=None,
                preferences="",
            ),
        ],
        meta=CommandMeta("legacy-import"),
    )
    assert app.get_account(account_id).contacts[contact_id].name == "Plain Person"
    app.erase_personal_data(DPO, account_id, contact_id=contact_id, reason="REQ-84")
    contact = app.get_account(account_id).contacts[contact_id]
    assert (contact.name, contact.email) == (ERASED, ERASED)
    assert app.get_account(account_id).name == "Plain Old Ltd"
    added = Audit(app).history(account_id, types=["ContactAdded"])[0]
    assert added.payload["email"] == ERASED


def test_a_wrong_key_is_an_error_not_an_erasure(empty_database_url):
    app, _ = open_store(empty_database_url)
    try:
        account_id = app.open_account(
            CLERK, name="Sealed", kind=AccountKind.GROUP
        ).account_id
        with psycopg.connect(empty_database_url, autocommit=True) as owner:
            owner.execute(
                "UPDATE rapport_subject_keys"
                " SET key = decode(md5(random()::text) || md5(random()::text), 'hex')"
                " WHERE account_id = %s",
                (account_id,),
            )
        app.mapper.keys.forget(account_id)  # this process's copy of the old key
        with pytest.raises(ValueError, match="does not open with its subject's key"):
            Audit(app).history(account_id, types=["AccountOpened"])
    finally:
        app.close()


def test_a_contact_cannot_take_the_accounts_id(app):
    account_id = app.open_account(CLERK, name="Twin", kind=AccountKind.GROUP).account_id
    with pytest.raises(InvalidValue, match="account's id"):
        app.add_contact(CLERK, account_id, contact_id=account_id, name="Twin")


def test_an_import_without_keys_reads_and_refuses_personal_data_as_erased(
    app, empty_database_url
):
    account_id, jane, _ = _story(app)
    lines = list(export_lines(app.recorder, account_id, keys=False))
    copy, _ = open_store(empty_database_url)
    try:
        import_lines(copy.recorder, lines)
        assert copy.get_account(account_id).contacts[jane].name == ERASED
        with pytest.raises(SubjectErased):
            copy.update_contact(CLERK, account_id, jane, phone="+44 20 7946 0999")
        copy.change_stage(CLERK, account_id, Stage.EXPANSION, "grew")
        assert copy.get_account(account_id).stage == Stage.EXPANSION
    finally:
        copy.close()


def test_a_key_line_does_not_revive_an_account_erased_as_a_whole(app, empty_database_url):
    account_id, jane, _ = _story(app)
    app.erase_personal_data(DPO, account_id, reason="REQ-85")
    lines = list(export_lines(app.recorder, account_id))
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record.get("subject_key", {}).get("subject_id") == str(jane):
            record["subject_key"].update(key=base64.b64encode(bytes(32)).decode())
            record["subject_key"].update(erased_at=None, erased_by=None)
            lines[i] = json.dumps(record)
    copy, _ = open_store(empty_database_url)
    try:
        import_lines(copy.recorder, lines)
        assert copy.get_account(account_id).contacts[jane].name == ERASED
    finally:
        copy.close()


def test_snapshots_from_before_sealing_are_dropped_at_migration(app, database_url):
    account_id, _, _ = _story(app)
    with psycopg.connect(database_url, autocommit=True) as owner:
        (state,) = owner.execute(
            "SELECT convert_from(state, 'UTF8') FROM rapport_snapshots"
            " WHERE originator_id = %s",
            (account_id,),
        ).fetchone()
        old = json.loads(state)
        old["state"]["class_version"] = 2
        owner.execute(
            "INSERT INTO rapport_snapshots (originator_id, originator_version, topic,"
            " state) SELECT originator_id, 50, topic, %s FROM rapport_snapshots"
            " WHERE originator_id = %s",
            (json.dumps(old).encode(), account_id),
        )
        again, _ = open_store(database_url, migrate=True)
        again.close()
        versions = owner.execute(
            "SELECT originator_version FROM rapport_snapshots WHERE originator_id = %s",
            (account_id,),
        ).fetchall()
    assert versions == [(SNAPSHOT_INTERVAL,)]
