"""The application service on in-memory persistence: versions and retries."""

from __future__ import annotations

import pytest

from domain.application import Accounts, CommandMeta
from domain.errors import AccountAlreadyExists, AccountNotFound, ConcurrencyConflict
from domain.values import AccountKind, Stage, Tier

META = CommandMeta(actor="alice")


@pytest.fixture
def accounts() -> Accounts:
    return Accounts(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def test_an_expected_version_that_is_stale_is_a_conflict_and_writes_nothing(accounts):
    opened = accounts.open_account(META, name="Acme", kind=AccountKind.ORGANIZATION)
    accounts.change_tier(META, opened.account_id, Tier.PARTNER, "joint plans")
    with pytest.raises(ConcurrencyConflict) as conflict:
        accounts.change_stage(
            META, opened.account_id, Stage.AWARENESS, expected_version=opened.version
        )
    assert (conflict.value.expected_version, conflict.value.actual_version) == (1, 2)
    assert accounts.get_account(opened.account_id).version == 2


def test_the_current_expected_version_is_accepted(accounts):
    opened = accounts.open_account(META, name="Acme", kind=AccountKind.ORGANIZATION)
    changed = accounts.change_stage(
        META, opened.account_id, Stage.AWARENESS, expected_version=opened.version
    )
    assert changed.version == 2


def test_commands_on_an_unknown_account_are_refused(accounts):
    opened = accounts.open_account(META, name="Acme", kind=AccountKind.ORGANIZATION)
    with pytest.raises(AccountNotFound):
        accounts.assign_manager(META, opened.account_id.__class__(int=1), "bob")


def test_an_account_id_can_be_chosen_once(accounts):
    opened = accounts.open_account(META, name="Acme", kind=AccountKind.ORGANIZATION)
    with pytest.raises(AccountAlreadyExists):
        accounts.open_account(
            META, account_id=opened.account_id, name="Again", kind=AccountKind.GROUP
        )
