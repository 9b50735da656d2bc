"""Which event fields hold personal data, and whose.

Personal data (names, e-mails, phones, birthdays, addresses, free text about
people) belongs to a subject: a contact, or the account itself (its name,
address and channels, and the free text of its interactions). The event store
keeps each subject's values sealed with that subject's own key; erasing the
subject destroys the key, and the values read back as ``erased_value``.

Everything else (tiers, stages, amounts, times, channels of interactions,
reasons for business decisions) is the audit trail and is never erased.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any
from uuid import UUID

ERASED = "[erased]"

# A subject's values are replaced by fn(value, subject_id).
Rewrite = Callable[[Any, UUID], Any]


@dataclass(frozen=True)
class PersonalFields:
    """An event's personal fields and where its subject's id is.

    ``subject`` names the event field holding the contact id; ``None`` means
    the account (the event's originator) is the subject.
    """

    fields: tuple[str, ...]
    subject: str | None = None

    def rewrite(self, state: dict[str, Any], account_id: UUID, fn: Rewrite) -> None:
        subject = account_id if self.subject is None else state[self.subject]
        for name in self.fields:
            if name in state:
                state[name] = fn(state[name], subject)


def erased_value(value: Any) -> Any:  # noqa: PLR0911 - one answer per shape of value
    """What a personal value reads as once erased: same shape, nothing personal.

    Text becomes ``[erased]`` (empty text stays empty), dates become ``None``,
    and containers and value objects are erased part by part, so a reader
    still sees that an address or three participants were recorded. Ids,
    numbers and vocabulary (an enum member says how, not who) are kept.
    """
    if value is None or isinstance(value, Enum | UUID | bool | int | float):
        return value
    if isinstance(value, str):
        return value and ERASED
    if isinstance(value, date):
        return None
    if isinstance(value, list | tuple):
        return type(value)(erased_value(v) for v in value)
    if isinstance(value, dict):
        return {k: erased_value(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(
            value,
            **{
                f.name: erased_value(getattr(value, f.name))
                for f in dataclasses.fields(value)
            },
        )
    return value
