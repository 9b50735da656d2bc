"""Who is asking: API keys for services, bearer JWTs for people, and their roles.

An API key looks like ``rk_<id>_<secret>``. Only a SHA-256 of the secret is
stored (the secret is 256 random bits, so a fast hash loses nothing), and the
key is shown once, when it is created. A JWT is checked against an HS256
secret or a JWKS URL; its ``sub`` is the actor, its ``role`` claim the role,
and a manager's ``team`` claim lists the agents whose accounts they oversee.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import jwt
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import AsyncConnectionPool

KEY_PREFIX = "rk"
KEY_CACHE_SECONDS = 5.0
MAX_ACTOR_LENGTH = 200


class Role(StrEnum):
    AGENT = "agent"
    """Reads and changes the accounts they manage."""
    MANAGER = "manager"
    """Their own and their team's accounts; reassigns accounts."""
    AUDITOR = "auditor"
    """Reads everything, history and time travel included; changes nothing."""
    SERVICE = "service"
    """Subscribes to events, registers webhooks, reads views without personal data."""
    ADMIN = "admin"
    """Everything."""


class Unauthenticated(Exception):
    """No credentials, or credentials that do not hold; the message says which."""


@dataclass(frozen=True)
class Principal:
    actor: str
    """Stamped on every event this principal causes."""
    role: Role
    team: frozenset[str] = frozenset()
    """For a manager: the agents whose accounts they may act on."""
    credential: str = ""
    """Which key or token subject: what rate limits count by."""

    @property
    def reads_everything(self) -> bool:
        return self.role in {Role.ADMIN, Role.AUDITOR, Role.SERVICE}

    @property
    def sees_personal_data(self) -> bool:
        return self.role is not Role.SERVICE

    def managers(self) -> frozenset[str] | None:
        """Whose accounts this principal may act on; None: everyone's."""
        if self.role is Role.AGENT:
            return frozenset({self.actor})
        if self.role is Role.MANAGER:
            return self.team | {self.actor}
        return None

    def may_act_on(self, manager: str | None) -> bool:
        """May this principal read and change an account managed by ``manager``?"""
        allowed = self.managers()
        return allowed is None or (manager is not None and manager in allowed)


def _valid_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor or len(actor) > MAX_ACTOR_LENGTH:
        msg = f"an actor is 1 to {MAX_ACTOR_LENGTH} characters"
        raise ValueError(msg)
    return actor


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class IssuedKey:
    id: UUID
    key: str
    """Shown once; only its hash is kept."""


@dataclass
class _Cached:
    principal: Principal | None
    until: float


class ApiKeys:
    """The ``rapport_api_keys`` table: create, revoke, list, and authenticate."""

    def __init__(self, schema: str) -> None:
        self.table = SQL("{}.rapport_api_keys").format(Identifier(schema))
        self._cache: dict[str, _Cached] = {}

    def create_statements(self) -> list[Composed]:
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (id uuid PRIMARY KEY, name text NOT NULL,"
                " role text NOT NULL, actor text NOT NULL,"
                " team text[] NOT NULL DEFAULT '{{}}', key_hash bytea NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " revoked_at timestamptz)"
            ).format(self.table)
        ]

    def grant_statements(self, role: Identifier) -> list[Composed]:
        """The API only looks keys up; the owner creates and revokes them."""
        return [SQL("GRANT SELECT ON {} TO {}").format(self.table, role)]

    def create(
        self,
        cursor: Any,
        *,
        name: str,
        role: Role,
        actor: str,
        team: Iterable[str] = (),
    ) -> IssuedKey:
        key_id = uuid4()
        secret = secrets.token_urlsafe(32)
        cursor.execute(
            SQL(
                "INSERT INTO {} (id, name, role, actor, team, key_hash)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
            ).format(self.table),
            (
                key_id,
                name,
                str(role),
                _valid_actor(actor),
                sorted(set(team)),
                _digest(secret),
            ),
        )
        return IssuedKey(key_id, f"{KEY_PREFIX}_{key_id.hex}_{secret}")

    def revoke(self, cursor: Any, key_id: UUID) -> bool:
        cursor.execute(
            SQL(
                "UPDATE {} SET revoked_at = clock_timestamp()"
                " WHERE id = %s AND revoked_at IS NULL RETURNING id"
            ).format(self.table),
            (key_id,),
        )
        return cursor.fetchone() is not None

    def listing(self, cursor: Any) -> Sequence[dict[str, Any]]:
        cursor.execute(
            SQL(
                "SELECT id, name, role, actor, team, created_at, revoked_at FROM {}"
                " ORDER BY created_at"
            ).format(self.table)
        )
        rows: Sequence[dict[str, Any]] = cursor.fetchall()
        return rows

    async def authenticate(
        self, pool: AsyncConnectionPool[AsyncConnection[DictRow]], key: str
    ) -> Principal:
        """The key's principal; a revoked key stops working within seconds."""
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or cached.until < now:
            cached = _Cached(await self._look_up(pool, key), now + KEY_CACHE_SECONDS)
            if len(self._cache) > 10_000:  # noqa: PLR2004 - a bound, not a tuning knob
                self._cache.clear()
            self._cache[key] = cached
        if cached.principal is None:
            raise Unauthenticated("unknown or revoked API key")
        return cached.principal

    async def _look_up(
        self, pool: AsyncConnectionPool[AsyncConnection[DictRow]], key: str
    ) -> Principal | None:
        parsed = _parse(key)
        if parsed is None:
            return None
        async with pool.connection() as conn:
            cur = await conn.execute(self._select, (parsed[0],))
            return _principal(await cur.fetchone(), *parsed)

    def look_up(self, cursor: Any, key: str) -> Principal | None:
        """As ``authenticate``, on a synchronous cursor and without the cache."""
        parsed = _parse(key)
        if parsed is None:
            return None
        cursor.execute(self._select, (parsed[0],))
        return _principal(cursor.fetchone(), *parsed)

    @property
    def _select(self) -> Composed:
        return SQL(
            "SELECT role, actor, team, key_hash FROM {}"
            " WHERE id = %s AND revoked_at IS NULL"
        ).format(self.table)


def _parse(key: str) -> tuple[UUID, str] | None:
    prefix, _, rest = key.partition("_")
    id_text, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not secret:
        return None
    try:
        return UUID(hex=id_text), secret
    except ValueError:
        return None


def _principal(row: dict[str, Any] | None, key_id: UUID, secret: str) -> Principal | None:
    if row is None or not hmac.compare_digest(bytes(row["key_hash"]), _digest(secret)):
        return None
    return Principal(
        actor=row["actor"],
        role=Role(row["role"]),
        team=frozenset(row["team"]),
        credential=f"key:{key_id}",
    )


@dataclass(frozen=True)
class JwtSettings:
    secret: str | None = None
    """HS256 shared secret."""
    jwks_url: str | None = None
    """Or a JWKS URL (RS256, ES256, EdDSA)."""
    audience: str | None = None
    issuer: str | None = None
    leeway_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.secret or self.jwks_url)


@dataclass
class JwtVerifier:
    settings: JwtSettings
    _jwks: jwt.PyJWKClient | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.settings.jwks_url:
            self._jwks = jwt.PyJWKClient(self.settings.jwks_url, cache_keys=True)

    async def authenticate(self, token: str) -> Principal:
        if not self.settings.enabled:
            raise Unauthenticated("bearer tokens are not accepted here; use an API key")
        if self._jwks is not None:
            # Fetching the key set is blocking I/O (cached after the first).
            try:
                find = self._jwks.get_signing_key_from_jwt
                signing = await asyncio.to_thread(find, token)
            except jwt.PyJWTError as error:  # not a token, no such key, no key set
                raise Unauthenticated(f"invalid token: {error}") from None
            key: Any = signing.key
            algorithms = ["RS256", "ES256", "EdDSA"]
        else:
            key = self.settings.secret
            algorithms = ["HS256"]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"invalid token: {error}") from None
        try:
            role = Role(claims.get("role", ""))
            actor = _valid_actor(str(claims["sub"]))
        except ValueError:
            msg = f"the token needs a role claim, one of {', '.join(Role)}"
            raise Unauthenticated(msg) from None
        team = claims.get("team") or []
        if not isinstance(team, list) or not all(isinstance(t, str) for t in team):
            raise Unauthenticated("the team claim must be a list of actors")
        return Principal(actor, role, frozenset(team), credential=f"jwt:{actor}")


def key_row_text(row: dict[str, Any]) -> str:
    """One line of ``rapport keys list``."""
    revoked: datetime | None = row["revoked_at"]
    state = f"revoked {revoked:%Y-%m-%d %H:%M}" if revoked else "active"
    team = f" team={','.join(row['team'])}" if row["team"] else ""
    return (
        f"{row['id']}  {row['role']:<8} {row['actor']:<20} {row['name']:<20}"
        f" {row['created_at']:%Y-%m-%d %H:%M}  {state}{team}"
    )
