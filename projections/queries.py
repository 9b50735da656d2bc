"""Reads of the views, for the API: keyset pagination, batched by account id.

Every function takes an async connection and returns plain rows; the SQL sits
here, beside the DDL in the view modules, so a view's shape is changed in one
package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Composed, Identifier

from domain.complaints import ComplaintTargets
from domain.values import ComplaintSeverity

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
    for column in ("tier", "stage", "manager"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(SQL("{} = %s").format(Identifier(column)))
            params.append(value)
    if where.managers is not None:
        clauses.append(SQL("manager = ANY(%s)"))
        params.append(list(where.managers))
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
    grouped: dict[UUID, list[Row]] = {account_id: [] for account_id in ids}
    for row in await cur.fetchall():
        grouped[row["account_id"]].append(row)
    return grouped


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
    grouped: dict[UUID, list[Row]] = {account_id: [] for account_id in account_ids}
    for row in await cur.fetchall():
        grouped[row["account_id"]].append(row)
    return grouped


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
    for column in ("status", "severity", "account_id", "manager"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(SQL("{} = %s").format(Identifier(column)))
            params.append(value)
    if where.managers is not None:
        clauses.append(SQL("manager = ANY(%s)"))
        params.append(list(where.managers))
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
    grouped: dict[UUID, list[Row]] = {account_id: [] for account_id in account_ids}
    for row in await cur.fetchall():
        grouped[row["account_id"]].append(row)
    return grouped


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
