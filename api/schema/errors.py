"""Expected failures as typed results: clients switch on __typename, never on text."""

from __future__ import annotations

import strawberry

from domain import errors


@strawberry.interface
class Error:
    message: str
    code: str


@strawberry.type(description="An input was malformed; nothing was written.")
class ValidationError(Error):
    field: str


@strawberry.type(
    description="The account, contact, interaction, complaint, deal, follow-up, "
    "goal or occasion does not exist."
)
class NotFoundError(Error):
    pass


@strawberry.type(
    description="The account changed since expectedVersion; nothing was written. "
    "Reload and decide again."
)
class ConcurrencyConflict(Error):
    expected_version: int | None
    actual_version: int


@strawberry.type(description="A business rule refused the command; nothing was written.")
class RuleViolation(Error):
    pass


ErrorResult = ValidationError | NotFoundError | ConcurrencyConflict | RuleViolation

_NOT_FOUND = (
    errors.AccountNotFound,
    errors.ContactNotFound,
    errors.InteractionNotFound,
    errors.ComplaintNotFound,
    errors.DealNotFound,
    errors.FollowUpNotFound,
    errors.GoalNotFound,
    errors.OccasionNotFound,
)


def error_result(error: errors.DomainError) -> ErrorResult:
    message = str(error)
    if isinstance(error, errors.InvalidValue):
        return ValidationError(message=message, code=error.code, field=error.field)
    if isinstance(error, _NOT_FOUND):
        return NotFoundError(message=message, code=error.code)
    if isinstance(error, errors.ConcurrencyConflict):
        return ConcurrencyConflict(
            message=message,
            code=error.code,
            expected_version=error.expected_version,
            actual_version=error.actual_version,
        )
    return RuleViolation(message=message, code=error.code)
