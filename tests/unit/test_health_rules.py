"""The health score, the cadence flags and relationship economics, as pure
functions of an account's signals; and their configuration."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from uuid import uuid4

import pytest

from api.settings import Settings
from domain.values import Tier
from projections import health
from projections.health import HealthFactor as F

AS_OF = datetime(2026, 6, 1, 12, tzinfo=UTC)

# An account with nothing against it.
CALM = health.Signals(
    account_id=uuid4(),
    as_of=AS_OF,
    tier="partner",
    opened_at=AS_OF - timedelta(days=400),
    last_contact_at=AS_OF - timedelta(days=3),
    expected_interval=timedelta(days=30),
    quiet_ratio=Decimal(3) / 30,
    contacts_last_week=1,
    effort_minutes=0,
    survey_count=4,
    csat=Decimal(100),
    csat_change=Decimal(0),
    open_complaints=0,
    breached_complaints=0,
    deal_change=Decimal("0.5"),
    deal_change_currency="EUR",
    unconfirmed_oral=0,
    overdue_follow_ups=0,
)

# Every factor at or beyond its worst.
WORST = replace(
    CALM,
    last_contact_at=AS_OF - timedelta(days=90),
    quiet_ratio=Decimal(3),
    csat=Decimal(0),
    csat_change=Decimal(-100),
    open_complaints=5,
    breached_complaints=4,
    deal_change=Decimal(-1),
    unconfirmed_oral=7,
    overdue_follow_ups=3,
)


def _contributions(signals: health.Signals) -> dict[F, Decimal]:
    return {f.factor: f.contribution for f in health.score(signals).factors}


def test_the_weights_add_up_to_100_and_every_factor_is_a_rule_with_a_reason():
    assert sum(rule.weight for rule in health.RULES) == 100
    assert [rule.factor for rule in health.RULES] == list(F)
    assert all(hasattr(CALM, rule.signal) for rule in health.RULES)
    assert all(rule.start != rule.end and rule.formula for rule in health.RULES)


def test_no_factor_against_an_account_scores_100_and_all_at_worst_score_0():
    calm = health.score(CALM)
    assert calm.score == 100
    assert all(f.contribution == 0 and f.severity == 0 for f in calm.factors)
    worst = health.score(WORST)
    assert worst.score == 0
    assert {f.factor: f.contribution for f in worst.factors} == {
        rule.factor: rule.weight for rule in health.RULES
    }
    assert worst.as_of == AS_OF


@pytest.mark.parametrize(
    ("rule", "value", "severity"),
    [
        # A rising ramp: recency 1 (at the interval) -> 2 (twice the interval).
        (F.CONTACT_RECENCY, Decimal("0.5"), Decimal(0)),
        (F.CONTACT_RECENCY, Decimal(1), Decimal(0)),
        (F.CONTACT_RECENCY, Decimal("1.25"), Decimal("0.25")),
        (F.CONTACT_RECENCY, Decimal(2), Decimal(1)),
        (F.CONTACT_RECENCY, Decimal(5), Decimal(1)),
        # A falling one: CSAT 80 -> 40.
        (F.SATISFACTION_LEVEL, Decimal(90), Decimal(0)),
        (F.SATISFACTION_LEVEL, Decimal(70), Decimal("0.25")),
        (F.SATISFACTION_LEVEL, Decimal(10), Decimal(1)),
        (F.SATISFACTION_LEVEL, None, Decimal(0)),  # no survey: not counted
        (F.DEAL_TREND, Decimal("-0.5"), Decimal("0.5")),
        (F.DEAL_TREND, Decimal(3), Decimal(0)),
        (F.OPEN_COMPLAINTS, 1, Decimal("0.5")),
        (F.UNCONFIRMED_ORAL, 1, Decimal(1) / 3),
        (F.OVERDUE_FOLLOW_UPS, 0, Decimal(0)),
        (F.OVERDUE_FOLLOW_UPS, 1, Decimal("0.5")),
        (F.OVERDUE_FOLLOW_UPS, 2, Decimal(1)),
        (F.OVERDUE_FOLLOW_UPS, 9, Decimal(1)),
    ],
)
def test_each_factor_is_a_clamped_ramp_between_its_start_and_end(rule, value, severity):
    [found] = [r for r in health.RULES if r.factor is rule]
    assert found.severity(value) == severity
    # Half up, as PostgreSQL's round: 5 * 0.35 = 1.75 is 1.8.
    expected = (found.weight * severity).quantize(health.POINT, ROUND_HALF_UP)
    assert found.contribution(value) == expected


def test_a_mixed_account_adds_up_its_contributions_rounded_to_one_decimal():
    signals = replace(
        CALM,
        quiet_ratio=Decimal(40) / 30,  # 20 * 1/3 = 6.66...
        csat=Decimal(50),  # 20 * 30/40 = 15
        csat_change=Decimal(-15),  # 10 * 1/2 = 5
        open_complaints=1,  # 5
        deal_change=None,  # not counted
        unconfirmed_oral=2,  # 5 * 2/3 = 3.33...
        overdue_follow_ups=1,  # 5
    )
    assert _contributions(signals) == {
        F.CONTACT_RECENCY: Decimal("6.7"),
        F.SATISFACTION_LEVEL: Decimal("15.0"),
        F.SATISFACTION_TREND: Decimal("5.0"),
        F.OPEN_COMPLAINTS: Decimal("5.0"),
        F.BREACHED_COMPLAINTS: Decimal("0.0"),
        F.DEAL_TREND: Decimal("0.0"),
        F.UNCONFIRMED_ORAL: Decimal("3.3"),
        F.OVERDUE_FOLLOW_UPS: Decimal("5.0"),
    }
    assert health.score(signals).score == Decimal(100) - Decimal("40.0")


def test_the_weights_are_those_documented():
    assert {rule.factor: rule.weight for rule in health.RULES} == {
        F.CONTACT_RECENCY: 20,
        F.SATISFACTION_LEVEL: 20,
        F.SATISFACTION_TREND: 10,
        F.OPEN_COMPLAINTS: 10,
        F.BREACHED_COMPLAINTS: 10,
        F.DEAL_TREND: 15,
        F.UNCONFIRMED_ORAL: 5,
        F.OVERDUE_FOLLOW_UPS: 10,
    }


def test_reasons_say_what_made_each_factor():
    reasons = {f.factor: f.reason for f in health.score(WORST).factors}
    assert reasons == {
        F.CONTACT_RECENCY: "last contact 90 days ago; partner accounts expect one "
        "every 30 days",
        F.SATISFACTION_LEVEL: "CSAT 0% in the satisfaction window (4 surveys)",
        F.SATISFACTION_TREND: "CSAT fell 100 points against the window before",
        F.OPEN_COMPLAINTS: "5 open complaints",
        F.BREACHED_COMPLAINTS: "4 complaints missed a target (still open or filed "
        "in the last 90 days)",
        F.DEAL_TREND: "deal value in EUR fell 100% against the 90 days before",
        F.UNCONFIRMED_ORAL: "7 oral interactions without written confirmation",
        F.OVERDUE_FOLLOW_UPS: "3 follow-ups overdue",
    }
    assert {f.factor: f.reason for f in health.score(CALM).factors}[
        F.OVERDUE_FOLLOW_UPS
    ] == "no follow-up is overdue"
    one = health.score(replace(CALM, overdue_follow_ups=1))
    assert one.factors[-1].reason == "1 follow-up overdue"
    calm = {f.factor: f.reason for f in health.score(CALM).factors}
    assert calm[F.CONTACT_RECENCY] == (
        "last contact 3 days ago, within cadence: partner accounts expect one every 30 days"
    )
    unknown = health.score(replace(CALM, csat=None, csat_change=None, deal_change=None))
    assert all(
        f.reason.endswith("not counted")
        for f in unknown.factors
        if f.factor in {F.SATISFACTION_LEVEL, F.SATISFACTION_TREND, F.DEAL_TREND}
    )


def test_under_contact_is_past_the_tier_interval_and_over_contact_past_the_limit():
    within = health.cadence(CALM, over_contact_limit=3)
    assert (within.under_contact, within.over_contact) == (False, False)
    assert (within.days_since_last_contact, within.days_without_contact) == (3, 3)
    assert within.contact_due_at == AS_OF + timedelta(days=27)

    at_limit = health.cadence(replace(CALM, contacts_last_week=3), over_contact_limit=3)
    assert at_limit.over_contact is False
    beyond = health.cadence(replace(CALM, contacts_last_week=4), over_contact_limit=3)
    assert (beyond.over_contact, beyond.contacts_last_week) == (True, 4)

    exactly = replace(
        CALM, last_contact_at=AS_OF - timedelta(days=30), quiet_ratio=Decimal(1)
    )
    assert health.cadence(exactly, 3).under_contact is False
    late = replace(
        CALM, last_contact_at=AS_OF - timedelta(days=31), quiet_ratio=31 / Decimal(30)
    )
    assert health.cadence(late, 3).under_contact is True
    assert health.cadence(late, 3).days_since_last_contact == 31

    never = replace(
        CALM, last_contact_at=None, opened_at=AS_OF - timedelta(days=2, hours=5)
    )
    status = health.cadence(never, 3)
    assert (status.days_since_last_contact, status.days_without_contact) == (None, 2)
    assert status.contact_due_at == never.opened_at + timedelta(days=30)


def test_the_cadence_is_parsed_per_tier_and_checked():
    assert health.ContactCadence.parse("") == health.DEFAULT_CONTACT_CADENCE
    cadence = health.ContactCadence.parse("partner=20d, transactional = 60")
    assert cadence.of(Tier.PARTNER) == timedelta(days=20)
    assert cadence.of("transactional") == timedelta(days=60)
    assert cadence.of(Tier.STRATEGIC_ALLIANCE) == timedelta(days=14)
    for wrong in (
        "gold=10d",
        "partner=10d,partner=20d",
        "partner",
        "partner=2w",
        "partner=0d",
    ):
        with pytest.raises(ValueError, match=r"partner|gold|tier|day"):
            health.ContactCadence.parse(wrong)


def test_the_hourly_rate_is_an_exact_amount_in_a_currency():
    assert health.HourlyRate.parse("80 EUR") == health.HourlyRate(Decimal("80.00"), "EUR")
    assert health.HourlyRate.parse(" 12.5 usd ") == health.HourlyRate(
        Decimal("12.50"), "USD"
    )
    for wrong in ("80", "eighty EUR", "80 XYZ", "-5 EUR", "80.001 EUR", "0 EUR"):
        with pytest.raises(ValueError, match="RAPPORT_HOURLY_RATE"):
            health.HourlyRate.parse(wrong)


def test_cost_of_serving_prices_effort_at_the_rate_and_flags_a_luxury():
    rate = health.HourlyRate(Decimal("80.00"), "EUR")
    found = health.economics(45, rate, [("EUR", Decimal("50.00"))])
    assert (found.cost_of_serving, found.deal_value, found.net) == (
        Decimal("60.00"),
        Decimal("50.00"),
        Decimal("-10.00"),
    )
    assert found.luxury is True
    assert health.economics(45, rate, [("EUR", Decimal("60.00"))]).luxury is False
    assert health.economics(0, rate, []).luxury is False
    # Deals in another currency are not converted: whether it is a luxury is unknown.
    mixed = health.economics(45, rate, [("JPY", Decimal(100000))])
    assert (mixed.deal_value, mixed.luxury) == (Decimal("0.00"), None)
    assert mixed.other_currencies == (("JPY", Decimal(100000)),)
    # Rounded half up to the currency's smallest unit: 7 min at 10.00 = 1.1666...
    assert health.economics(
        7, health.HourlyRate(Decimal("10.00"), "EUR"), []
    ).cost_of_serving == Decimal("1.17")
    assert health.economics(
        1, health.HourlyRate(Decimal(90), "JPY"), []
    ).cost_of_serving == Decimal(2)


def test_gifts_in_the_rates_currency_add_to_the_cost_of_serving():
    rate = health.HourlyRate(Decimal("80.00"), "EUR")
    gifts = (("EUR", Decimal("25.50")), ("USD", Decimal("40.00")))
    found = health.economics(45, rate, [("EUR", Decimal("100.00"))], gifts)
    assert (found.effort_cost, found.gift_costs, found.cost_of_serving) == (
        Decimal("60.00"),
        Decimal("25.50"),
        Decimal("85.50"),
    )
    assert found.net == Decimal("14.50")
    assert found.gift_costs_in_other_currencies == (("USD", Decimal("40.00")),)
    # Less than the deals in EUR, but a gift in USD is not converted: unknown.
    assert found.luxury is None
    only_eur = health.economics(45, rate, [("EUR", Decimal("80.00"))], gifts[:1])
    assert (only_eur.cost_of_serving, only_eur.luxury) == (Decimal("85.50"), True)
    cheap = health.economics(0, rate, [("EUR", Decimal("80.00"))], gifts[:1])
    assert (cheap.cost_of_serving, cheap.luxury) == (Decimal("25.50"), False)
    # A gift in a currency with fewer decimals is kept with the rate's.
    yen = health.economics(
        0, health.HourlyRate(Decimal(9000), "JPY"), [], (("JPY", Decimal(3000)),)
    )
    assert (yen.cost_of_serving, yen.gift_costs) == (Decimal(3000), Decimal(3000))


def test_settings_read_cadence_limit_and_rate_from_the_environment(monkeypatch):
    monkeypatch.setenv("RAPPORT_CONTACT_CADENCE", "strategic_alliance=7d")
    monkeypatch.setenv("RAPPORT_OVER_CONTACT_LIMIT", "5")
    monkeypatch.setenv("RAPPORT_HOURLY_RATE", "95.50 CHF")
    settings = Settings.from_env()
    assert settings.contact_cadence.of(Tier.STRATEGIC_ALLIANCE) == timedelta(days=7)
    assert settings.over_contact_limit == 5
    assert settings.hourly_rate == health.HourlyRate(Decimal("95.50"), "CHF")
    monkeypatch.setenv("RAPPORT_OVER_CONTACT_LIMIT", "0")
    with pytest.raises(ValueError, match="RAPPORT_OVER_CONTACT_LIMIT"):
        Settings.from_env()
    for name in (
        "RAPPORT_CONTACT_CADENCE",
        "RAPPORT_OVER_CONTACT_LIMIT",
        "RAPPORT_HOURLY_RATE",
    ):
        monkeypatch.delenv(name)
    defaults = Settings.from_env()
    assert defaults.contact_cadence == health.DEFAULT_CONTACT_CADENCE
    assert (defaults.over_contact_limit, defaults.hourly_rate) == (
        3,
        health.HourlyRate(Decimal("80.00"), "EUR"),
    )
