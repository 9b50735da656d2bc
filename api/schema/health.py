"""Health, cadence and economics: how an account's relationship stands, worked
out when read (``projections.health``), and the accounts most at risk."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import strawberry

from api.context import Info
from api.runtime import Runtime
from api.schema.accounts import Account
from api.schema.deals import Money, deal_summary
from api.schema.loaders import request_loader
from api.schema.scalars import Connection, Tier, connection, decode_cursor, page_size
from api.settings import Settings
from projections import health, queries

strawberry.enum(health.HealthFactor, description="What a health score is made of.")


def _whole_days(span: timedelta) -> int:
    return span.days


@strawberry.type(
    description="How often the account is contacted against its tier's cadence "
    "(RAPPORT_CONTACT_CADENCE, RAPPORT_OVER_CONTACT_LIMIT), as of the query."
)
class Cadence:
    expected_interval_days: int = strawberry.field(
        description="The longest the account's tier should go without contact."
    )
    last_contact_at: datetime | None
    days_since_last_contact: int | None = strawberry.field(
        description="Whole days since the latest interaction; null: never contacted."
    )
    days_without_contact: int = strawberry.field(
        description="Whole days since the latest interaction, or since the account "
        "was opened when it never had one."
    )
    contact_due_at: datetime = strawberry.field(
        description="When the next contact is due to keep the cadence."
    )
    under_contact: bool = strawberry.field(
        description="No interaction within the expected interval, as of now."
    )
    contacts_last_week: int = strawberry.field(
        description="Outbound interactions in the 7 days up to now."
    )
    over_contact_limit: int = strawberry.field(
        description="More outbound contacts than this in 7 days is over-contact."
    )
    over_contact: bool = strawberry.field(
        description="More outbound contacts in the last 7 days than the limit: "
        "do not overdo it."
    )

    @classmethod
    def of(cls, status: health.CadenceStatus) -> Cadence:
        return cls(
            expected_interval_days=_whole_days(status.expected_interval),
            last_contact_at=status.last_contact_at,
            days_since_last_contact=status.days_since_last_contact,
            days_without_contact=status.days_without_contact,
            contact_due_at=status.contact_due_at,
            under_contact=status.under_contact,
            contacts_last_week=status.contacts_last_week,
            over_contact_limit=status.over_contact_limit,
            over_contact=status.over_contact,
        )


@strawberry.type(description="One factor of a health score and what it took off.")
class HealthFactorScore:
    factor: health.HealthFactor
    weight: int = strawberry.field(description="The most points this factor can take.")
    severity: float = strawberry.field(
        description="0 (nothing against the account) to 1 (the whole weight)."
    )
    contribution: float = strawberry.field(
        description="Points taken off 100: weight times severity, to one decimal."
    )
    reason: str

    @classmethod
    def of(cls, factor: health.FactorScore) -> HealthFactorScore:
        return cls(
            factor=factor.factor,
            weight=factor.weight,
            severity=float(factor.severity),
            contribution=float(factor.contribution),
            reason=factor.reason,
        )


@strawberry.type(
    description="A health score from 0 (every factor at its worst) to 100: 100 "
    "minus each factor's contribution. Worked out when read, as of `asOf`."
)
class Health:
    score: float
    as_of: datetime
    factors: list[HealthFactorScore]

    @classmethod
    def of(cls, scored: health.Health) -> Health:
        return cls(
            score=float(scored.score),
            as_of=scored.as_of,
            factors=[HealthFactorScore.of(f) for f in scored.factors],
        )


@strawberry.type(
    description="What serving the account costs against what it returned, in the "
    "currency of RAPPORT_HOURLY_RATE: effort at that rate, and the gifts paid in "
    "that currency."
)
class Economics:
    effort_minutes: int = strawberry.field(description="Every interaction's effort.")
    hourly_rate: Money
    effort_cost: Money = strawberry.field(
        description="Effort in hours times the hourly rate, rounded to the "
        "currency's smallest unit."
    )
    gift_costs: Money = strawberry.field(
        description="What the account's gifts cost, in the rate's currency."
    )
    gift_costs_in_other_currencies: list[Money] = strawberry.field(
        description="Gifts paid in other currencies: not converted, not in the "
        "cost of serving."
    )
    cost_of_serving: Money = strawberry.field(
        description="Effort cost plus gift costs, in the rate's currency."
    )
    deal_value: Money = strawberry.field(
        description="The lifetime value of the deals in the same currency."
    )
    net_value: Money = strawberry.field(
        description="Deal value minus cost of serving: negative for a luxury."
    )
    deal_value_in_other_currencies: list[Money] = strawberry.field(
        description="Lifetime deal values in other currencies: not converted, not compared."
    )
    luxury: bool | None = strawberry.field(
        description="The relationship costs more than it returned. Null: amounts in "
        "other currencies (never converted) could change the answer: deals in them "
        "may make up for a cost, gifts paid in them add to one."
    )

    @classmethod
    def of(cls, found: health.Economics) -> Economics:
        currency = found.hourly_rate.currency
        return cls(
            effort_minutes=found.effort_minutes,
            hourly_rate=Money.of(found.hourly_rate.amount, currency),
            effort_cost=Money.of(found.effort_cost, currency),
            gift_costs=Money.of(found.gift_costs, currency),
            gift_costs_in_other_currencies=[
                Money.of(amount, code)
                for code, amount in found.gift_costs_in_other_currencies
            ],
            cost_of_serving=Money.of(found.cost_of_serving, currency),
            deal_value=Money.of(found.deal_value, currency),
            net_value=Money.of(found.net, currency),
            deal_value_in_other_currencies=[
                Money.of(amount, code) for code, amount in found.other_currencies
            ],
            luxury=found.luxury,
        )


def signal_settings(settings: Settings) -> queries.SignalSettings:
    return queries.SignalSettings(
        cadence=settings.contact_cadence,
        satisfaction_span=timedelta(days=settings.satisfaction_window_days),
        complaint_targets=settings.complaint_targets,
    )


async def _load_signals(
    runtime: Runtime, keys: list[tuple[UUID, int]]
) -> list[health.Signals]:
    async with runtime.pool.connection() as conn:
        rows = await queries.account_signals(
            conn, [account_id for account_id, _ in keys], signal_settings(runtime.settings)
        )
    return [health.Signals.from_row(rows[account_id]) for account_id, _ in keys]


async def _signals(info: Info, account_id: UUID, version: int) -> health.Signals:
    """Batched across the accounts of a request: one query for all of them."""
    loader = request_loader(info, "health_signals", _load_signals)
    signals: health.Signals = await loader.load((account_id, version))
    return signals


async def account_cadence(info: Info, account_id: UUID, version: int) -> Cadence:
    limit = info.context.runtime.settings.over_contact_limit
    return Cadence.of(health.cadence(await _signals(info, account_id, version), limit))


async def account_health(info: Info, account_id: UUID, version: int) -> Health:
    return Health.of(health.score(await _signals(info, account_id, version)))


async def account_economics(info: Info, account_id: UUID, version: int) -> Economics:
    signals = await _signals(info, account_id, version)
    summary = await deal_summary(info, account_id, version)
    lifetime = [(r["currency"], r["lifetime_value"]) for r in summary["currencies"]]
    rate = info.context.runtime.settings.hourly_rate
    return Economics.of(
        health.economics(signals.effort_minutes, rate, lifetime, signals.gift_costs)
    )


@strawberry.type(description="An account and its health, as of the list's moment.")
class AccountRisk:
    account: Account
    health: Health


@strawberry.type(description="One factor of the health score, as configured.")
class HealthFactorRule:
    factor: health.HealthFactor
    weight: int
    formula: str


@strawberry.type(description="How long a tier should go without contact.")
class TierCadence:
    tier: Tier
    expected_interval_days: int


def _risk_cursor(row: dict[str, Any]) -> tuple[str, str, UUID]:
    return (row["as_of"].isoformat(), str(row["health_score"]), row["account_id"])


@strawberry.type
class HealthQueries:
    @strawberry.field(
        description="Accounts within reach, most at risk first: lowest health score, "
        "then id; keyset-paginated. Scores are worked out as of the first page's "
        "moment, which the cursors carry, so pages stay in one order."
    )
    async def at_risk_accounts(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[AccountRisk]:
        runtime = info.context.runtime
        limit = page_size(first, runtime.settings.max_page_size)
        as_of, key = None, None
        if after is not None:
            as_of, score, account_id = decode_cursor(
                after, datetime.fromisoformat, Decimal, UUID
            )
            key = (score, account_id)
        async with runtime.pool.connection() as conn:
            rows = await queries.at_risk_accounts(
                conn,
                signal_settings(runtime.settings),
                limit + 1,
                key,
                as_of=as_of,
                managers=info.context.managers(),
            )
        nodes = []
        for row in rows:
            info.context.accounts.prime(row["account_id"], row)
            nodes.append(
                AccountRisk(
                    account=Account.from_row(row),
                    health=Health.of(health.score(health.Signals.from_row(row))),
                )
            )
        return connection(nodes, [_risk_cursor(row) for row in rows], limit, after=after)

    @strawberry.field(description="The factors of the health score and their weights.")
    def health_factors(self) -> list[HealthFactorRule]:
        return [
            HealthFactorRule(factor=rule.factor, weight=rule.weight, formula=rule.formula)
            for rule in health.RULES
        ]

    @strawberry.field(description="The contact cadence of each tier.")
    def contact_cadence(self, info: Info) -> list[TierCadence]:
        cadence = info.context.runtime.settings.contact_cadence
        return [
            TierCadence(tier=tier, expected_interval_days=cadence.of(tier).days)
            for tier in Tier
        ]
