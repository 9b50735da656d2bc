"""The API and the runner as a role that can only add to history, never change it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.sql import SQL, Identifier

from api.runtime import grant_least_privilege, open_store
from domain.application import CommandMeta
from domain.values import AccountKind, Tier


@pytest.fixture
def app_role_url(empty_database_url):
    role = f"rapport_app_{secrets.token_hex(4)}"
    with psycopg.connect(empty_database_url, autocommit=True) as owner:
        owner.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(role)))
    app, projections = open_store(empty_database_url, migrate=True)
    grant_least_privilege(app, projections, role)
    app.close()
    yield make_conninfo(empty_database_url, user=role)
    with psycopg.connect(empty_database_url, autocommit=True) as owner:
        owner.execute(SQL("DROP OWNED BY {}").format(Identifier(role)))
        owner.execute(SQL("DROP ROLE {}").format(Identifier(role)))


def test_the_app_role_writes_events_and_builds_every_view(app_role_url):
    app, projections = open_store(app_role_url, migrate=False)
    try:
        opened = app.open_account(
            CommandMeta("alice"), name="Least", kind=AccountKind.GROUP
        )
        app.change_tier(CommandMeta("alice"), opened.account_id, Tier.PARTNER, "plans")
        app.close_deal(
            CommandMeta("alice"),
            opened.account_id,
            amount="10",
            currency="EUR",
            product="vices",
            closed_at=datetime.now(tz=UTC),
        )
        projections.thank_you.catch_up()  # the process schedules and tracks
        # Erasure destroys keys, which the role itself may not touch.
        app.erase_personal_data(CommandMeta("dpo"), opened.account_id, reason="REQ-1")
        projections.catch_up()
        projections.rebuild(projections.views)
        with psycopg.connect(app_role_url) as conn:
            (tier,) = conn.execute(
                "SELECT tier FROM account_view WHERE account_id = %s", (opened.account_id,)
            ).fetchone() or (None,)
            conn.execute("SELECT * FROM stage_durations").fetchall()
        assert tier == "partner"
        assert app.get_account(opened.account_id).follow_ups
        assert app.get_account(opened.account_id).name == "[erased]"
    finally:
        app.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE rapport_events SET actor = 'mallory'",
        "DELETE FROM rapport_events",
        "TRUNCATE rapport_events",
        "ALTER TABLE rapport_events DISABLE TRIGGER USER",
        "DELETE FROM rapport_snapshots",
        "DROP TABLE account_view",
        "UPDATE rapport_subject_keys SET key = NULL",
        "DELETE FROM rapport_subject_keys",
        "INSERT INTO rapport_subject_keys (account_id, subject_id, erased_at)"
        " VALUES (gen_random_uuid(), gen_random_uuid(), now())",
        "INSERT INTO rapport_events (originator_id, originator_version, topic, state,"
        " recorded_at) VALUES (gen_random_uuid(), 1, 't', '', '2000-01-01')",
        "INSERT INTO rapport_events (originator_id, originator_version, topic, state,"
        " notification_id) VALUES (gen_random_uuid(), 1, 't', '', 1)",
    ],
)
def test_the_app_role_cannot_change_history_or_the_schema(app_role_url, statement):
    with (
        psycopg.connect(app_role_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)
