"""Named domain errors: every refused command raises one of these."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every rule the domain enforces. ``code`` is stable for clients."""

    code = "DOMAIN_ERROR"


class InvalidValue(DomainError):
    """A command argument is malformed (empty name, negative effort, ...)."""

    code = "INVALID_VALUE"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class CommandAlreadyRecorded(Exception):
    """A command with this id was recorded before: its first outcome stands.

    Not a ``DomainError``: the caller answers with that first outcome."""

    def __init__(self, command_id: object) -> None:
        super().__init__(f"command {command_id} was recorded before")
        self.command_id = command_id


class AccountNotFound(DomainError):
    code = "ACCOUNT_NOT_FOUND"

    def __init__(self, account_id: object) -> None:
        super().__init__(f"account {account_id} does not exist")
        self.account_id = account_id


class AccountAlreadyExists(DomainError):
    code = "ACCOUNT_ALREADY_EXISTS"

    def __init__(self, account_id: object) -> None:
        super().__init__(f"account {account_id} already exists")
        self.account_id = account_id


class ConcurrencyConflict(DomainError):
    """The account changed since the version the caller based its command on."""

    code = "CONCURRENCY_CONFLICT"

    def __init__(self, expected_version: int | None, actual_version: int) -> None:
        super().__init__(
            f"account is at version {actual_version}, "
            f"the command expected version {expected_version}"
        )
        self.expected_version = expected_version
        self.actual_version = actual_version


class ContactNotFound(DomainError):
    code = "CONTACT_NOT_FOUND"


class InteractionNotFound(DomainError):
    code = "INTERACTION_NOT_FOUND"


class StageTransitionNotAllowed(DomainError):
    code = "STAGE_TRANSITION_NOT_ALLOWED"


class UnchangedValue(DomainError):
    """A change command that would not change anything (tier to the same tier)."""

    code = "UNCHANGED_VALUE"


class ConfirmationNotApplicable(DomainError):
    """Written confirmation recorded for a non-oral interaction."""

    code = "CONFIRMATION_NOT_APPLICABLE"


class AlreadyConfirmed(DomainError):
    code = "ALREADY_CONFIRMED"


class SubjectErased(DomainError):
    """The person's (or the account's) personal data was erased: nothing new is kept."""

    code = "SUBJECT_ERASED"


class ComplaintNotFound(DomainError):
    """No complaint with that id was ever filed on the account."""

    code = "COMPLAINT_NOT_FOUND"


class ComplaintAlreadyAcknowledged(DomainError):
    code = "COMPLAINT_ALREADY_ACKNOWLEDGED"


class ComplaintNotAcknowledged(DomainError):
    """A complaint is acknowledged before it is resolved."""

    code = "COMPLAINT_NOT_ACKNOWLEDGED"


class ComplaintNotResolved(DomainError):
    """Only a resolved complaint can be closed or reopened."""

    code = "COMPLAINT_NOT_RESOLVED"


class ComplaintAlreadyResolved(DomainError):
    """A resolved complaint is closed or reopened, not resolved or escalated again."""

    code = "COMPLAINT_ALREADY_RESOLVED"


class ComplaintAlreadyClosed(DomainError):
    """A closed complaint is final: a recurrence is a new complaint."""

    code = "COMPLAINT_ALREADY_CLOSED"


class EscalationLevelNotHigher(DomainError):
    """An escalation goes up: each one to a higher level than the last."""

    code = "ESCALATION_LEVEL_NOT_HIGHER"


class DealNotFound(DomainError):
    """No deal with that id was ever closed on the account."""

    code = "DEAL_NOT_FOUND"


class FollowUpExists(InvalidValue):
    """A follow-up with this id is already on the account (scheduled once only)."""

    def __init__(self, follow_up_id: object) -> None:
        super().__init__("followUpId", f"follow-up {follow_up_id} exists")
        self.follow_up_id = follow_up_id


class FollowUpNotFound(DomainError):
    """No follow-up with that id was ever scheduled on the account."""

    code = "FOLLOW_UP_NOT_FOUND"


class FollowUpAlreadyCompleted(DomainError):
    """A completed follow-up is done: it is neither completed again nor cancelled."""

    code = "FOLLOW_UP_ALREADY_COMPLETED"


class FollowUpAlreadyCancelled(DomainError):
    """A cancelled follow-up is final: schedule a new one if it is needed again."""

    code = "FOLLOW_UP_ALREADY_CANCELLED"


class GoalNotFound(DomainError):
    """No goal with that id was ever agreed on the account."""

    code = "GOAL_NOT_FOUND"


class GoalAlreadyAchieved(DomainError):
    """An achieved goal is final: it is neither achieved again nor dropped."""

    code = "GOAL_ALREADY_ACHIEVED"


class GoalAlreadyDropped(DomainError):
    """A dropped goal is final: agree a new one if it matters again."""

    code = "GOAL_ALREADY_DROPPED"


class OccasionNotFound(DomainError):
    """The occasion a greeting marks is not on the account: the contact has no
    birthday, the account no founding date, or no deal was ever closed."""

    code = "OCCASION_NOT_FOUND"


class OccasionAlreadyGreeted(DomainError):
    """A greeting for this occasion in this year was sent before: do not overdo it."""

    code = "OCCASION_ALREADY_GREETED"
