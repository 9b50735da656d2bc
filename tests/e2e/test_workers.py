"""``RAPPORT_WORKERS``: several API processes behind one port, one store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from psycopg.conninfo import make_conninfo

OPEN = """
mutation($name: String!) {
  openAccount(input: {name: $name, kind: ORGANIZATION}) {
    __typename ... on AccountChanged { accountId projected account { name } }
  }
}"""

ACCOUNT = "query($id: UUID!) { account(id: $id) { name version } }"


def _workers(pid: int) -> list[int]:
    """The worker processes ``rapport serve`` started (Linux's /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def test_two_workers_serve_one_store_and_each_sees_every_write(start_server, tmp_path):
    settings = {"RAPPORT_WORKERS": "2", "RAPPORT_RUN_PROJECTIONS": "true"}
    with start_server(tmp_path / "workers.log", settings) as server:
        assert len(_workers(server.pid)) == 2
        opened = []
        for i in range(6):  # connections spread over the workers
            server.client.close()
            server.client = type(server.client)(base_url=server.base_url, timeout=30)
            body = server.graphql(OPEN, {"name": f"Worker {i}"})
            changed = body["data"]["openAccount"]
            assert changed["projected"] is True, body
            assert changed["account"] == {"name": f"Worker {i}"}
            opened.append(changed["accountId"])
        for i, account_id in enumerate(opened):
            body = server.graphql(ACCOUNT, {"id": account_id})
            assert body == {"data": {"account": {"name": f"Worker {i}", "version": 1}}}
    assert server.returncode == 0  # stopped, not failed


def test_workers_that_fail_to_start_make_serve_exit_with_an_error(database_url, tmp_path):
    env = os.environ | {
        "DATABASE_URL": make_conninfo(database_url, dbname="rapport_no_such_database"),
        "RAPPORT_WORKERS": "2",
        "RAPPORT_PORT": "0",
    }
    with (tmp_path / "failing.log").open("wb") as log:
        serve = subprocess.run(
            [sys.executable, "-m", "api.cli", "serve", "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    # uvicorn's STARTUP_FAILURE, as one worker's failure exits.
    assert serve.returncode == 3, (tmp_path / "failing.log").read_text()
