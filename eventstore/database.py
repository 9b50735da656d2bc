"""One setting, DATABASE_URL; without it an embedded PostgreSQL is started."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.sql import SQL, Identifier

log = logging.getLogger("rapport")

DEFAULT_DATA_DIR = Path(".rapport") / "pgdata"

# Servers started by this process; referenced so they live as long as it does.
_embedded: dict[Path, Any] = {}


def start_embedded(data_dir: Path, *, keep: bool = True) -> str:
    """Start (or join) PostgreSQL 16 from the pgserver wheel; return its URL.

    With ``keep`` the data stays in ``data_dir`` across restarts; without it
    the directory is removed when this process ends (test runs).
    """
    import pgserver  # noqa: PLC0415 - only needed when no DATABASE_URL is set

    # pgserver narrates every pg_ctl call at INFO; its warnings are enough.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir = data_dir.resolve()
    if data_dir not in _embedded:
        data_dir.mkdir(parents=True, exist_ok=True)
        _embedded[data_dir] = pgserver.get_server(
            data_dir, cleanup_mode="stop" if keep else "delete"
        )
    url: str = _embedded[data_dir].get_uri()
    return url


def stop_embedded(data_dir: Path) -> None:
    """Stop a server this process started (and delete its data unless kept)."""
    server = _embedded.pop(data_dir.resolve(), None)
    if server is not None:
        server.cleanup()


def resolve_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    data_dir = Path(os.environ.get("RAPPORT_DATA_DIR", str(DEFAULT_DATA_DIR)))
    url = start_embedded(data_dir)
    log.warning(
        "DATABASE_URL is not set: using an embedded PostgreSQL with its data in %s",
        data_dir.resolve(),
    )
    return url


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards (tests, bench)."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(SQL("CREATE DATABASE {}").format(Identifier(name)))
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(SQL("DROP DATABASE {} WITH (FORCE)").format(Identifier(name)))


def eventsourcing_env(url: str, *, create_tables: bool = True) -> dict[str, str]:
    """The eventsourcing settings that point the application at ``url``."""
    info = conninfo_to_dict(url)
    return {
        "CREATE_TABLE": "yes" if create_tables else "no",
        "PERSISTENCE_MODULE": "eventstore.recorder:RapportFactory",
        "APPLICATION_RECORDER_TOPIC": "eventstore.recorder:RapportRecorder",
        "MAPPER_TOPIC": "eventstore.sealing:SealingMapper",
        "TRANSCODER_TOPIC": "eventstore.transcoder:StoreTranscoder",
        "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "localhost"),
        "POSTGRES_PORT": str(info.get("port") or "5432"),
        "POSTGRES_USER": str(info.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(info.get("password") or ""),
        "POSTGRES_POOL_SIZE": os.environ.get("RAPPORT_POOL_SIZE", "5"),
        "POSTGRES_MAX_OVERFLOW": os.environ.get("RAPPORT_POOL_OVERFLOW", "10"),
        "POSTGRES_LOCK_TIMEOUT": "10",
        # Commands start from a cached account, not from a replay
        # (Accounts._change_cached); reads bring it up to date with the events
        # after its version (one query).
        "AGGREGATE_CACHE_MAXSIZE": os.environ.get("RAPPORT_AGGREGATE_CACHE", "1000"),
    }
