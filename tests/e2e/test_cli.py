"""The ``rapport`` command as an operator uses it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from uuid import UUID

import psycopg

from api.runtime import open_store
from domain.application import CommandMeta
from domain.values import AccountKind

PYTHON = [sys.executable, "-m", "api.cli"]


def _run(args, env, timeout=120):
    return subprocess.run(  # noqa: S603 - our own command
        [*PYTHON, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_without_database_url_an_embedded_server_starts_and_keeps_its_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["RAPPORT_DATA_DIR"] = str(tmp_path / "pgdata")
    first = _run(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert "DATABASE_URL is not set: using an embedded PostgreSQL" in first.stderr
    write = (
        "from api.runtime import open_store; from eventstore.database import "
        "resolve_database_url; from domain.application import CommandMeta; "
        "from domain.values import AccountKind; from uuid import UUID; "
        "app, _ = open_store(resolve_database_url()); "
        "app.open_account(CommandMeta('alice'), account_id=UUID(int=7), name='Kept', "
        "kind=AccountKind.GROUP)"
    )
    read = (
        "from api.runtime import open_store; from eventstore.database import "
        "resolve_database_url; from uuid import UUID; "
        "app, _ = open_store(resolve_database_url()); "
        "print(app.get_account(UUID(int=7)).name)"
    )
    for code in (write, read):
        done = subprocess.run(  # noqa: S603 - our own code
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Kept"


def test_rebuild_reports_progress_and_refuses_unknown_views(database_url, app):
    env = os.environ | {"DATABASE_URL": database_url}
    done = _run(["rebuild", "account_view", "stage_history"], env)
    assert done.returncode == 0, done.stderr
    assert "account_view" in done.stderr
    assert "stage_history" in done.stderr
    refused = _run(["rebuild", "accounts_view"], env)
    assert refused.returncode == 2
    assert "unknown view(s): accounts_view" in refused.stderr


def test_the_standalone_projection_runner_follows_new_events_and_stops_on_sigterm(
    empty_database_url,
):
    url = empty_database_url
    app, _ = open_store(url)
    runner = subprocess.Popen(  # noqa: S603 - our own command
        [*PYTHON, "project"],
        env=os.environ | {"DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        opened = app.open_account(
            CommandMeta("alice"), name="Followed", kind=AccountKind.GROUP
        )
        deadline = time.monotonic() + 60
        with psycopg.connect(url, autocommit=True) as conn:
            while (
                conn.execute(
                    "SELECT 1 FROM account_view WHERE account_id = %s", (opened.account_id,)
                ).fetchone()
                is None
            ):
                assert runner.poll() is None, runner.stdout.read() if runner.stdout else ""
                assert time.monotonic() < deadline, "the runner did not project the event"
                time.sleep(0.05)
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
        app.close()


def test_verify_exits_zero_on_an_intact_chain_and_one_on_a_broken_one(empty_database_url):
    app, _ = open_store(empty_database_url)
    opened = app.open_account(CommandMeta("alice"), name="Sealed", kind=AccountKind.GROUP)
    app.close()
    env = os.environ | {"DATABASE_URL": empty_database_url}
    intact = _run(["verify"], env)
    assert intact.returncode == 0, intact.stderr
    assert "hash chain intact: 1 events; head 1:" in intact.stdout
    head = intact.stdout.split("head ")[1].strip()
    still = _run(["verify", "--expect", head], env)
    assert still.returncode == 0, still.stderr
    with psycopg.connect(empty_database_url) as owner:
        owner.execute("ALTER TABLE rapport_events DISABLE TRIGGER USER")
        owner.execute("UPDATE rapport_events SET actor = 'mallory'")
        owner.execute("ALTER TABLE rapport_events ENABLE TRIGGER USER")
    broken = _run(["verify"], env)
    assert broken.returncode == 1
    assert f"BROKEN at position 1 (account {opened.account_id}, version 1)" in broken.stderr
    malformed = _run(["verify", "--expect", "1:abc"], env)
    assert malformed.returncode == 2
    assert "expected POSITION:HASH" in malformed.stderr


def test_export_to_a_file_and_import_it_into_an_empty_database(
    database_url, empty_database_url, app, tmp_path
):
    opened = app.open_account(CommandMeta("alice"), name="Moved", kind=AccountKind.GROUP)
    target = tmp_path / "account.ndjson"
    exported = _run(
        ["export", "--account", str(opened.account_id), "--output", str(target)],
        os.environ | {"DATABASE_URL": database_url},
    )
    assert exported.returncode == 0, exported.stderr
    assert len(target.read_text().splitlines()) == 4  # header, event, key, end
    into = os.environ | {"DATABASE_URL": empty_database_url}
    imported = _run(["import", str(target)], into)
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 events" in imported.stdout
    again = _run(["import", str(target)], into)
    assert again.returncode == 1
    assert "import refused, nothing written: the events table is not empty" in again.stderr


def test_keys_are_created_listed_and_revoked(database_url):
    env = os.environ | {"DATABASE_URL": database_url}
    made = _run(["keys", "create", "--role", "service", "--actor", "billing.cli"], env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("rk_")
    key_id = made.stderr.split("created key ")[1].split(";")[0]
    listed = _run(["keys", "list"], env).stdout
    (line,) = [row for row in listed.splitlines() if row.startswith(key_id)]
    assert line.split()[1:3] == ["service", "billing.cli"]
    assert line.endswith("active")
    assert key.split("_", 2)[2] not in listed  # the secret is never shown again
    assert _run(["keys", "revoke", key_id], env).returncode == 0
    (line,) = [
        row for row in _run(["keys", "list"], env).stdout.splitlines() if key_id in row
    ]
    assert "revoked" in line
    again = _run(["keys", "revoke", key_id], env)
    assert again.returncode == 1
    assert "no active key" in again.stderr
    refused = _run(["keys", "create", "--role", "root", "--actor", "x"], env)
    assert refused.returncode == 2


def test_the_development_key_is_made_once_and_again_after_a_revocation(app, tmp_path):
    from api.runtime import api_keys_of, development_key  # noqa: PLC0415
    from eventstore.recorder import recorder_of  # noqa: PLC0415

    path = tmp_path / "dev-key"
    key = development_key(app, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert development_key(app, path) == key
    with recorder_of(app).datastore.transaction(commit=True) as cur:
        principal = api_keys_of(app).look_up(cur, key)
        assert principal is not None
        assert (principal.role, principal.actor) == ("admin", "developer")
        assert api_keys_of(app).revoke(cur, UUID(hex=key.split("_")[1]))
    renewed = development_key(app, path)
    assert renewed != key
    assert path.read_text().strip() == renewed
