"""Reads of the views, for the API: keyset pagination, batched by account id.

Every function takes an async connection and returns plain rows; the SQL sits
here, beside the DDL in the view modules, so a view's shape is changed in one
package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import AsyncClientCursor, AsyncConnection
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Composed, Identifier, Placeholder

from domain.complaints import ComplaintTargets
from domain.values import (
    CSAT_LEVELS,
    DETRACTOR_MAX,
    PROMOTER_MIN,
    ComplaintSeverity,
    Stage,
    Tier,
)
from projections import health

Row = dict[str, Any]
Conn = AsyncConnection[DictRow]

PERIOD_TABLES = frozenset({"stage_history", "tier_history", "manager_history"})
DURATION_VIEWS = frozenset({"stage_durations", "tier_durations"})


@dataclass(frozen=True)
class AccountFilter:
    tier: str | None = None
    stage: str | None = None
    manager: str | None = None
    search: str | None = None
    managers: Sequence[str] | None = None
    """Only accounts managed by one of these (None: any)."""


async def accounts_by_id(conn: Conn, ids: Sequence[UUID]) -> dict[UUID, Row]:
    cur = await conn.execute(
        "SELECT * FROM account_view WHERE account_id = ANY(%s)", (list(ids),)
    )
    return {row["account_id"]: row for row in await cur.fetchall()}


async def list_accounts(
    conn: Conn, where: AccountFilter, limit: int, after: tuple[str, UUID] | None
) -> list[Row]:
    """Accounts by name then id, ``limit`` rows after the keyset ``after``."""
    clauses: list[Composable] = []
    params: list[Any] = []
    clauses += _equal(where, ("tier", "stage", "manager"), params)
    if where.search:
        clauses.append(SQL("name ILIKE %s"))
        params.append("%" + _escape_like(where.search) + "%")
    if after is not None:
        clauses.append(SQL("(name, account_id) > (%s, %s)"))
        params.extend(after)
    query = SQL("SELECT * FROM account_view").format()
    if clauses:
        query += SQL(" WHERE ") + SQL(" AND ").join(clauses)
    query += SQL(" ORDER BY name, account_id LIMIT %s")
    params.append(limit)
    cur = await conn.execute(query, params)
    return await cur.fetchall()


async def periods_by_account(
    conn: Conn, table: str, ids: Sequence[UUID]
) -> dict[UUID, list[Row]]:
    """Rows of a period history (or durations view) for each account, oldest first."""
    order = "period" if table in PERIOD_TABLES else "first_entered_at"
    if table not in PERIOD_TABLES | DURATION_VIEWS:
        raise ValueError(table)
    cur = await conn.execute(
        SQL("SELECT * FROM {} WHERE account_id = ANY(%s) ORDER BY account_id, {}").format(
            Identifier(table), Identifier(order)
        ),
        (list(ids),),
    )
    return _grouped(ids, await cur.fetchall())


async def interactions(
    conn: Conn, account_id: UUID, limit: int, after: tuple[datetime, UUID] | None
) -> list[Row]:
    """An account's interactions, newest first, ``limit`` rows after ``after``."""
    query = SQL("SELECT * FROM interaction_timeline WHERE account_id = %s").format()
    params: list[Any] = [account_id]
    if after is not None:
        query += SQL(" AND (occurred_at, interaction_id) < (%s, %s)")
        params.extend(after)
    query += SQL(" ORDER BY occurred_at DESC, interaction_id DESC LIMIT %s")
    params.append(limit)
    cur = await conn.execute(query, params)
    return await cur.fetchall()


async def first_interactions(
    conn: Conn, account_ids: Sequence[UUID], limit: int
) -> dict[UUID, list[Row]]:
    """The newest ``limit`` interactions of each account, in one query."""
    cur = await conn.execute(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY account_id"
        " ORDER BY occurred_at DESC, interaction_id DESC) AS rank"
        " FROM interaction_timeline WHERE account_id = ANY(%s)) ranked"
        " WHERE rank <= %s ORDER BY account_id, rank",
        (list(account_ids), limit),
    )
    return _grouped(account_ids, await cur.fetchall())


@dataclass(frozen=True)
class ComplaintFilter:
    status: str | None = None
    severity: str | None = None
    breached: bool | None = None
    account_id: UUID | None = None
    manager: str | None = None
    managers: Sequence[str] | None = None
    """Only complaints of accounts managed by one of these (None: any)."""


def _complaints_with_targets(
    targets: ComplaintTargets, as_of: datetime | None
) -> tuple[Composed, list[Any]]:
    """Complaints with their due moments and breaches against ``targets``, as of
    ``as_of`` (by default the statement's time): worked out as they are read,
    so a breach shows as soon as a due moment passes.

    A target is breached when its step came late, or has not come and is
    overdue. A reopened complaint's resolution is due as before: it counts
    from the filing until the resolution that holds.
    """
    rows = SQL(", ").join(
        SQL("(%s, %s::interval, %s::interval)") for _ in ComplaintSeverity
    )
    params: list[Any] = []
    for severity in ComplaintSeverity:
        target = targets.of(severity)
        params.extend((severity.value, target.acknowledge, target.resolve))
    params.append(as_of)
    query = SQL(
        "SELECT *, acknowledge_breached OR resolve_breached AS breached FROM ("
        " SELECT c.*, t.acknowledge_within, t.resolve_within,"
        " c.filed_at + t.acknowledge_within AS acknowledge_due_at,"
        " c.filed_at + t.resolve_within AS resolve_due_at,"
        " coalesce(c.acknowledged_at, n.as_of) > c.filed_at + t.acknowledge_within"
        " AS acknowledge_breached,"
        " coalesce(c.resolved_at, n.as_of) > c.filed_at + t.resolve_within"
        " AS resolve_breached"
        " FROM complaints c"
        " JOIN (VALUES {}) AS t (severity, acknowledge_within, resolve_within)"
        " ON t.severity = c.severity"
        " CROSS JOIN (SELECT coalesce(%s::timestamptz, now()) AS as_of) n"
        ") complaint"
    ).format(rows)
    return query, params


async def list_complaints(
    conn: Conn,
    where: ComplaintFilter,
    targets: ComplaintTargets,
    limit: int,
    after: tuple[datetime, UUID, UUID] | None,
    as_of: datetime | None = None,
) -> list[Row]:
    """Complaints newest first (filing time, then account and complaint id),
    ``limit`` rows after the keyset ``after``; ``breached`` is filtered here,
    in SQL, against ``targets`` as of ``as_of`` (by default now)."""
    query, params = _complaints_with_targets(targets, as_of)
    clauses: list[Composable] = []
    clauses += _equal(where, ("status", "severity", "account_id", "manager"), params)
    if where.breached is not None:
        clauses.append(SQL("(acknowledge_breached OR resolve_breached) = %s"))
        params.append(where.breached)
    if after is not None:
        clauses.append(SQL("(filed_at, account_id, complaint_id) < (%s, %s, %s)"))
        params.extend(after)
    if clauses:
        query += SQL(" WHERE ") + SQL(" AND ").join(clauses)
    query += SQL(" ORDER BY filed_at DESC, account_id DESC, complaint_id DESC LIMIT %s")
    params.append(limit)
    cur = await conn.execute(query, params)
    return await cur.fetchall()


async def complaints_by_account(
    conn: Conn, account_ids: Sequence[UUID], targets: ComplaintTargets
) -> dict[UUID, list[Row]]:
    """Every complaint of each account, newest first, in one query."""
    query, params = _complaints_with_targets(targets, None)
    query += SQL(
        " WHERE account_id = ANY(%s) ORDER BY account_id, filed_at DESC, complaint_id DESC"
    )
    params.append(list(account_ids))
    cur = await conn.execute(query, params)
    return _grouped(account_ids, await cur.fetchall())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- timelines of surveys and deals ------------------------------------------------

# Each list's table, its moment column and its id column: newest first.
TIMELINES = {
    "surveys": ("answered_at", "survey_id"),
    "deals": ("closed_at", "deal_id"),
}


async def timeline_page(
    conn: Conn,
    table: str,
    account_id: UUID,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[Row]:
    """An account's surveys or deals, newest first, ``limit`` rows after ``after``."""
    moment, key = (Identifier(name) for name in TIMELINES[table])
    query = SQL("SELECT * FROM {} WHERE account_id = %s").format(Identifier(table))
    params: list[Any] = [account_id]
    if after is not None:
        query += SQL(" AND ({}, {}) < (%s, %s)").format(moment, key)
        params.extend(after)
    query += SQL(" ORDER BY {} DESC, {} DESC LIMIT %s").format(moment, key)
    params.append(limit)
    cur = await conn.execute(query, params)
    return await cur.fetchall()


async def first_of_timeline(
    conn: Conn, table: str, account_ids: Sequence[UUID], limit: int
) -> dict[UUID, list[Row]]:
    """The newest ``limit`` surveys or deals of each account, in one query."""
    moment, key = (Identifier(name) for name in TIMELINES[table])
    cur = await conn.execute(
        SQL(
            "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY account_id"
            " ORDER BY {} DESC, {} DESC) AS rank"
            " FROM {} WHERE account_id = ANY(%s)) ranked"
            " WHERE rank <= %s ORDER BY account_id, rank"
        ).format(moment, key, Identifier(table)),
        (list(account_ids), limit),
    )
    return _grouped(account_ids, await cur.fetchall())


# -- satisfaction: CSAT and NPS over a rolling window -------------------------------
#
# Worked out in SQL as the surveys are read, over the window that ends now (or
# at ``as_of``) and the window of the same length before it. A survey answered
# exactly at a window's start belongs to the window before.

PORTFOLIO_GROUPS = {"tier": Tier, "stage": Stage, "manager": None}

_WINDOWS = SQL(
    "WITH n AS (SELECT coalesce(%(as_of)s::timestamptz, now()) AS as_of,"
    " %(span)s::interval AS span)"
)
_IN_BOTH_WINDOWS = SQL("s.answered_at <= n.as_of AND s.answered_at > n.as_of - 2 * n.span")
_BOUNDS = SQL(
    "n.as_of - n.span AS window_start, n.as_of AS window_end,"
    " n.as_of - 2 * n.span AS previous_window_start"
)


def _scores() -> Composed:
    """Survey count, CSAT and NPS of each window (``previous_`` for the one
    before), as percentages; null where a window has no survey."""
    columns: list[Composable] = []
    for prefix, window in (
        ("", SQL("s.answered_at > n.as_of - n.span")),
        ("previous_", SQL("s.answered_at <= n.as_of - n.span")),
    ):
        count = SQL("count(s.survey_id) FILTER (WHERE {})").format(window)
        share = SQL("nullif({}, 0)").format(count)
        columns.append(
            SQL(
                "{count} AS {survey_count},"
                " 100.0 * count(*) FILTER (WHERE {window}"
                " AND s.satisfaction = ANY(%(top)s)) / {share} AS {csat},"
                " 100.0 * (count(*) FILTER (WHERE {window}"
                " AND s.likelihood_to_recommend >= %(promoter)s)"
                " - count(*) FILTER (WHERE {window}"
                " AND s.likelihood_to_recommend <= %(detractor)s)) / {share} AS {nps}"
            ).format(
                count=count,
                window=window,
                share=share,
                survey_count=Identifier(f"{prefix}survey_count"),
                csat=Identifier(f"{prefix}csat"),
                nps=Identifier(f"{prefix}nps"),
            )
        )
    return SQL(", ").join(columns)


def _satisfaction_params(span: timedelta, as_of: datetime | None) -> dict[str, Any]:
    return {
        "as_of": as_of,
        "span": span,
        "top": [str(level) for level in CSAT_LEVELS],
        "promoter": PROMOTER_MIN,
        "detractor": DETRACTOR_MAX,
    }


_WITH_CHANGES = SQL(
    "SELECT *, csat - previous_csat AS csat_change, nps - previous_nps AS nps_change"
    " FROM ({}) scored"
)


async def satisfaction_by_account(
    conn: Conn,
    account_ids: Sequence[UUID],
    span: timedelta,
    as_of: datetime | None = None,
) -> dict[UUID, Row]:
    """CSAT and NPS of each account over the ``span`` before now (or ``as_of``),
    and over the ``span`` before that, in one query; every account asked for
    has a row (its counts 0 without surveys)."""
    inner = SQL(
        "SELECT k.account_id, {bounds}, {scores}"
        " FROM unnest(%(ids)s::uuid[]) AS k (account_id) CROSS JOIN n"
        " LEFT JOIN surveys s ON s.account_id = k.account_id AND {both}"
        " GROUP BY k.account_id, n.as_of, n.span"
    ).format(bounds=_BOUNDS, scores=_scores(), both=_IN_BOTH_WINDOWS)
    params = _satisfaction_params(span, as_of) | {"ids": list(account_ids)}
    cur = await conn.execute(_WINDOWS + SQL(" ") + _WITH_CHANGES.format(inner), params)
    return {row["account_id"]: row for row in await cur.fetchall()}


async def portfolio(
    conn: Conn,
    group_by: str,
    span: timedelta,
    as_of: datetime | None = None,
    managers: Sequence[str] | None = None,
) -> list[Row]:
    """CSAT and NPS of the surveys of all accounts (or those managed by one of
    ``managers``), grouped by the accounts' current tier, stage or manager
    (``key``; null: no manager), in the vocabulary's order (managers by name).
    Groups without a survey in either window are left out."""
    vocabulary = PORTFOLIO_GROUPS[group_by]
    inner = SQL(
        "SELECT a.{column} AS key, {bounds}, {scores}"
        " FROM surveys s JOIN account_view a USING (account_id) CROSS JOIN n"
        " WHERE {both} AND (%(managers)s::text[] IS NULL OR a.manager = ANY(%(managers)s))"
        " GROUP BY a.{column}, n.as_of, n.span"
    ).format(
        column=Identifier(group_by),
        bounds=_BOUNDS,
        scores=_scores(),
        both=_IN_BOTH_WINDOWS,
    )
    order = [str(value) for value in vocabulary] if vocabulary else []
    query = (
        _WINDOWS
        + SQL(" ")
        + _WITH_CHANGES.format(inner)
        + SQL(" ORDER BY array_position(%(order)s::text[], key), key NULLS LAST")
    )
    params = _satisfaction_params(span, as_of) | {
        "order": order,
        "managers": None if managers is None else list(managers),
    }
    cur = await conn.execute(query, params)
    return await cur.fetchall()


# -- deals: values per currency, never summed across currencies ---------------------

DEAL_TREND_SPAN = timedelta(days=90)


async def deal_summaries(
    conn: Conn,
    account_ids: Sequence[UUID],
    span: timedelta = DEAL_TREND_SPAN,
    as_of: datetime | None = None,
) -> dict[UUID, Row]:
    """For each account, in one query: its deal count and last deal, and per
    currency (oldest code first) the lifetime value, the value of the ``span``
    before now (or ``as_of``) and of the ``span`` before that.

    Per account and currency, and per account alone (for the count and the
    last deal; its sums would mix currencies, so it has none). Accounts
    without deals have a count of 0 and no currencies.
    """
    cur = await conn.execute(
        "WITH n AS (SELECT coalesce(%(as_of)s::timestamptz, now()) AS as_of,"
        " %(span)s::interval AS span)"
        " SELECT d.account_id, d.currency, grouping(d.currency) = 1 AS every_currency,"
        " count(*) AS deal_count, max(d.closed_at) AS last_deal_at,"
        " CASE WHEN grouping(d.currency) = 0 THEN sum(d.amount) END AS lifetime_value,"
        " CASE WHEN grouping(d.currency) = 0 THEN coalesce(sum(d.amount) FILTER"
        " (WHERE d.closed_at > n.as_of - n.span AND d.closed_at <= n.as_of), 0)"
        " END AS recent_value,"
        " CASE WHEN grouping(d.currency) = 0 THEN coalesce(sum(d.amount) FILTER"
        " (WHERE d.closed_at > n.as_of - 2 * n.span"
        " AND d.closed_at <= n.as_of - n.span), 0) END AS previous_value,"
        " count(*) FILTER (WHERE d.closed_at > n.as_of - 2 * n.span"
        " AND d.closed_at <= n.as_of) AS trend_deals"
        " FROM deals d CROSS JOIN n WHERE d.account_id = ANY(%(ids)s)"
        " GROUP BY GROUPING SETS ((d.account_id, d.currency), (d.account_id))"
        " ORDER BY d.account_id, every_currency DESC, d.currency",
        {"as_of": as_of, "span": span, "ids": list(account_ids)},
    )
    summaries: dict[UUID, Row] = {}
    for row in await cur.fetchall():
        if row["every_currency"]:
            summaries[row["account_id"]] = {
                "deal_count": row["deal_count"],
                "last_deal_at": row["last_deal_at"],
                "currencies": [],
            }
        else:
            summaries[row["account_id"]]["currencies"].append(row)
    return summaries


# -- follow-ups and goals: overdue as of the read -------------------------------------


@dataclass(frozen=True)
class FollowUpFilter:
    owner: str | None = None
    status: str | None = None
    overdue: bool | None = None
    account_id: UUID | None = None
    managers: Sequence[str] | None = None
    """Only follow-ups of accounts managed by one of these (None: any)."""


# Overdue, as of ``n.as_of``: open, and its due moment passed. The one
# definition, for the lists and for the health signals.
_OVERDUE = SQL("f.status = 'open' AND f.due < n.as_of")
_FOLLOW_UPS = SQL(
    "SELECT * FROM (SELECT f.*, {} AS overdue"
    " FROM follow_ups f CROSS JOIN (SELECT coalesce(%s::timestamptz, now()) AS as_of) n"
    ") follow_up"
).format(_OVERDUE)


async def list_follow_ups(
    conn: Conn,
    where: FollowUpFilter,
    limit: int,
    after: tuple[datetime, UUID, UUID] | None,
    as_of: datetime | None = None,
) -> list[Row]:
    """Follow-ups soonest due first (then account and follow-up id), ``limit``
    rows after the keyset ``after``. An open follow-up whose due moment has
    passed as of ``as_of`` (by default now) is overdue; ``overdue`` is filtered
    here, in SQL."""
    query: Composable = _FOLLOW_UPS
    params: list[Any] = [as_of]
    clauses: list[Composable] = []
    clauses += _equal(where, ("owner", "status", "account_id"), params)
    if where.overdue is not None:
        clauses.append(SQL("overdue = %s"))
        params.append(where.overdue)
    if after is not None:
        clauses.append(SQL("(due, account_id, follow_up_id) > (%s, %s, %s)"))
        params.extend(after)
    if clauses:
        query += SQL(" WHERE ") + SQL(" AND ").join(clauses)
    query += SQL(" ORDER BY due, account_id, follow_up_id LIMIT %s")
    params.append(limit)
    cur = await conn.execute(query, params)
    return await cur.fetchall()


async def follow_ups_by_account(
    conn: Conn, account_ids: Sequence[UUID]
) -> dict[UUID, list[Row]]:
    """Every follow-up of each account, soonest due first, in one query."""
    query = _FOLLOW_UPS + SQL(
        " WHERE account_id = ANY(%s) ORDER BY account_id, due, follow_up_id"
    )
    cur = await conn.execute(query, [None, list(account_ids)])
    return _grouped(account_ids, await cur.fetchall())


async def goals_by_account(
    conn: Conn, account_ids: Sequence[UUID]
) -> dict[UUID, list[Row]]:
    """Every goal of each account, soonest due first, in one query; an agreed
    goal past its due date (as of today) is overdue."""
    cur = await conn.execute(
        "SELECT *, status = 'agreed' AND due < current_date AS overdue FROM goals"
        " WHERE account_id = ANY(%s) ORDER BY account_id, due, goal_id",
        (list(account_ids),),
    )
    return _grouped(account_ids, await cur.fetchall())


def _equal(where: Any, columns: Sequence[str], params: list[Any]) -> list[Composable]:
    """``column = value`` for each of ``columns`` the filter ``where`` sets, and
    its reach (``manager`` one of ``where.managers``) when that is limited; the
    values go to ``params`` in the same order."""
    clauses: list[Composable] = []
    for column in columns:
        value = getattr(where, column)
        if value is not None:
            clauses.append(SQL("{} = %s").format(Identifier(column)))
            params.append(value)
    if where.managers is not None:
        clauses.append(SQL("manager = ANY(%s)"))
        params.append(list(where.managers))
    return clauses


def _grouped(account_ids: Sequence[UUID], rows: list[Row]) -> dict[UUID, list[Row]]:
    grouped: dict[UUID, list[Row]] = {account_id: [] for account_id in account_ids}
    for row in rows:
        grouped[row["account_id"]].append(row)
    return grouped


# -- health, cadence and economics: signals as of the read ----------------------------
#
# One statement gathers every input of projections.health for a set of accounts,
# as of a moment (by default the statement's time): recency against the tier's
# cadence, outbound contacts in the last week, effort, CSAT and its change (the
# satisfaction window's SQL above), open and breached complaints (the breach
# definition above), the worst deal-value change per currency, and oral
# interactions awaiting confirmation, overdue follow-ups (the lists' definition
# above), and the gifts' costs per currency. The health score is rendered into SQL
# from health.RULES, the one definition of its formula, so that lists sort by it.


@dataclass(frozen=True)
class SignalSettings:
    cadence: health.ContactCadence
    satisfaction_span: timedelta
    complaint_targets: ComplaintTargets


# Breached complaints count while open, or when filed in this many days before the read.
BREACH_MEMORY = timedelta(days=90)


def _health_score() -> tuple[Composed, dict[str, Any]]:
    """``100 - sum(round(weight * clamp((signal - start) / (end - start), 0, 1), 1))``
    over health.RULES, as in ``health.score``."""
    terms: list[Composable] = []
    params: dict[str, Any] = {}
    for i, rule in enumerate(health.RULES):
        weight, start, end = (f"rule_{i}_{part}" for part in ("weight", "start", "end"))
        params |= {weight: Decimal(rule.weight), start: rule.start, end: rule.end}
        terms.append(
            SQL(
                "round({weight}::numeric * least(greatest((coalesce({signal}::numeric,"
                " {start}::numeric) - {start}::numeric) / ({end}::numeric"
                " - {start}::numeric), 0), 1), 1)"
            ).format(
                weight=Placeholder(weight),
                start=Placeholder(start),
                end=Placeholder(end),
                signal=Identifier(rule.signal),
            )
        )
    return SQL("100 - ({})").format(SQL(" + ").join(terms)), params


def _signals(
    conn: Conn, scope: Composable, settings: SignalSettings, as_of: datetime | None
) -> tuple[Composed, dict[str, Any]]:
    """Every account of ``scope`` (a condition on account_view) with its signals
    and its ``health_score``.

    The complaints' breaches are the statement of ``_complaints_with_targets``,
    whose positional parameters are bound here, by psycopg, to its text.
    """
    breaches, breach_params = _complaints_with_targets(settings.complaint_targets, as_of)
    bound = AsyncClientCursor(conn).mogrify(breaches, breach_params)
    score, score_params = _health_score()
    inner = SQL(
        "WITH n AS (SELECT coalesce(%(as_of)s::timestamptz, now()) AS as_of,"
        " %(span)s::interval AS span),"
        " cadence AS (SELECT * FROM unnest(%(tiers)s::text[], %(intervals)s::interval[])"
        " AS c (tier, expected_interval)),"
        " a AS (SELECT * FROM account_view WHERE {scope}),"
        " contact AS (SELECT i.account_id, count(*) FILTER (WHERE i.direction = 'outbound'"
        " AND i.occurred_at > n.as_of - %(week)s::interval AND i.occurred_at <= n.as_of)"
        " AS contacts_last_week, sum(i.effort_minutes) AS effort_minutes"
        " FROM interaction_timeline i CROSS JOIN n"
        " WHERE i.account_id IN (SELECT account_id FROM a) GROUP BY i.account_id),"
        " satisfaction AS (SELECT s.account_id, {scores} FROM surveys s CROSS JOIN n"
        " WHERE s.account_id IN (SELECT account_id FROM a) AND {both}"
        " GROUP BY s.account_id, n.as_of, n.span),"
        " complaint AS (SELECT c.account_id, count(*) FILTER (WHERE c.breached"
        " AND (c.status NOT IN ('resolved', 'closed')"
        " OR c.filed_at > n.as_of - %(breach_memory)s::interval)) AS breached_complaints"
        " FROM ({breaches}) c CROSS JOIN n"
        " WHERE c.account_id IN (SELECT account_id FROM a) GROUP BY c.account_id),"
        " follow_up AS (SELECT f.account_id, count(*) FILTER (WHERE {overdue})"
        " AS overdue_follow_ups FROM follow_ups f CROSS JOIN n"
        " WHERE f.account_id IN (SELECT account_id FROM a) GROUP BY f.account_id),"
        " gift AS (SELECT account_id,"
        " array_agg(cost_currency ORDER BY cost_currency) AS gift_cost_currencies,"
        " array_agg(cost ORDER BY cost_currency) AS gift_cost_amounts FROM ("
        " SELECT i.account_id, i.cost_currency, sum(i.cost_amount) AS cost"
        " FROM interaction_timeline i WHERE i.account_id IN (SELECT account_id FROM a)"
        " AND i.cost_amount IS NOT NULL GROUP BY i.account_id, i.cost_currency)"
        " per_currency GROUP BY account_id),"
        " deal AS (SELECT DISTINCT ON (account_id) account_id,"
        " currency AS deal_change_currency, change AS deal_change FROM ("
        " SELECT d.account_id, d.currency, (coalesce(sum(d.amount) FILTER"
        " (WHERE d.closed_at > n.as_of - %(deal_span)s::interval), 0)"
        " - sum(d.amount) FILTER (WHERE d.closed_at <= n.as_of - %(deal_span)s::interval))"
        " / sum(d.amount) FILTER (WHERE d.closed_at <= n.as_of - %(deal_span)s::interval)"
        " AS change FROM deals d CROSS JOIN n"
        " WHERE d.account_id IN (SELECT account_id FROM a)"
        " AND d.closed_at > n.as_of - 2 * %(deal_span)s::interval"
        " AND d.closed_at <= n.as_of GROUP BY d.account_id, d.currency) per_currency"
        " WHERE change IS NOT NULL ORDER BY account_id, change, currency)"
        " SELECT a.*, n.as_of, a.last_interaction_at AS last_contact_at,"
        " c.expected_interval,"
        " extract(epoch FROM greatest(n.as_of - coalesce(a.last_interaction_at,"
        " a.opened_at), '0'::interval)) / extract(epoch FROM c.expected_interval)"
        " AS quiet_ratio,"
        " coalesce(k.contacts_last_week, 0) AS contacts_last_week,"
        " coalesce(k.effort_minutes, 0) AS effort_minutes,"
        " coalesce(s.survey_count, 0) AS survey_count, s.csat,"
        " s.csat - s.previous_csat AS csat_change,"
        " coalesce(x.breached_complaints, 0) AS breached_complaints,"
        " d.deal_change, d.deal_change_currency,"
        " a.pending_confirmations AS unconfirmed_oral,"
        " coalesce(o.overdue_follow_ups, 0) AS overdue_follow_ups,"
        " g.gift_cost_currencies, g.gift_cost_amounts"
        " FROM a CROSS JOIN n JOIN cadence c ON c.tier = a.tier"
        " LEFT JOIN contact k ON k.account_id = a.account_id"
        " LEFT JOIN satisfaction s ON s.account_id = a.account_id"
        " LEFT JOIN complaint x ON x.account_id = a.account_id"
        " LEFT JOIN deal d ON d.account_id = a.account_id"
        " LEFT JOIN follow_up o ON o.account_id = a.account_id"
        " LEFT JOIN gift g ON g.account_id = a.account_id"
    ).format(
        scope=scope,
        overdue=_OVERDUE,
        scores=_scores(),
        both=_IN_BOTH_WINDOWS,
        breaches=SQL(bound.replace("%", "%%")),  # bound by psycopg: escape its percents
    )
    query = SQL(
        "SELECT * FROM (SELECT *, {} AS health_score FROM ({}) signals) scored"
    ).format(score, inner)
    params = (
        _satisfaction_params(settings.satisfaction_span, as_of)
        | score_params
        | {
            "tiers": [str(tier) for tier in Tier],
            "intervals": [settings.cadence.of(tier) for tier in Tier],
            "week": health.CONTACT_WEEK,
            "breach_memory": BREACH_MEMORY,
            "deal_span": DEAL_TREND_SPAN,
        }
    )
    return query, params


async def account_signals(
    conn: Conn,
    account_ids: Sequence[UUID],
    settings: SignalSettings,
    as_of: datetime | None = None,
) -> dict[UUID, Row]:
    """The signals and health score of each account, as of ``as_of`` (by default
    now), in one query."""
    query, params = _signals(conn, SQL("account_id = ANY(%(ids)s)"), settings, as_of)
    cur = await conn.execute(query, params | {"ids": list(account_ids)})
    return {row["account_id"]: row for row in await cur.fetchall()}


async def at_risk_accounts(
    conn: Conn,
    settings: SignalSettings,
    limit: int,
    after: tuple[Decimal, UUID] | None,
    as_of: datetime | None = None,
    managers: Sequence[str] | None = None,
) -> list[Row]:
    """Accounts (or those managed by one of ``managers``) with their signals,
    lowest health score first, then by id: ``limit`` rows after the keyset
    ``after``, as of ``as_of`` (by default now; a later page should pass the
    first page's, since scores move with time).

    The score is worked out for every account in scope on each page: no index
    can order by a score that changes with the clock.
    """
    scope = SQL("(%(managers)s::text[] IS NULL OR manager = ANY(%(managers)s))")
    query, params = _signals(conn, scope, settings, as_of)
    params["managers"] = None if managers is None else list(managers)
    if after is not None:
        query += SQL(" WHERE (health_score, account_id) > (%(score)s::numeric, %(id)s)")
        params |= {"score": after[0], "id": after[1]}
    query += SQL(" ORDER BY health_score, account_id LIMIT %(limit)s")
    cur = await conn.execute(query, params | {"limit": limit})
    return await cur.fetchall()


# -- occasions: birthdays, founding days, first deals' anniversaries ---------------------
#
# Worked out when read, from the contacts' birthdays and the founding date in
# account_view and the first deal in deals: an occasion recurs on the same day
# and month each year (29 February on 28 February in other years), from the
# year after it began. A removed or erased contact has no birthday occasion (its
# card is gone, or has no birthday left), nor has an erased account a founding
# day. Dates are UTC dates; a first deal's anniversary is the UTC date it closed.

MAX_OCCASION_DAYS = 366


async def upcoming_occasions(
    conn: Conn,
    days: int,
    limit: int,
    as_of: datetime | None = None,
    manager: str | None = None,
    managers: Sequence[str] | None = None,
) -> list[Row]:
    """Occasions from the day of ``as_of`` (by default today) to ``days`` days
    after it, both included, soonest first (then account, kind and contact),
    for the accounts managed by ``manager`` and by one of ``managers`` (None:
    any); at most ``limit`` rows. Each row is the account's row, with the
    occasion's ``occasion_kind``, ``occasion_contact`` (the contact's card, or
    null) and ``occasion_contact_id``, ``occasion_since`` (the date it began),
    ``occasion_year``, ``occasion_date`` and ``greeted`` (a greeting marked it
    for that year)."""
    cur = await conn.execute(
        "WITH n AS (SELECT (coalesce(%(as_of)s::timestamptz, now())"
        " AT TIME ZONE 'UTC')::date AS today),"
        " a AS (SELECT * FROM account_view"
        " WHERE (%(managers)s::text[] IS NULL OR manager = ANY(%(managers)s))"
        " AND (%(manager)s::text IS NULL OR manager = %(manager)s)),"
        " origin AS ("
        " SELECT a.account_id, 'birthday' AS kind, c.card AS contact,"
        " (c.card ->> 'contact_id')::uuid AS contact_id,"
        " (c.card ->> 'birthday')::date AS since"
        " FROM a CROSS JOIN LATERAL jsonb_each(a.contacts) AS c (id, card)"
        " WHERE c.card ? 'birthday' AND NOT coalesce((c.card ->> 'erased')::boolean, false)"
        " UNION ALL SELECT account_id, 'founding_day', NULL, NULL, founded_on FROM a"
        " WHERE founded_on IS NOT NULL"
        " UNION ALL SELECT account_id, 'first_deal_anniversary', NULL, NULL,"
        " (min(closed_at) AT TIME ZONE 'UTC')::date FROM deals"
        " WHERE account_id IN (SELECT account_id FROM a) GROUP BY account_id),"
        " occurrence AS (SELECT o.*, y.year, least("
        " make_date(y.year, extract(month FROM o.since)::int, 1)"
        " + extract(day FROM o.since)::int - 1,"
        " (make_date(y.year, extract(month FROM o.since)::int, 1)"
        " + interval '1 month')::date - 1) AS date"
        " FROM origin o CROSS JOIN n CROSS JOIN LATERAL generate_series("
        " extract(year FROM n.today)::int, extract(year FROM n.today)::int + 2) AS y (year)"
        " WHERE y.year > extract(year FROM o.since))"
        " SELECT a.*, o.kind AS occasion_kind, o.contact AS occasion_contact,"
        " o.contact_id AS occasion_contact_id, o.since AS occasion_since,"
        " o.year AS occasion_year, o.date AS occasion_date,"
        " EXISTS (SELECT FROM interaction_timeline i"
        " WHERE i.account_id = o.account_id AND i.occasion_kind = o.kind"
        " AND i.occasion_year = o.year"
        " AND i.occasion_contact_id IS NOT DISTINCT FROM o.contact_id) AS greeted"
        " FROM occurrence o CROSS JOIN n JOIN a USING (account_id)"
        " WHERE o.date BETWEEN n.today AND n.today + %(days)s::int"
        " ORDER BY o.date, o.account_id, o.kind, o.contact_id NULLS FIRST"
        " LIMIT %(limit)s",
        {
            "as_of": as_of,
            "days": days,
            "limit": limit,
            "manager": manager,
            "managers": None if managers is None else list(managers),
        },
    )
    return await cur.fetchall()
