"""Settings, read from the environment (``RAPPORT_*``, plus ``DATABASE_URL``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from domain.complaints import DEFAULT_COMPLAINT_TARGETS, ComplaintTargets
from projections.health import (
    DEFAULT_CONTACT_CADENCE,
    DEFAULT_HOURLY_RATE,
    DEFAULT_OVER_CONTACT_LIMIT,
    ContactCadence,
    HourlyRate,
)


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    """API processes ``rapport serve`` starts; each runs what its settings say."""
    run_projections: bool = True
    """Run the projection runner inside the API process (``make run``)."""
    read_wait_seconds: float = 5.0
    """How long a mutation waits for the views to show its own write."""
    max_page_size: int = 100
    kept_answers: int = 1000
    """Answers each API process keeps until the views move (``api.answers``); 0: none."""
    command_threads: int = 8
    migrate_on_start: bool = True
    """Create or update tables on start; off when running as the app role."""
    run_webhooks: bool = True
    """Deliver webhooks from the API process (any number of processes may)."""
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 1.0
    """The first retry's delay; each further failure doubles it."""
    webhook_retry_max_seconds: float = 600.0
    complaint_targets: ComplaintTargets = DEFAULT_COMPLAINT_TARGETS
    """Times to acknowledge and to resolve a complaint, per severity."""
    subscriber_stall_seconds: float = 30.0
    """How long one message to a subscriber may wait to be sent before it is cut off."""
    jwt_secret: str | None = None
    """Accept bearer JWTs signed with this HS256 secret."""
    jwks_url: str | None = None
    """Or accept JWTs signed by a key of this JWKS (RS256, ES256, EdDSA)."""
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    satisfaction_window_days: int = 90
    """CSAT and NPS count the surveys answered in this many days up to now."""
    max_query_depth: int = 10
    """How deeply fields may nest in one operation."""
    max_query_tokens: int = 2000
    """How many tokens (names, punctuation, values) one document may have."""
    max_query_aliases: int = 20
    """How many aliased fields one document may have."""
    introspection: bool = True
    """Answer introspection queries (``__schema``, ``__type``)."""
    graphiql: bool = True
    """Serve GraphiQL's page at /graphql to a browser."""
    max_body_bytes: int = 1_048_576
    """The largest request body accepted (413 above it)."""
    statement_timeout_seconds: float = 30.0
    """The longest one SQL statement of the API's connection pool may run; 0: no limit."""
    rate_limit_per_second: float = 100.0
    """Requests each credential (or client address) may make per second; 0: no limit."""
    rate_limit_burst: int = 200
    """Requests a credential may make at once before the rate applies."""
    trusted_documents: str = "any"
    """``any``: every query, persisted ones by hash too; ``only``: registered ones only."""
    trusted_documents_file: str | None = None
    """A JSON object of SHA-256 hash to document text: the registered documents."""
    contact_cadence: ContactCadence = DEFAULT_CONTACT_CADENCE
    """The longest each tier should go without contact."""
    over_contact_limit: int = DEFAULT_OVER_CONTACT_LIMIT
    """More outbound contacts than this in a rolling week is over-contact."""
    hourly_rate: HourlyRate = DEFAULT_HOURLY_RATE
    """What an hour of effort costs: prices the cost of serving an account."""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            host=os.environ.get("RAPPORT_HOST", cls.host),
            port=int(os.environ.get("RAPPORT_PORT", cls.port)),
            workers=_at_least_one("RAPPORT_WORKERS", cls.workers),
            run_projections=_flag("RAPPORT_RUN_PROJECTIONS", cls.run_projections),
            read_wait_seconds=float(
                os.environ.get("RAPPORT_READ_WAIT_SECONDS", cls.read_wait_seconds)
            ),
            max_page_size=int(os.environ.get("RAPPORT_MAX_PAGE_SIZE", cls.max_page_size)),
            kept_answers=_at_least_zero("RAPPORT_KEPT_ANSWERS", cls.kept_answers),
            command_threads=int(
                os.environ.get("RAPPORT_COMMAND_THREADS", cls.command_threads)
            ),
            migrate_on_start=_flag("RAPPORT_MIGRATE_ON_START", cls.migrate_on_start),
            run_webhooks=_flag("RAPPORT_RUN_WEBHOOKS", cls.run_webhooks),
            webhook_timeout_seconds=float(
                os.environ.get(
                    "RAPPORT_WEBHOOK_TIMEOUT_SECONDS", cls.webhook_timeout_seconds
                )
            ),
            webhook_retry_base_seconds=float(
                os.environ.get(
                    "RAPPORT_WEBHOOK_RETRY_BASE_SECONDS", cls.webhook_retry_base_seconds
                )
            ),
            webhook_retry_max_seconds=float(
                os.environ.get(
                    "RAPPORT_WEBHOOK_RETRY_MAX_SECONDS", cls.webhook_retry_max_seconds
                )
            ),
            complaint_targets=ComplaintTargets.parse(
                os.environ.get("RAPPORT_COMPLAINT_TARGETS", "")
            ),
            subscriber_stall_seconds=float(
                os.environ.get(
                    "RAPPORT_SUBSCRIBER_STALL_SECONDS", cls.subscriber_stall_seconds
                )
            ),
            jwt_secret=os.environ.get("RAPPORT_JWT_SECRET") or None,
            jwks_url=os.environ.get("RAPPORT_JWKS_URL") or None,
            jwt_audience=os.environ.get("RAPPORT_JWT_AUDIENCE") or None,
            jwt_issuer=os.environ.get("RAPPORT_JWT_ISSUER") or None,
            satisfaction_window_days=_positive_days(
                "RAPPORT_SATISFACTION_WINDOW_DAYS", cls.satisfaction_window_days
            ),
            max_query_depth=_at_least_one("RAPPORT_MAX_QUERY_DEPTH", cls.max_query_depth),
            max_query_tokens=_at_least_one(
                "RAPPORT_MAX_QUERY_TOKENS", cls.max_query_tokens
            ),
            max_query_aliases=int(
                os.environ.get("RAPPORT_MAX_QUERY_ALIASES") or cls.max_query_aliases
            ),
            introspection=_flag("RAPPORT_INTROSPECTION", cls.introspection),
            graphiql=_flag("RAPPORT_GRAPHIQL", cls.graphiql),
            max_body_bytes=_at_least_one("RAPPORT_MAX_BODY_BYTES", cls.max_body_bytes),
            statement_timeout_seconds=float(
                os.environ.get("RAPPORT_STATEMENT_TIMEOUT_SECONDS")
                or cls.statement_timeout_seconds
            ),
            rate_limit_per_second=float(
                os.environ.get("RAPPORT_RATE_LIMIT_PER_SECOND") or cls.rate_limit_per_second
            ),
            rate_limit_burst=_at_least_one(
                "RAPPORT_RATE_LIMIT_BURST", cls.rate_limit_burst
            ),
            trusted_documents=_one_of(
                "RAPPORT_TRUSTED_DOCUMENTS", cls.trusted_documents, ("any", "only")
            ),
            trusted_documents_file=os.environ.get("RAPPORT_TRUSTED_DOCUMENTS_FILE") or None,
            contact_cadence=ContactCadence.parse(
                os.environ.get("RAPPORT_CONTACT_CADENCE", "")
            ),
            over_contact_limit=_at_least_one(
                "RAPPORT_OVER_CONTACT_LIMIT", cls.over_contact_limit
            ),
            hourly_rate=HourlyRate.parse(os.environ["RAPPORT_HOURLY_RATE"])
            if os.environ.get("RAPPORT_HOURLY_RATE", "").strip()
            else cls.hourly_rate,
        )


MAX_WINDOW_DAYS = 3660  # ten years


def _positive_days(name: str, default: int) -> int:
    days = int(os.environ.get(name) or default)
    if not 1 <= days <= MAX_WINDOW_DAYS:
        msg = f"{name} must be a whole number of days from 1 to {MAX_WINDOW_DAYS}"
        raise ValueError(msg)
    return days


def _at_least_zero(name: str, default: int) -> int:
    return _at_least(name, default, 0)


def _at_least_one(name: str, default: int) -> int:
    return _at_least(name, default, 1)


def _at_least(name: str, default: int, least: int) -> int:
    value = int(os.environ.get(name) or default)
    if value < least:
        msg = f"{name} must be a whole number of at least {least}"
        raise ValueError(msg)
    return value


def _one_of(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in allowed:
        msg = f"{name} must be one of {', '.join(allowed)}"
        raise ValueError(msg)
    return value
