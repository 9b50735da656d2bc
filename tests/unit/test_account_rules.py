"""The account's rules, checked in the command, never on replay. No I/O."""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain.account import Account, InteractionRecord
from domain.errors import (
    AlreadyConfirmed,
    ConfirmationNotApplicable,
    ContactNotFound,
    InteractionNotFound,
    InvalidValue,
    StageTransitionNotAllowed,
    UnchangedValue,
)
from domain.values import AccountKind, Channel, Direction, Stage, Tier

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def opened() -> Account:
    return Account.open(name="Acme Tools", kind=AccountKind.ORGANIZATION)


def replayed(account: Account) -> Account:
    """The account rebuilt from its own pending events alone."""
    state: Account | None = None
    for event in account.collect_events():
        state = event.mutate(state)  # type: ignore[arg-type]
    assert isinstance(state, Account)
    return state


def test_a_new_account_starts_transactional_in_exploration():
    account = opened()
    assert account.tier is Tier.TRANSACTIONAL
    assert account.stage is Stage.EXPLORATION


def test_an_account_needs_a_name():
    with pytest.raises(InvalidValue) as refused:
        Account.open(name="  ", kind=AccountKind.INDIVIDUAL)
    assert refused.value.field == "name"


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], Stage.AWARENESS),
        ([Stage.AWARENESS], Stage.EXPANSION),
        ([Stage.AWARENESS, Stage.EXPANSION], Stage.COMMITMENT),
        ([], Stage.DISSOLUTION),
        ([Stage.AWARENESS, Stage.EXPANSION], Stage.DISSOLUTION),
        ([Stage.DISSOLUTION], Stage.EXPLORATION),
    ],
)
def test_stage_moves_one_step_forward_or_to_dissolution_or_reopens(path, target):
    account = opened()
    for stage in path:
        account.change_stage(stage=stage)
    account.change_stage(stage=target, reason="next step")
    assert account.stage is target


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], Stage.COMMITMENT),
        ([], Stage.EXPANSION),
        ([], Stage.EXPLORATION),
        ([Stage.AWARENESS, Stage.EXPANSION], Stage.AWARENESS),
        ([Stage.DISSOLUTION], Stage.AWARENESS),
        ([Stage.DISSOLUTION], Stage.DISSOLUTION),
    ],
)
def test_stage_cannot_skip_go_back_or_stay(path, target):
    account = opened()
    for stage in path:
        account.change_stage(stage=stage)
    version = account.version
    with pytest.raises(StageTransitionNotAllowed):
        account.change_stage(stage=target)
    assert account.version == version


def test_tier_changes_in_any_direction_with_a_reason():
    account = opened()
    account.change_tier(tier=Tier.STRATEGIC_ALLIANCE, reason="joint venture")
    account.change_tier(tier=Tier.PREFERRED_SUPPLIER, reason="scaled back")
    assert account.tier is Tier.PREFERRED_SUPPLIER


def test_tier_change_needs_a_reason_and_a_different_tier():
    account = opened()
    with pytest.raises(InvalidValue):
        account.change_tier(tier=Tier.PARTNER, reason=" ")
    with pytest.raises(UnchangedValue):
        account.change_tier(tier=Tier.TRANSACTIONAL, reason="same")


def test_written_confirmation_is_only_for_oral_interactions():
    account = opened()
    call, mail = uuid4(), uuid4()
    account.log_interaction(
        interaction_id=call,
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        occurred_at=NOW,
    )
    account.log_interaction(
        interaction_id=mail,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        occurred_at=NOW,
    )
    assert account.unconfirmed_oral_interactions == 1
    with pytest.raises(ConfirmationNotApplicable):
        account.record_written_confirmation(interaction_id=mail, confirmed_at=NOW)
    account.record_written_confirmation(interaction_id=call, confirmed_at=NOW)
    assert account.unconfirmed_oral_interactions == 0
    with pytest.raises(AlreadyConfirmed):
        account.record_written_confirmation(interaction_id=call, confirmed_at=NOW)
    with pytest.raises(InteractionNotFound):
        account.record_written_confirmation(interaction_id=uuid4(), confirmed_at=NOW)


def test_a_written_confirmation_cannot_itself_be_oral():
    account = opened()
    visit = uuid4()
    account.log_interaction(
        interaction_id=visit,
        channel=Channel.VISIT,
        direction=Direction.OUTBOUND,
        occurred_at=NOW,
    )
    with pytest.raises(InvalidValue):
        account.record_written_confirmation(
            interaction_id=visit, confirmed_at=NOW, channel=Channel.CALL
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"occurred_at": datetime.now(tz=UTC) + timedelta(days=3)}, "occurredAt"),
        ({"occurred_at": datetime(2026, 1, 1, 9, 0)}, "occurredAt"),  # noqa: DTZ001 - the point
        ({"effort_minutes": -5}, "effortMinutes"),
        ({"effort_minutes": 24 * 60 + 1}, "effortMinutes"),
        ({"summary": "x" * 4001}, "summary"),
        ({"participants": ("Ann",) * 101}, "participants"),
        ({"participants": ("",)}, "participants"),
    ],
)
def test_interaction_input_is_validated(changes, field):
    account = opened()
    facts = {
        "interaction_id": uuid4(),
        "channel": Channel.MEETING,
        "direction": Direction.OUTBOUND,
        "occurred_at": NOW,
    } | changes
    with pytest.raises(InvalidValue) as refused:
        account.log_interaction(**facts)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"birthday": date.today() + timedelta(days=2)}, "birthday"),  # noqa: DTZ011
        ({"name": ""}, "name"),
    ],
)
def test_contact_cards_are_validated(card, field):
    account = opened()
    with pytest.raises(InvalidValue) as refused:
        account.add_contact(**({"contact_id": uuid4(), "name": "Ann Lee"} | card))
    assert refused.value.field == field
    assert account.contacts == {}


def test_contacts_are_added_updated_and_removed():
    account = opened()
    ann = uuid4()
    account.add_contact(contact_id=ann, name="Ann Lee", email="ann@acme.test")
    account.update_contact(contact_id=ann, role="Head of purchasing")
    assert account.contacts[ann].role == "Head of purchasing"
    assert account.contacts[ann].email == "ann@acme.test"
    with pytest.raises(UnchangedValue):
        account.update_contact(contact_id=ann, role="Head of purchasing")
    account.remove_contact(contact_id=ann, reason="left the company")
    with pytest.raises(ContactNotFound):
        account.remove_contact(contact_id=ann, reason="again")


def test_manager_reassignment_keeps_the_previous_manager_in_the_event():
    account = opened()
    account.assign_manager(manager="bob")
    account.assign_manager(manager="carol", reason="bob left the company")
    events = account.collect_events()
    assert isinstance(events[-1], Account.AccountManagerAssigned)
    assert events[-1].previous_manager == "bob"
    with pytest.raises(UnchangedValue):
        account.assign_manager(manager="carol")


def test_replay_rebuilds_the_same_state_without_rechecking_rules():
    account = opened()
    account.change_stage(stage=Stage.AWARENESS)
    account.change_tier(tier=Tier.PARTNER, reason="joint plans")
    call = uuid4()
    account.log_interaction(
        interaction_id=call,
        channel=Channel.CALL,
        direction=Direction.INBOUND,
        occurred_at=NOW,
    )
    copy = replayed(account)
    assert (copy.stage, copy.tier, copy.interactions) == (
        account.stage,
        account.tier,
        account.interactions,
    )


def test_a_copy_for_a_command_leaves_the_original_alone():
    account = Account.open(name="Original", kind=AccountKind.GROUP)
    contact_id = uuid4()
    account.add_contact(contact_id=contact_id, name="Ann")
    account.collect_events()
    copy = deepcopy(account)
    copy.remove_contact(contact_id=contact_id, reason="left")
    copy.log_interaction(
        interaction_id=uuid4(),
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        occurred_at=datetime.now(tz=UTC),
    )
    assert list(account.contacts) == [contact_id]
    assert (account.interactions, account.former_contacts) == ({}, {})
    assert (account.version, copy.version) == (2, 4)
    assert account.collect_events() == []
    assert len(copy.collect_events()) == 2


def test_interaction_records_survive_a_snapshot_field_for_field():
    account = opened()
    moments = [NOW - timedelta(days=3), NOW - timedelta(hours=2, microseconds=7)]
    ids = [uuid4(), uuid4(), uuid4()]
    for interaction_id, channel, at in zip(
        ids, (Channel.CALL, Channel.VISIT, Channel.EMAIL), (*moments, NOW), strict=True
    ):
        account.log_interaction(
            interaction_id=interaction_id,
            channel=channel,
            direction=Direction.INBOUND,
            occurred_at=at,
            summary="Spring order",
        )
    account.record_written_confirmation(interaction_id=ids[1], confirmed_at=NOW)
    snapshot = Account.Snapshot.take(account)
    assert snapshot.state["interactions"]["ids"] == [i.hex for i in ids]
    # Only what awaits a confirmation keeps its moment: not the e-mail.
    assert snapshot.state["interactions"]["occurred_at"][2] is None
    assert account.interactions[ids[2]] == InteractionRecord(
        Channel.EMAIL, None, confirmed=False
    )

    restored = snapshot.mutate(None)
    assert restored.interactions == account.interactions
    assert list(restored.interactions) == ids
    for key in restored.interactions:  # a UUID like any other
        parsed = UUID(str(key))
        assert (key, hash(key), key.version, key.is_safe) == (
            parsed,
            hash(parsed),
            4,
            parsed.is_safe,
        )
    assert restored.unconfirmed_oral_interactions == 1
    with pytest.raises(AlreadyConfirmed):
        restored.record_written_confirmation(interaction_id=ids[1], confirmed_at=NOW)
    with pytest.raises(InvalidValue):
        restored.log_interaction(
            interaction_id=ids[2],
            channel=Channel.EMAIL,
            direction=Direction.INBOUND,
            occurred_at=NOW,
            summary="Again",
        )
