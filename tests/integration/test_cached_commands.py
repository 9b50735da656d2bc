"""A command starts from the account its process keeps, without reading the
store; a write from another process since is caught, and the command is judged
again on the stored account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.application import CommandMeta
from domain.errors import AccountNotFound, ConcurrencyConflict, ContactNotFound
from domain.values import AccountKind, Channel, Direction, Tier

CLERK = CommandMeta("clerk")


def _log(app, account_id, summary="", meta=CLERK, **kwargs):
    return app.log_interaction(
        meta,
        account_id,
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        occurred_at=datetime.now(tz=UTC) - timedelta(minutes=1),
        summary=summary,
        **kwargs,
    )


def _behind(here, there):
    """An account ``here`` keeps at version 1, which ``there`` moved to 2."""
    account_id = here.open_account(CLERK, name="Shared", kind=AccountKind.GROUP).account_id
    assert _reads_of(here, lambda: here.get_account(account_id)) == 1
    _log(there, account_id, "From there")
    return account_id


def _reads_of(app, work) -> int:
    """How many times ``work`` read an account's events from the store."""
    recorder = app.recorder
    select_events = recorder.select_events
    reads = []

    def counted(*args, **kwargs):
        reads.append(args)
        return select_events(*args, **kwargs)

    recorder.select_events = counted
    try:
        work()
    finally:
        del recorder.select_events
    return len(reads)


def test_a_command_on_an_account_only_this_process_writes_reads_nothing(two_processes):
    here, _ = two_processes
    account_id = here.open_account(CLERK, name="Mine", kind=AccountKind.GROUP).account_id
    _log(here, account_id, "First")
    outcome = None

    def second():
        nonlocal outcome
        outcome = _log(here, account_id, "Second")

    assert _reads_of(here, second) == 0
    assert outcome.version == 3


def test_a_write_from_another_process_is_caught_and_kept(two_processes):
    here, there = two_processes
    account_id = _behind(here, there)
    outcome = _log(here, account_id, "From here")
    assert outcome.version == 3  # after there's, not in its place
    account = there.get_account(account_id)
    assert account.version == 3
    assert len(account.interactions) == 2


def test_a_rule_is_judged_on_the_stored_account(two_processes):
    here, there = two_processes
    account_id = here.open_account(
        CLERK, name="Contacts", kind=AccountKind.GROUP
    ).account_id
    here.get_account(account_id)
    contact_id = there.add_contact(CLERK, account_id, name="Added there").created_id
    # Here's account has no such contact: the command is judged again.
    here.update_contact(CLERK, account_id, contact_id=contact_id, name="Renamed here")
    assert there.get_account(account_id).contacts[contact_id].name == "Renamed here"
    with pytest.raises(ContactNotFound):  # a refusal on the stored account stands
        here.update_contact(CLERK, account_id, contact_id=account_id, name="Nobody")


def test_an_expected_version_is_compared_with_the_stored_account(two_processes):
    here, there = two_processes
    account_id = _behind(here, there)
    outcome = here.change_tier(
        CLERK, account_id, expected_version=2, tier=Tier.PARTNER, reason="grew"
    )
    assert outcome.version == 3
    with pytest.raises(ConcurrencyConflict):
        here.change_tier(
            CLERK, account_id, expected_version=2, tier=Tier.TRANSACTIONAL, reason="shrank"
        )


def test_an_expected_version_only_the_cache_matches_is_a_conflict(two_processes):
    here, there = two_processes
    account_id = _behind(here, there)
    with pytest.raises(ConcurrencyConflict):
        here.change_tier(
            CLERK, account_id, expected_version=1, tier=Tier.PARTNER, reason="grew"
        )
    assert there.get_account(account_id).version == 2


def _only_anns(account):
    if account.manager != "ann":
        raise AccountNotFound(account.id)


ANNS = CommandMeta("ann", authorize=_only_anns)


def _handed_over(here, there, *, first, then):
    """An account ``here`` keeps as ``first``'s, which ``there`` gave to ``then``."""
    account_id = here.open_account(
        CLERK, name=f"From {first} to {then}", kind=AccountKind.GROUP, manager=first
    ).account_id
    here.get_account(account_id)
    there.assign_manager(CLERK, account_id, manager=then, reason="handed over")
    return account_id


def test_access_is_judged_on_the_stored_account(two_processes):
    here, there = two_processes
    account_id = _handed_over(here, there, first="ann", then="bob")
    with pytest.raises(AccountNotFound):  # here's cache still says ann's
        _log(here, account_id, meta=ANNS)
    assert there.get_account(account_id).version == 3  # nothing written


def test_access_refused_on_the_cached_account_is_judged_again(two_processes):
    here, there = two_processes
    account_id = _handed_over(here, there, first="bob", then="ann")
    assert _log(here, account_id, meta=ANNS).version == 4  # here's cache says bob's
