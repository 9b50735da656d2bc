"""Complaints: the lifecycle rules, checked in the command, never on replay. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from api.settings import Settings
from domain.account import Account
from domain.complaints import DEFAULT_COMPLAINT_TARGETS, ComplaintTargets, Target
from domain.errors import (
    ComplaintAlreadyAcknowledged,
    ComplaintAlreadyClosed,
    ComplaintAlreadyResolved,
    ComplaintNotAcknowledged,
    ComplaintNotFound,
    ComplaintNotResolved,
    ContactNotFound,
    DomainError,
    EscalationLevelNotHigher,
    InvalidValue,
    SubjectErased,
)
from domain.values import AccountKind, Channel, ComplaintSeverity, ComplaintStatus

FILED = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
LATER = FILED + timedelta(hours=2)


def opened() -> Account:
    return Account.open(name="Acme Tools", kind=AccountKind.ORGANIZATION)


def file(account: Account, **changes):
    complaint_id = changes.pop("complaint_id", uuid4())
    account.file_complaint(
        **{
            "complaint_id": complaint_id,
            "category": "delivery",
            "severity": ComplaintSeverity.HIGH,
            "description": "Pallets arrived a week late",
            "channel": Channel.CALL,
            "filed_at": FILED,
        }
        | changes
    )
    return complaint_id


def acknowledge(account, complaint_id):
    account.acknowledge_complaint(complaint_id=complaint_id, acknowledged_at=LATER)


def escalate(account, complaint_id, level=None):
    account.escalate_complaint(
        complaint_id=complaint_id, escalated_to="carol", escalated_at=LATER, level=level
    )


def resolve(account, complaint_id):
    account.resolve_complaint(
        complaint_id=complaint_id, resolution="Credit note issued", resolved_at=LATER
    )


def reopen(account, complaint_id):
    account.reopen_complaint(
        complaint_id=complaint_id, reason="Late again", reopened_at=LATER
    )


def close(account, complaint_id):
    account.close_complaint(complaint_id=complaint_id, closed_at=LATER)


COMMANDS = {
    "acknowledge": acknowledge,
    "escalate": escalate,
    "resolve": resolve,
    "reopen": reopen,
    "close": close,
}


def replayed(account: Account) -> Account:
    state: Account | None = None
    for event in account.collect_events():
        state = event.mutate(state)  # type: ignore[arg-type]
    assert isinstance(state, Account)
    return state


def test_a_complaint_goes_from_filed_to_closed():
    account = opened()
    complaint = file(account)
    assert account.complaints[complaint].status is ComplaintStatus.FILED
    acknowledge(account, complaint)
    escalate(account, complaint)
    escalate(account, complaint, level=3)
    assert account.complaints[complaint].escalation_level == 3
    resolve(account, complaint)
    assert account.complaints[complaint].status is ComplaintStatus.RESOLVED
    close(account, complaint)
    record = account.complaints[complaint]
    assert (record.status, record.escalation_level) == (ComplaintStatus.CLOSED, 3)
    copy = replayed(account)
    assert copy.complaints == account.complaints
    assert copy.version == account.version == 7


def test_a_reopened_complaint_is_resolved_again_and_keeps_its_acknowledgement():
    account = opened()
    complaint = file(account)
    acknowledge(account, complaint)
    resolve(account, complaint)
    reopen(account, complaint)
    assert account.complaints[complaint].status is ComplaintStatus.REOPENED
    with pytest.raises(ComplaintAlreadyAcknowledged):
        acknowledge(account, complaint)
    escalate(account, complaint)
    resolve(account, complaint)
    close(account, complaint)
    assert account.complaints[complaint].status is ComplaintStatus.CLOSED


@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_acts_on_a_complaint_never_filed(command):
    account = opened()
    file(account)
    version = account.version
    with pytest.raises(ComplaintNotFound):
        COMMANDS[command](account, uuid4())
    assert account.version == version


@pytest.mark.parametrize("command", COMMANDS)
def test_a_closed_complaint_is_final(command):
    """A closed complaint cannot be reopened either: a recurrence is a new one."""
    account = opened()
    complaint = file(account)
    acknowledge(account, complaint)
    resolve(account, complaint)
    close(account, complaint)
    version = account.version
    with pytest.raises(ComplaintAlreadyClosed):
        COMMANDS[command](account, complaint)
    assert account.version == version


def test_a_complaint_is_acknowledged_once():
    account = opened()
    complaint = file(account)
    acknowledge(account, complaint)
    with pytest.raises(ComplaintAlreadyAcknowledged):
        acknowledge(account, complaint)
    resolve(account, complaint)
    with pytest.raises(ComplaintAlreadyAcknowledged):
        acknowledge(account, complaint)


@pytest.mark.parametrize("path", [[], ["acknowledge"], ["acknowledge", "escalate"]])
def test_only_a_resolved_complaint_is_closed_or_reopened(path):
    account = opened()
    complaint = file(account)
    for step in path:
        COMMANDS[step](account, complaint)
    version = account.version
    with pytest.raises(ComplaintNotResolved):
        close(account, complaint)
    with pytest.raises(ComplaintNotResolved):
        reopen(account, complaint)
    assert account.version == version


def test_a_reopened_complaint_is_not_closed_before_it_is_resolved_again():
    account = opened()
    complaint = file(account)
    acknowledge(account, complaint)
    resolve(account, complaint)
    reopen(account, complaint)
    with pytest.raises(ComplaintNotResolved):
        close(account, complaint)
    with pytest.raises(ComplaintNotResolved):
        reopen(account, complaint)


def test_a_complaint_is_acknowledged_before_it_is_resolved_and_resolved_once():
    account = opened()
    complaint = file(account)
    with pytest.raises(ComplaintNotAcknowledged):
        resolve(account, complaint)
    acknowledge(account, complaint)
    resolve(account, complaint)
    with pytest.raises(ComplaintAlreadyResolved):
        resolve(account, complaint)
    with pytest.raises(ComplaintAlreadyResolved):
        escalate(account, complaint)


def test_escalation_only_goes_up():
    account = opened()
    complaint = file(account)
    escalate(account, complaint)  # filed, not yet acknowledged: allowed
    assert account.complaints[complaint].escalation_level == 1
    escalate(account, complaint, level=4)
    for level in (4, 2):
        with pytest.raises(EscalationLevelNotHigher):
            escalate(account, complaint, level=level)
    for level in (0, 11):
        with pytest.raises(InvalidValue) as refused:
            escalate(account, complaint, level=level)
        assert refused.value.field == "level"
    with pytest.raises(InvalidValue) as refused:
        account.escalate_complaint(
            complaint_id=complaint, escalated_to=" ", escalated_at=LATER
        )
    assert refused.value.field == "escalatedTo"
    assert account.complaints[complaint].escalation_level == 4


def test_the_complaining_contact_must_be_a_current_contact():
    account = opened()
    ann, ben = uuid4(), uuid4()
    account.add_contact(contact_id=ann, name="Ann Lee")
    account.add_contact(contact_id=ben, name="Ben Roe")
    account.remove_contact(contact_id=ben, reason="left")
    with pytest.raises(ContactNotFound):
        file(account, contact_id=uuid4())
    with pytest.raises(ContactNotFound):
        file(account, contact_id=ben)
    account.erase_personal_data(contact_id=ann, reason="REQ-1")
    with pytest.raises(SubjectErased):
        file(account, contact_id=ann)
    assert account.complaints == {}
    carl = uuid4()
    account.add_contact(contact_id=carl, name="Carl Doe")
    complaint = file(account, contact_id=carl)
    assert complaint in account.complaints


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": "  "}, "description"),
        ({"description": "x" * 4001}, "description"),
        ({"category": ""}, "category"),
        ({"filed_at": datetime.now(tz=UTC) + timedelta(days=3)}, "filedAt"),
        ({"filed_at": datetime(2026, 1, 1, 9, 0)}, "filedAt"),  # noqa: DTZ001 - the point
        ({"filed_at": datetime(1899, 12, 31, tzinfo=UTC)}, "filedAt"),
    ],
)
def test_complaint_input_is_validated(changes, field):
    account = opened()
    with pytest.raises(InvalidValue) as refused:
        file(account, **changes)
    assert refused.value.field == field
    assert account.complaints == {}


def test_a_complaint_id_is_used_once():
    account = opened()
    complaint = file(account)
    with pytest.raises(InvalidValue) as refused:
        file(account, complaint_id=complaint)
    assert refused.value.field == "complaintId"


def test_a_step_cannot_precede_the_one_before_it():
    account = opened()
    complaint = file(account)
    with pytest.raises(InvalidValue) as refused:
        account.acknowledge_complaint(
            complaint_id=complaint, acknowledged_at=FILED - timedelta(minutes=1)
        )
    assert refused.value.field == "acknowledgedAt"
    acknowledge(account, complaint)
    with pytest.raises(InvalidValue) as refused:
        account.resolve_complaint(
            complaint_id=complaint, resolution="Fixed", resolved_at=FILED
        )
    assert refused.value.field == "resolvedAt"
    account.resolve_complaint(complaint_id=complaint, resolution="Fixed", resolved_at=LATER)


def test_a_resolution_and_a_reopening_say_why():
    account = opened()
    complaint = file(account)
    acknowledge(account, complaint)
    with pytest.raises(InvalidValue) as refused:
        account.resolve_complaint(complaint_id=complaint, resolution="", resolved_at=LATER)
    assert refused.value.field == "resolution"
    resolve(account, complaint)
    with pytest.raises(InvalidValue) as refused:
        account.reopen_complaint(complaint_id=complaint, reason=" ", reopened_at=LATER)
    assert refused.value.field == "reason"


def test_after_the_accounts_erasure_complaints_finish_without_text():
    account = opened()
    complaint = file(account)
    acknowledge(account, complaint)
    account.erase_personal_data(reason="REQ-2")
    with pytest.raises(SubjectErased):
        file(account)
    with pytest.raises(SubjectErased):
        resolve(account, complaint)
    with pytest.raises(SubjectErased):
        account.escalate_complaint(
            complaint_id=complaint, escalated_to="carol", escalated_at=LATER, reason="x"
        )
    escalate(account, complaint)  # no text: allowed
    account.resolve_complaint(complaint_id=complaint, resolution="", resolved_at=LATER)
    close(account, complaint)
    assert account.complaints[complaint].status is ComplaintStatus.CLOSED


def test_refused_commands_record_nothing():
    account = opened()
    complaint = file(account)
    account.collect_events()
    for command in (resolve, close, reopen):
        with pytest.raises(DomainError):
            command(account, complaint)
    assert account.collect_events() == []


def test_default_targets_get_stricter_with_severity():
    targets = DEFAULT_COMPLAINT_TARGETS
    assert targets.of(ComplaintSeverity.CRITICAL) == Target(
        timedelta(hours=1), timedelta(hours=24)
    )
    assert targets.of(ComplaintSeverity.LOW) == Target(
        timedelta(hours=72), timedelta(days=14)
    )
    ordered = [targets.of(s) for s in ComplaintSeverity]  # low first
    assert ordered == sorted(ordered, key=lambda t: t.acknowledge, reverse=True)


def test_targets_are_read_from_text_and_the_rest_keep_their_defaults():
    targets = ComplaintTargets.parse(" critical = 30m/8h, LOW=5d/30d ")
    assert targets.of(ComplaintSeverity.CRITICAL) == Target(
        timedelta(minutes=30), timedelta(hours=8)
    )
    assert targets.of(ComplaintSeverity.LOW) == Target(
        timedelta(days=5), timedelta(days=30)
    )
    assert targets.of(ComplaintSeverity.HIGH) == DEFAULT_COMPLAINT_TARGETS.high
    assert ComplaintTargets.parse("") == DEFAULT_COMPLAINT_TARGETS


@pytest.mark.parametrize(
    "text",
    [
        "urgent=1h/2h",
        "high=4h",
        "high=4 hours/3d",
        "high=0m/3d",
        "high=4d/3d",
        "high=1h/2h,high=2h/3h",
    ],
)
def test_malformed_targets_are_refused(text):
    with pytest.raises(ValueError, match=r"\S"):
        ComplaintTargets.parse(text)


def test_settings_read_the_targets_from_the_environment(monkeypatch):
    monkeypatch.delenv("RAPPORT_COMPLAINT_TARGETS", raising=False)
    assert Settings.from_env().complaint_targets == DEFAULT_COMPLAINT_TARGETS
    monkeypatch.setenv("RAPPORT_COMPLAINT_TARGETS", "medium=2h/2d")
    targets = Settings.from_env().complaint_targets
    assert targets.of(ComplaintSeverity.MEDIUM) == Target(
        timedelta(hours=2), timedelta(days=2)
    )
    monkeypatch.setenv("RAPPORT_COMPLAINT_TARGETS", "medium=2h")
    with pytest.raises(ValueError, match="medium"):
        Settings.from_env()
