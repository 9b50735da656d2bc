"""Settings, read from the environment (``RAPPORT_*``, plus ``DATABASE_URL``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from domain.complaints import DEFAULT_COMPLAINT_TARGETS, ComplaintTargets


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    run_projections: bool = True
    """Run the projection runner inside the API process (``make run``)."""
    read_wait_seconds: float = 5.0
    """How long a mutation waits for the views to show its own write."""
    max_page_size: int = 100
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

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            host=os.environ.get("RAPPORT_HOST", cls.host),
            port=int(os.environ.get("RAPPORT_PORT", cls.port)),
            run_projections=_flag("RAPPORT_RUN_PROJECTIONS", cls.run_projections),
            read_wait_seconds=float(
                os.environ.get("RAPPORT_READ_WAIT_SECONDS", cls.read_wait_seconds)
            ),
            max_page_size=int(os.environ.get("RAPPORT_MAX_PAGE_SIZE", cls.max_page_size)),
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
        )


MAX_WINDOW_DAYS = 3660  # ten years


def _positive_days(name: str, default: int) -> int:
    days = int(os.environ.get(name) or default)
    if not 1 <= days <= MAX_WINDOW_DAYS:
        msg = f"{name} must be a whole number of days from 1 to {MAX_WINDOW_DAYS}"
        raise ValueError(msg)
    return days
