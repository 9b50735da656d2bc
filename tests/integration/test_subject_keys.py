"""Subject keys are read an account at a time, and a batch's in one query."""

from __future__ import annotations

from uuid import uuid4

from api.runtime import open_store
from domain.application import CommandMeta
from domain.values import AccountKind
from eventstore.sealing import ERASED, SubjectKeys, sealing_mapper

CLERK = CommandMeta("clerk")


def _counting(keys: SubjectKeys, monkeypatch) -> list[int]:
    """How many accounts each read of the key table asked for."""
    reads: list[int] = []
    fetch = keys._fetch  # noqa: SLF001 - counting its reads

    def counted(account_ids):
        reads.append(len(account_ids))
        return fetch(account_ids)

    monkeypatch.setattr(keys, "_fetch", counted)
    return reads


def test_a_batch_of_events_reads_its_accounts_keys_in_one_query(
    app, empty_database_url, monkeypatch
):
    writer, _ = open_store(empty_database_url)
    try:
        accounts = []
        for i in range(6):
            account_id = writer.open_account(
                CLERK, name=f"Batch {i}", kind=AccountKind.GROUP
            ).account_id
            writer.add_contact(CLERK, account_id, name=f"Contact {i}", email="c@x.example")
            accounts.append(account_id)
        stored = [r.stored for r in writer.recorder.read_after(0, 100)]
    finally:
        writer.close()
    reader, _ = open_store(empty_database_url)  # a process with no key cached
    try:
        mapper = sealing_mapper(reader)
        assert mapper.keys is not None
        reads = _counting(mapper.keys, monkeypatch)
        events = mapper.to_domain_events(stored)
        assert reads == [len(accounts)]
        assert [vars(e) for e in events] == [
            vars(mapper.to_domain_event(s)) for s in stored
        ]
        assert {e.name for e in events if hasattr(e, "email")} == {
            f"Contact {i}" for i in range(6)
        }
    finally:
        reader.close()


def test_keys_read_while_an_erasure_commits_are_not_kept(app, monkeypatch):
    """An erasure's forget can land between a read of the keys and its caching:
    what was read before it must not stay cached."""
    account_id = app.open_account(CLERK, name="Racing", kind=AccountKind.GROUP).account_id
    keys = sealing_mapper(app).keys
    assert keys is not None
    keys.forget(account_id)
    get_connection = keys.datastore.get_connection

    def erasure_meanwhile(*args, **kwargs):
        keys.forget(account_id)  # as the erasing thread does once it commits
        return get_connection(*args, **kwargs)

    monkeypatch.setattr(keys.datastore, "get_connection", erasure_meanwhile)
    assert keys.state(account_id, account_id).cipher is not None
    monkeypatch.undo()
    reads = _counting(keys, monkeypatch)
    keys.state(account_id, account_id)
    keys.state(account_id, account_id)
    assert reads == [1]  # the racing read was not kept; this one is


def test_an_erased_account_reads_every_subject_as_erased(app):
    account_id = app.open_account(CLERK, name="Whole", kind=AccountKind.GROUP).account_id
    contact_id = app.add_contact(CLERK, account_id, name="Part").created_id
    keys = sealing_mapper(app).keys
    assert keys is not None
    assert keys.state(account_id, contact_id).cipher is not None
    app.erase_personal_data(CommandMeta("dpo"), account_id, reason="asked")
    assert keys.state(account_id, contact_id) == ERASED
    assert keys.state(account_id, uuid4()) == ERASED  # a subject with no key too


def test_a_subject_keyed_in_another_process_since_its_account_was_read_opens(
    two_processes,
):
    """This process read the account's keys; another then added a contact
    (and its key): the contact's values open here, not as erased."""
    here, there = two_processes
    account_id = there.open_account(
        CLERK, name="Keyed there", kind=AccountKind.GROUP
    ).account_id
    assert here.get_account(account_id).name == "Keyed there"  # its keys read
    contact_id = there.add_contact(
        CLERK, account_id, name="Ann Lee", email="ann@x.example"
    ).created_id
    contact = here.get_account(account_id).contacts[contact_id]
    assert (contact.name, contact.email) == ("Ann Lee", "ann@x.example")
    stored = [r.stored for r in here.recorder.account_events(account_id)]
    added = sealing_mapper(here).to_domain_events(stored)[-1]
    assert (added.name, added.email) == ("Ann Lee", "ann@x.example")


def test_a_subject_without_a_key_is_not_read_again_and_again(app, monkeypatch):
    """Values stored before sealing ask whether their subject was erased: a
    subject with no key is answered from the account's cached keys."""
    account_id = app.open_account(CLERK, name="Keyless", kind=AccountKind.GROUP).account_id
    keys = sealing_mapper(app).keys
    assert keys is not None
    keys.state(account_id, account_id)
    reads = _counting(keys, monkeypatch)
    for _ in range(5):
        for subject in (uuid4(), uuid4()):
            assert keys.state(account_id, subject).cipher is None
    assert reads == []


def test_a_subject_looked_up_before_its_key_was_made_elsewhere_opens(two_processes):
    here, there = two_processes
    account_id = there.open_account(
        CLERK, name="Asked early", kind=AccountKind.GROUP
    ).account_id
    contact_id = uuid4()
    keys = sealing_mapper(here).keys
    assert keys is not None
    assert keys.state(account_id, contact_id).cipher is None  # no key yet
    there.add_contact(CLERK, account_id, contact_id=contact_id, name="Ann Lee")
    assert here.get_account(account_id).contacts[contact_id].name == "Ann Lee"
