"""What auditors ask of the event store: history, state at a past moment, changes.

Everything here is computed from the events themselves (through snapshots of
the same events), never from a projection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from domain.account import Account, rewrite_personal_data
from domain.application import Accounts
from domain.errors import AccountNotFound, InvalidValue
from domain.personal import erased_value
from eventstore.recorder import RecordedEvent, event_type, recorder_of

# Attributes every event has; history shows them as columns, not payload.
_ENVELOPE = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic"}
)
EVENT_TYPES = tuple(
    name
    for name, value in vars(Account).items()
    if isinstance(value, type)
    and issubclass(value, Account.Event)
    # The base classes eventsourcing gives the aggregate are never stored.
    and value not in (Account.Event, Account.Created)
)
MAX_CHANGES_SPAN = 1000


def jsonable(value: Any) -> Any:
    """Plain JSON for auditors: ids, times and amounts as strings (an amount's
    text is exact: ``"0.10"``), enums as their values."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class HistoryEntry:
    recorded: RecordedEvent
    type: str
    payload: dict[str, Any]

    def message(self, *, personal_data: str) -> dict[str, Any]:
        """The event as downstream services receive it (see docs/events.md):
        relayed to NATS, or POSTed to a webhook."""
        recorded = self.recorded
        return {
            "personal_data": personal_data,
            "position": recorded.position,
            "event_id": str(recorded.event_id),
            "account_id": str(recorded.stored.originator_id),
            "version": recorded.stored.originator_version,
            "type": self.type,
            "occurred_at": recorded.occurred_at.isoformat(),
            "recorded_at": recorded.recorded_at.isoformat(),
            "actor": recorded.actor,
            "correlation_id": _text(recorded.correlation_id),
            "causation_id": _text(recorded.causation_id),
            "command_id": _text(recorded.command_id),
            "payload": self.payload,
        }


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class FieldChange:
    version: int
    type: str
    field: str
    before: Any
    after: Any
    actor: str
    occurred_at: datetime


class Audit:
    def __init__(self, app: Accounts) -> None:
        self.app = app
        self.recorder = recorder_of(app)

    def history(
        self,
        account_id: UUID,
        *,
        after_version: int = 0,
        limit: int = 50,
        types: Sequence[str] = (),
        withhold_personal: bool = False,
    ) -> list[HistoryEntry]:
        """The account's events after ``after_version``, oldest first."""
        unknown = sorted(set(types) - set(EVENT_TYPES))
        if unknown:
            raise InvalidValue("types", f"unknown event types: {', '.join(unknown)}")
        topics = [f"{Account.__module__}:Account.{name}" for name in types]
        recorded = self.recorder.account_events(
            account_id, after_version=after_version, limit=limit, topics=topics
        )
        return self.entries(recorded, withhold_personal=withhold_personal)

    def entries(
        self, recorded: Sequence[RecordedEvent], *, withhold_personal: bool = False
    ) -> list[HistoryEntry]:
        return [self.entry(r, withhold_personal=withhold_personal) for r in recorded]

    def entry(
        self, recorded: RecordedEvent, *, withhold_personal: bool = False
    ) -> HistoryEntry:
        """A stored event for readers; ``withhold_personal`` gives personal
        values in their erased form, for copies an erasure cannot reach."""
        event = self.app.mapper.to_domain_event(recorded.stored)
        state = {k: v for k, v in vars(event).items() if k not in _ENVELOPE}
        if withhold_personal:
            rewrite_personal_data(
                type(event),
                state,
                event.originator_id,
                lambda value, _: erased_value(value),
            )
        payload = {k: jsonable(v) for k, v in state.items()}
        return HistoryEntry(
            recorded=recorded, type=event_type(recorded.stored.topic), payload=payload
        )

    def state_at(
        self, account_id: UUID, *, version: int | None = None, at: datetime | None = None
    ) -> Account:
        """The account as it stood at ``version``, or at the moment ``at``."""
        if (version is None) == (at is None):
            raise InvalidValue("version", "give either a version or a moment")
        if at is not None:
            version = self.recorder.version_at(account_id, at)
            if version is None:
                raise AccountNotFound(account_id)
        assert version is not None  # noqa: S101 - one of the two was given
        if version < 1:
            raise InvalidValue("version", "versions start at 1")
        account = self.app.get_account(account_id, version=version)
        if account.version != version:
            raise InvalidValue("version", f"the account has no version {version}")
        return account

    def changes(
        self, account_id: UUID, from_version: int, to_version: int
    ) -> list[FieldChange]:
        """Field by field, what each event after ``from_version`` changed."""
        if not 0 <= from_version < to_version:
            raise InvalidValue("fromVersion", "fromVersion must be below toVersion")
        if to_version - from_version > MAX_CHANGES_SPAN:
            raise InvalidValue("toVersion", f"at most {MAX_CHANGES_SPAN} versions at once")
        state: Account | None = None
        if from_version > 0:
            state = self.state_at(account_id, version=from_version)
        recorded = self.recorder.account_events(
            account_id, after_version=from_version, limit=to_version - from_version
        )
        if not recorded and state is None:
            raise AccountNotFound(account_id)
        changes: list[FieldChange] = []
        for item in recorded:
            event: Any = self.app.mapper.to_domain_event(item.stored)
            before = _fields(state)
            state = event.mutate(state)
            after = _fields(state)
            changes.extend(
                FieldChange(
                    version=item.stored.originator_version,
                    type=event_type(item.stored.topic),
                    field=name,
                    before=before.get(name),
                    after=after.get(name),
                    actor=item.actor,
                    occurred_at=item.occurred_at,
                )
                for name in sorted(before.keys() | after.keys())
                if before.get(name) != after.get(name)
            )
        return changes


def _fields(account: Account | None) -> dict[str, Any]:
    """The account's state as named JSON values; maps become one field per entry."""
    if account is None:
        return {}
    fields: dict[str, Any] = {}
    for name, value in vars(account).items():
        if name.startswith("_"):
            continue
        if isinstance(value, dict):
            fields.update({f"{name}.{key}": jsonable(v) for key, v in value.items()})
        else:
            fields[name] = jsonable(value)
    return fields
