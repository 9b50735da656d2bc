"""Value objects and the vocabularies of the relationship domain."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from domain.errors import InvalidValue


class AccountKind(StrEnum):
    ORGANIZATION = "organization"
    INDIVIDUAL = "individual"
    GROUP = "group"


class Tier(StrEnum):
    """Depth of the relationship, lowest first. No tier is "better"."""

    TRANSACTIONAL = "transactional"
    PREFERRED_SUPPLIER = "preferred_supplier"
    PARTNER = "partner"
    STRATEGIC_ALLIANCE = "strategic_alliance"


class Stage(StrEnum):
    EXPLORATION = "exploration"
    AWARENESS = "awareness"
    EXPANSION = "expansion"
    COMMITMENT = "commitment"
    DISSOLUTION = "dissolution"


_FORWARD = {
    Stage.EXPLORATION: Stage.AWARENESS,
    Stage.AWARENESS: Stage.EXPANSION,
    Stage.EXPANSION: Stage.COMMITMENT,
}


def stage_transition_allowed(current: Stage, target: Stage) -> bool:
    """One step forward, dissolution from anywhere, reopening to exploration."""
    if current is Stage.DISSOLUTION:
        return target is Stage.EXPLORATION
    return target is Stage.DISSOLUTION or _FORWARD.get(current) is target


class RelationshipType(StrEnum):
    TRANSACTIONAL = "transactional"
    LONG_TERM = "long_term"
    PERSONAL_ASSISTANCE = "personal_assistance"
    DEDICATED_PERSONAL_ASSISTANCE = "dedicated_personal_assistance"
    SELF_SERVICE = "self_service"
    AUTOMATED_SERVICE = "automated_service"
    COMMUNITY = "community"


class Classification(StrEnum):
    A = "A"
    B = "B"
    C = "C"


class Influence(StrEnum):
    DECISION_MAKER = "decision_maker"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Channel(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    VISIT = "visit"
    VIDEO = "video"
    CHAT = "chat"
    LETTER = "letter"
    EVENT = "event"
    GIFT = "gift"
    GREETING = "greeting"
    SURVEY = "survey"

    @property
    def is_oral(self) -> bool:
        """Oral conversations must be confirmed in writing afterwards."""
        return self in ORAL_CHANNELS


ORAL_CHANNELS = frozenset({Channel.CALL, Channel.MEETING, Channel.VISIT, Channel.VIDEO})


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ComplaintSeverity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ComplaintStatus(StrEnum):
    """Where a complaint stands. ``reopened`` is open again after a resolution;
    ``closed`` is final."""

    FILED = "filed"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"


class FollowUpStatus(StrEnum):
    """Where a follow-up stands: open until completed or cancelled (both final)."""

    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class FollowedKind(StrEnum):
    """What a follow-up follows: something that happened on the account."""

    INTERACTION = "interaction"
    DEAL = "deal"
    COMPLAINT = "complaint"


class GoalStatus(StrEnum):
    """Where an agreed goal stands: agreed until achieved or dropped (both final)."""

    AGREED = "agreed"
    ACHIEVED = "achieved"
    DROPPED = "dropped"


class OccasionKind(StrEnum):
    """A date worth a personal greeting (002): a contact's birthday, the
    customer's founding day, the anniversary of the first deal."""

    BIRTHDAY = "birthday"
    FOUNDING_DAY = "founding_day"
    FIRST_DEAL_ANNIVERSARY = "first_deal_anniversary"


def occasion_date(origin: date, year: int) -> date:
    """When an occasion that began on ``origin`` falls in ``year``: the same
    day and month, and 28 February for 29 February in a year without it."""
    if origin.month == 2 and origin.day == 29 and not _leap(year):  # noqa: PLR2004
        return date(year, 2, 28)
    return origin.replace(year=year)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


class SatisfactionLevel(StrEnum):
    """How satisfied a customer said they are, highest first."""

    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    NEUTRAL = "neutral"
    SOMEWHAT_DISSATISFIED = "somewhat_dissatisfied"
    VERY_DISSATISFIED = "very_dissatisfied"


# CSAT is the share of answers in the top two levels.
CSAT_LEVELS = (SatisfactionLevel.VERY_SATISFIED, SatisfactionLevel.SATISFIED)
# NPS: promoters answer 9 or 10 to "would you recommend us", detractors 0 to 6.
RECOMMEND_SCALE = range(11)
PROMOTER_MIN = 9
DETRACTOR_MAX = 6


class PurchaseIntent(StrEnum):
    """Whether the customer means to buy again."""

    YES = "yes"
    NO = "no"
    UNSURE = "unsure"


class ContactChannelKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    WEB = "web"
    CHAT = "chat"
    POST = "post"


@dataclass(frozen=True)
class Address:
    street: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = ""


@dataclass(frozen=True)
class ContactChannel:
    """A way to reach the account as a whole (switchboard, shared inbox, site)."""

    kind: ContactChannelKind
    value: str


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")
MAX_EMAIL_LENGTH = 254
MIN_PHONE_DIGITS = 5


# Dates before this are typing mistakes, and PostgreSQL and Python disagree on
# years before 1 (UTC offsets can push 0001-01-01 into 1 BC).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
# How far ahead of the clock a moment may lie (time-zone slack).
FUTURE_SLACK = timedelta(days=1)
MAX_CHANNELS = 20


def required_text(field: str, value: str, max_length: int = 200) -> str:
    text = value.strip()
    if not text:
        raise InvalidValue(field, f"{field} must not be empty")
    return bounded_text(field, text, max_length)


def bounded_text(field: str, value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise InvalidValue(field, f"{field} is longer than {max_length} characters")
    if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
        raise InvalidValue(field, f"{field} contains characters that are not text")
    return value


def past_moment(field: str, moment: datetime) -> datetime:
    """A moment with a time zone, not before 1900 and not (much) in the future."""
    if moment.tzinfo is None:
        raise InvalidValue(field, f"{field} needs a time zone")
    if moment < EARLIEST:
        raise InvalidValue(field, f"{field} is before {EARLIEST.year}")
    if moment > datetime.now(tz=UTC) + FUTURE_SLACK:
        raise InvalidValue(field, f"{field} is in the future")
    return moment


# How far ahead a due moment or date may lie.
MAX_AHEAD = timedelta(days=3660)


def due_moment(field: str, moment: datetime) -> datetime:
    """A moment with a time zone, from 1900 to ten years ahead (past ones are
    allowed: what was due yesterday is overdue today)."""
    if moment.tzinfo is None:
        raise InvalidValue(field, f"{field} needs a time zone")
    if moment < EARLIEST:
        raise InvalidValue(field, f"{field} is before {EARLIEST.year}")
    if moment > datetime.now(tz=UTC) + MAX_AHEAD:
        raise InvalidValue(field, f"{field} is more than ten years ahead")
    return moment


def due_date(field: str, day: date) -> date:
    """A day from 1900 to ten years ahead."""
    if day < EARLIEST.date():
        raise InvalidValue(field, f"{field} is before {EARLIEST.year}")
    if day > (datetime.now(tz=UTC) + MAX_AHEAD).date():
        raise InvalidValue(field, f"{field} is more than ten years ahead")
    return day


def past_date(field: str, day: date | None) -> date | None:
    if day is None:
        return None
    if day < EARLIEST.date():
        raise InvalidValue(field, f"{field} is before {EARLIEST.year}")
    if day > datetime.now(tz=UTC).date():
        raise InvalidValue(field, f"{field} is in the future")
    return day


def valid_address(field: str, address: Address) -> Address:
    for part in ("street", "city", "postal_code", "country"):
        bounded_text(f"{field}.{part}", getattr(address, part), 200)
    return address


def valid_channels(
    field: str, channels: tuple[ContactChannel, ...]
) -> tuple[ContactChannel, ...]:
    if len(channels) > MAX_CHANNELS:
        raise InvalidValue(field, f"at most {MAX_CHANNELS} {field}")
    for channel in channels:
        ContactChannelKind(channel.kind)
        required_text(f"{field}.value", channel.value, 200)
    return tuple(channels)


def email_address(field: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _EMAIL.match(value) or len(value) > MAX_EMAIL_LENGTH:
        raise InvalidValue(field, f"{field} is not an e-mail address: {value!r}")
    return value


def phone_number(field: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _PHONE.match(value) or sum(c.isdigit() for c in value) < MIN_PHONE_DIGITS:
        raise InvalidValue(field, f"{field} is not a phone number: {value!r}")
    return value
