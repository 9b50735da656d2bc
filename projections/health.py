"""Account health, contact cadence and relationship economics: worked out when
read, from the views, never stored (recency changes as time passes).

Everything here is pure: SQL (``queries.account_signals``) gathers each
account's *signals* as of a moment, and the functions below turn them into a
score, flags and money. The score's formula is defined once, as data
(``RULES``): each factor is a straight ramp between two values of one signal,
with a weight. ``score`` applies it in Python; ``queries`` renders the same
rules into SQL so that a list can be sorted by risk, and a test checks that
both agree.

The score
---------
``score = 100 - sum(contribution)``; each factor's ``contribution`` is
``weight * severity``, rounded to one decimal, where ``severity`` is the
factor's signal placed on its ramp::

    severity = clamp((signal - start) / (end - start), 0, 1)

0 at ``start`` (or better), 1 at ``end`` (or worse); a missing signal (no
survey, no deal to compare) has severity 0. The weights add up to 100, so the
score runs from 0 (every factor at its worst) to 100 (none counts against the
account).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from domain.errors import InvalidValue
from domain.money import MINOR_UNITS, amount_in, currency_code
from domain.values import Tier

# -- cadence: how often each tier expects contact --------------------------------------

CONTACT_WEEK = timedelta(days=7)
"""The rolling window of over-contact: the 7 days up to the read."""
DEFAULT_OVER_CONTACT_LIMIT = 3
"""More outbound contacts than this in a rolling week is overdoing it."""
_DAYS = re.compile(r"^\s*(\d{1,4})\s*d?\s*$")


@dataclass(frozen=True)
class ContactCadence:
    """The longest a tier should go without contact. A deeper relationship needs
    closer contact; none is "better" than another."""

    strategic_alliance: timedelta = timedelta(days=14)
    partner: timedelta = timedelta(days=30)
    preferred_supplier: timedelta = timedelta(days=45)
    transactional: timedelta = timedelta(days=90)

    def __post_init__(self) -> None:
        for tier in Tier:
            if self.of(tier) < timedelta(days=1):
                msg = f"the {tier} contact interval must be at least one day"
                raise ValueError(msg)

    def of(self, tier: Tier | str) -> timedelta:
        interval: timedelta = getattr(self, Tier(tier).value)
        return interval

    @classmethod
    def parse(cls, text: str) -> ContactCadence:
        """Intervals from ``partner=30d,transactional=60d``: per tier, a whole
        number of days (the ``d`` may be left out). Tiers left out keep their
        defaults; an empty text is all defaults."""
        changes: dict[str, timedelta] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, equals, days = part.partition("=")
            tier = name.strip().lower()
            if tier not in {f.name for f in fields(cls)}:
                msg = f"unknown tier {name.strip()!r} in {text!r}"
                raise ValueError(msg)
            if tier in changes:
                msg = f"tier {tier} is given twice in {text!r}"
                raise ValueError(msg)
            match = _DAYS.match(days)
            if not equals or match is None:
                msg = f"{part!r}: expected {tier}=DAYS, as in {tier}=30d"
                raise ValueError(msg)
            changes[tier] = timedelta(days=int(match[1]))
        return replace(cls(), **changes)


DEFAULT_CONTACT_CADENCE = ContactCadence()


# -- the rate that prices effort ---------------------------------------------------------


@dataclass(frozen=True)
class HourlyRate:
    """What an hour of the team's effort costs, in one currency."""

    amount: Decimal
    currency: str

    @classmethod
    def parse(cls, text: str) -> HourlyRate:
        """``80 EUR``: a positive decimal amount and an ISO 4217 code."""
        amount, _, code = text.strip().partition(" ")
        try:
            currency = currency_code("RAPPORT_HOURLY_RATE", code)
            return cls(amount_in("RAPPORT_HOURLY_RATE", amount, currency), currency)
        except InvalidValue as invalid:
            msg = f"RAPPORT_HOURLY_RATE is an amount and a currency (80 EUR): {invalid}"
            raise ValueError(msg) from None


DEFAULT_HOURLY_RATE = HourlyRate(Decimal("80.00"), "EUR")


# -- signals: what SQL gathers for each account ----------------------------------------


@dataclass(frozen=True)
class Signals:
    """One account's inputs to cadence, health and economics, as of ``as_of``.

    The views' facts are current; ``as_of`` is the moment the time-dependent
    parts are measured at (recency, the rolling windows, complaint breaches).
    """

    account_id: Any
    as_of: datetime
    tier: str
    opened_at: datetime
    last_contact_at: datetime | None
    expected_interval: timedelta
    quiet_ratio: Decimal
    """Time without contact (since the last one, or since opening) over the
    tier's expected interval: above 1 is under-contact."""
    contacts_last_week: int
    """Outbound interactions in the 7 days up to ``as_of``."""
    effort_minutes: int
    """Every interaction's effort, ever."""
    survey_count: int
    csat: Decimal | None
    csat_change: Decimal | None
    open_complaints: int
    breached_complaints: int
    """Complaints that missed a target, still open or filed in the last 90 days."""
    deal_change: Decimal | None
    """The worst relative change of deal value, last 90 days against the 90
    before, over the currencies with deals in the 90 before (-1: fell to none)."""
    deal_change_currency: str | None
    unconfirmed_oral: int
    """Oral interactions waiting for their written confirmation."""
    overdue_follow_ups: int
    """Open follow-ups whose due moment passed before ``as_of``."""
    gift_costs: tuple[tuple[str, Decimal], ...] = ()
    """What the account's gifts cost, per currency (oldest code first)."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Signals:
        values = {f.name: row[f.name] for f in fields(cls) if f.name != "gift_costs"}
        currencies, amounts = row["gift_cost_currencies"], row["gift_cost_amounts"]
        gifts = tuple(zip(currencies or (), amounts or (), strict=True))
        return cls(**values, gift_costs=gifts)


# -- cadence flags ------------------------------------------------------------------------


@dataclass(frozen=True)
class CadenceStatus:
    expected_interval: timedelta
    last_contact_at: datetime | None
    days_since_last_contact: int | None
    """Whole days since the last contact; None: never contacted."""
    days_without_contact: int
    """Whole days since the last contact, or since the account was opened."""
    contact_due_at: datetime
    under_contact: bool
    contacts_last_week: int
    over_contact_limit: int
    over_contact: bool


def cadence(signals: Signals, over_contact_limit: int) -> CadenceStatus:
    """Under-contact: no contact within the tier's interval, as of the read
    (counted from the opening for an account never contacted). Over-contact:
    more than ``over_contact_limit`` outbound contacts in the last 7 days."""
    since = signals.last_contact_at or signals.opened_at
    quiet = max(signals.as_of - since, timedelta(0))
    return CadenceStatus(
        expected_interval=signals.expected_interval,
        last_contact_at=signals.last_contact_at,
        days_since_last_contact=None if signals.last_contact_at is None else quiet.days,
        days_without_contact=quiet.days,
        contact_due_at=since + signals.expected_interval,
        under_contact=signals.quiet_ratio > 1,
        contacts_last_week=signals.contacts_last_week,
        over_contact_limit=over_contact_limit,
        over_contact=signals.contacts_last_week > over_contact_limit,
    )


# -- the health score -------------------------------------------------------------------


class HealthFactor(StrEnum):
    CONTACT_RECENCY = "contact_recency"
    SATISFACTION_LEVEL = "satisfaction_level"
    SATISFACTION_TREND = "satisfaction_trend"
    OPEN_COMPLAINTS = "open_complaints"
    BREACHED_COMPLAINTS = "breached_complaints"
    DEAL_TREND = "deal_trend"
    UNCONFIRMED_ORAL = "unconfirmed_oral"
    OVERDUE_FOLLOW_UPS = "overdue_follow_ups"


@dataclass(frozen=True)
class Rule:
    """A factor: ``weight`` points, taken in full when ``signal`` reaches ``end``,
    in part on the way from ``start``."""

    factor: HealthFactor
    weight: int
    signal: str
    """The field of ``Signals`` (and column of the signals query) it reads."""
    start: Decimal
    end: Decimal
    formula: str

    def severity(self, value: Decimal | int | None) -> Decimal:
        if value is None:
            return Decimal(0)
        ramp = (Decimal(value) - self.start) / (self.end - self.start)
        return min(max(ramp, Decimal(0)), Decimal(1))

    def contribution(self, value: Decimal | int | None) -> Decimal:
        return (self.weight * self.severity(value)).quantize(POINT, ROUND_HALF_UP)


POINT = Decimal("0.1")

RULES: tuple[Rule, ...] = (
    Rule(
        HealthFactor.CONTACT_RECENCY,
        20,
        "quiet_ratio",
        Decimal(1),
        Decimal(2),
        "Time without contact over the tier's interval: nothing within the "
        "interval, all 20 at twice the interval.",
    ),
    Rule(
        HealthFactor.SATISFACTION_LEVEL,
        20,
        "csat",
        Decimal(80),
        Decimal(40),
        "CSAT in the satisfaction window: nothing at 80% or more, all 20 at 40% "
        "or less; not counted without a survey in the window.",
    ),
    Rule(
        HealthFactor.SATISFACTION_TREND,
        10,
        "csat_change",
        Decimal(0),
        Decimal(-30),
        "CSAT against the window before: nothing if it held or rose, all 10 at a "
        "fall of 30 points; not counted without surveys in both windows.",
    ),
    Rule(
        HealthFactor.OPEN_COMPLAINTS,
        10,
        "open_complaints",
        Decimal(0),
        Decimal(2),
        "Complaints filed or reopened and not resolved: 5 each, all 10 at two.",
    ),
    Rule(
        HealthFactor.BREACHED_COMPLAINTS,
        10,
        "breached_complaints",
        Decimal(0),
        Decimal(2),
        "Complaints that missed a target (as of the read), still open or filed "
        "in the last 90 days: 5 each, all 10 at two.",
    ),
    Rule(
        HealthFactor.DEAL_TREND,
        15,
        "deal_change",
        Decimal(0),
        Decimal(-1),
        "Deal value of the last 90 days against the 90 before, in the currency "
        "that fell most: nothing if it held or rose, all 15 when it fell to "
        "nothing; not counted without deals in the 90 days before.",
    ),
    Rule(
        HealthFactor.UNCONFIRMED_ORAL,
        5,
        "unconfirmed_oral",
        Decimal(0),
        Decimal(3),
        "Oral interactions not yet confirmed in writing: a third of 5 each, "
        "all 5 at three.",
    ),
    Rule(
        HealthFactor.OVERDUE_FOLLOW_UPS,
        10,
        "overdue_follow_ups",
        Decimal(0),
        Decimal(2),
        "Open follow-ups past their due moment (as of the read): 5 each, all 10 at two.",
    ),
)
"""The factors, their weights (adding up to 100) and their ramps."""


@dataclass(frozen=True)
class FactorScore:
    factor: HealthFactor
    weight: int
    value: Decimal | int | None
    """The signal the factor read; None: not counted."""
    severity: Decimal
    contribution: Decimal
    """Points taken off the score."""
    reason: str


@dataclass(frozen=True)
class Health:
    score: Decimal
    as_of: datetime
    factors: tuple[FactorScore, ...]


def score(signals: Signals, rules: tuple[Rule, ...] = RULES) -> Health:
    """The score and every factor's contribution and reason."""
    factors = tuple(
        FactorScore(
            factor=rule.factor,
            weight=rule.weight,
            value=getattr(signals, rule.signal),
            severity=rule.severity(getattr(signals, rule.signal)),
            contribution=rule.contribution(getattr(signals, rule.signal)),
            reason=_REASONS[rule.factor](signals),
        )
        for rule in rules
    )
    total = sum((f.contribution for f in factors), Decimal(0))
    return Health(score=Decimal(100) - total, as_of=signals.as_of, factors=factors)


def _days(span: timedelta) -> str:
    days = span.days
    return "1 day" if days == 1 else f"{days} days"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _recency(s: Signals) -> str:
    quiet = max(s.as_of - (s.last_contact_at or s.opened_at), timedelta(0))
    since = (
        f"no contact since the account was opened {_days(quiet)} ago"
        if s.last_contact_at is None
        else f"last contact {_days(quiet)} ago"
    )
    every = (
        f"{s.tier.replace('_', ' ')} accounts expect one every {_days(s.expected_interval)}"
    )
    return f"{since}; {every}" if s.quiet_ratio > 1 else f"{since}, within cadence: {every}"


def _points(value: Decimal) -> str:
    return f"{value.quantize(POINT, ROUND_HALF_UP).normalize():f}"


def _satisfaction(s: Signals) -> str:
    if s.csat is None:
        return "no survey in the satisfaction window: not counted"
    surveys = _count(s.survey_count, "survey", "surveys")
    return f"CSAT {_points(s.csat)}% in the satisfaction window ({surveys})"


def _satisfaction_trend(s: Signals) -> str:
    if s.csat_change is None:
        return "no surveys in both this window and the one before: not counted"
    if s.csat_change < 0:
        return f"CSAT fell {_points(-s.csat_change)} points against the window before"
    return f"CSAT held or rose ({_points(s.csat_change)} points) against the window before"


def _open(s: Signals) -> str:
    return (
        "no open complaint"
        if s.open_complaints == 0
        else _count(s.open_complaints, "open complaint", "open complaints")
    )


def _breached(s: Signals) -> str:
    if s.breached_complaints == 0:
        return "no complaint missed its targets"
    return (
        _count(s.breached_complaints, "complaint", "complaints")
        + " missed a target (still open or filed in the last 90 days)"
    )


def _deals(s: Signals) -> str:
    if s.deal_change is None:
        return "no deal in the 90 days before the last 90 to compare with: not counted"
    percent = _points(abs(s.deal_change) * 100)
    if s.deal_change < 0:
        currency = s.deal_change_currency
        return f"deal value in {currency} fell {percent}% against the 90 days before"
    return f"deal value held or rose ({percent}% up) against the 90 days before"


def _unconfirmed(s: Signals) -> str:
    if s.unconfirmed_oral == 0:
        return "every oral interaction is confirmed in writing"
    return (
        _count(s.unconfirmed_oral, "oral interaction", "oral interactions")
        + " without written confirmation"
    )


def _overdue(s: Signals) -> str:
    if s.overdue_follow_ups == 0:
        return "no follow-up is overdue"
    return _count(s.overdue_follow_ups, "follow-up", "follow-ups") + " overdue"


_REASONS = {
    HealthFactor.CONTACT_RECENCY: _recency,
    HealthFactor.SATISFACTION_LEVEL: _satisfaction,
    HealthFactor.SATISFACTION_TREND: _satisfaction_trend,
    HealthFactor.OPEN_COMPLAINTS: _open,
    HealthFactor.BREACHED_COMPLAINTS: _breached,
    HealthFactor.DEAL_TREND: _deals,
    HealthFactor.UNCONFIRMED_ORAL: _unconfirmed,
    HealthFactor.OVERDUE_FOLLOW_UPS: _overdue,
}


# -- relationship economics ------------------------------------------------------------


@dataclass(frozen=True)
class Economics:
    effort_minutes: int
    hourly_rate: HourlyRate
    effort_cost: Decimal
    """Effort priced at the rate."""
    gift_costs: Decimal
    """What the gifts cost in the rate's currency."""
    cost_of_serving: Decimal
    """In the rate's currency: effort priced at the rate, plus the gifts' costs
    in that currency."""
    deal_value: Decimal
    """Lifetime deal value in the rate's currency."""
    other_currencies: tuple[tuple[str, Decimal], ...]
    """Lifetime deal values in other currencies: not converted, not compared."""
    gift_costs_in_other_currencies: tuple[tuple[str, Decimal], ...] = ()
    """Gifts paid in other currencies: not converted, not in the cost of serving."""

    @property
    def net(self) -> Decimal:
        return self.deal_value - self.cost_of_serving

    @property
    def luxury(self) -> bool | None:
        """The relationship costs more than it returned. None: it may, or may
        not, once amounts in other currencies (never converted) are counted:
        deals in them could make up for a cost, gifts in them add to one."""
        if self.cost_of_serving <= self.deal_value:
            return None if self.gift_costs_in_other_currencies else False
        return None if self.other_currencies else True


def economics(
    effort_minutes: int,
    rate: HourlyRate,
    lifetime: list[tuple[str, Decimal]],
    gifts: tuple[tuple[str, Decimal], ...] = (),
) -> Economics:
    """Cost of serving: ``effort_minutes / 60 * rate``, rounded half up to the
    currency's smallest unit, plus what the gifts in that currency cost;
    compared with the lifetime deal value in the same currency."""
    unit = Decimal(1).scaleb(-MINOR_UNITS[rate.currency])
    effort = (Decimal(effort_minutes) * rate.amount / 60).quantize(unit, ROUND_HALF_UP)
    gift = sum((v for c, v in gifts if c == rate.currency), Decimal(0)).quantize(unit)
    value = sum((v for c, v in lifetime if c == rate.currency), Decimal(0))
    return Economics(
        effort_minutes=effort_minutes,
        hourly_rate=rate,
        effort_cost=effort,
        gift_costs=gift,
        cost_of_serving=effort + gift,
        deal_value=value.quantize(unit),
        other_currencies=tuple((c, v) for c, v in lifetime if c != rate.currency),
        gift_costs_in_other_currencies=tuple(
            (c, v) for c, v in gifts if c != rate.currency
        ),
    )
