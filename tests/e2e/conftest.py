"""A real ``rapport serve`` process on a free port, against the run's database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import Role
from api.runtime import api_keys_of
from eventstore.recorder import recorder_of


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Api:
    """The server, and an API key per (actor, role, team), made on first use."""

    def __init__(self, base_url: str, app: Any, pid: int = 0) -> None:
        self.base_url = base_url
        self.pid = pid
        """The ``rapport serve`` process."""
        self.returncode: int | None = None
        """Its exit status, once stopped."""
        self.client = httpx.Client(base_url=base_url, timeout=30)
        self.app = app
        self._keys: dict[tuple[str, str, tuple[str, ...]], str] = {}

    def key(
        self, actor: str = "tester", role: str = Role.ADMIN, team: tuple[str, ...] = ()
    ) -> str:
        wanted = (actor, str(role), team)
        if wanted not in self._keys:
            with recorder_of(self.app).datastore.transaction(commit=True) as cur:
                issued = api_keys_of(self.app).create(
                    cur, name="test", role=Role(role), actor=actor, team=team
                )
            self._keys[wanted] = issued.key
        return self._keys[wanted]

    def headers(self, actor: str = "tester", role: str = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(actor, role)}"}

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        # json.dumps escapes to ASCII, so tests can send any string a client can.
        return self.client.post(
            "/graphql",
            content=json.dumps({"query": query, "variables": variables or {}}),
            headers={"Content-Type": "application/json"} | (headers or {}),
        )

    def graphql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        actor: str = "tester",
        role: str = Role.ADMIN,
        team: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.key(actor, role, team)}"}
        response = self.post(query, variables, headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def connection_init(self, actor: str = "tester", role: str = Role.ADMIN) -> str:
        """The graphql-transport-ws message that opens an authenticated connection."""
        payload = {"Authorization": f"Bearer {self.key(actor, role)}"}
        return json.dumps({"type": "connection_init", "payload": payload})


@contextmanager
def serve(
    database_url: str, app: Any, log: Path, settings: dict[str, str]
) -> Iterator[Api]:
    """``rapport serve`` on a free port with these ``RAPPORT_*`` settings, until
    the block ends; ``log`` gets its output."""
    port = _free_port()
    env = os.environ | {"DATABASE_URL": database_url, "RAPPORT_PORT": str(port)} | settings
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--log-level", "warning"],
        env=env,
        # A file, not a pipe: a pipe nobody reads blocks the server once it is full.
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    api = Api(f"http://127.0.0.1:{port}", app, server.pid)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if api.client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"rapport serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield api
    finally:
        server.terminate()
        api.returncode = server.wait(timeout=30)
        api.client.close()


@pytest.fixture(scope="package")
def api(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, store: tuple[Any, Any]
) -> Iterator[Api]:
    """One server for the end-to-end tests, stopped once they are done: its
    runner and thank-you process would otherwise write beside the tests that
    follow on the same database."""
    log = tmp_path_factory.mktemp("serve") / "rapport-serve.log"
    settings = {
        "RAPPORT_RUN_PROJECTIONS": "true",
        # Webhook retries and timeouts short enough to watch in a test.
        "RAPPORT_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "RAPPORT_WEBHOOK_RETRY_MAX_SECONDS": "1",
        "RAPPORT_WEBHOOK_TIMEOUT_SECONDS": "1",
        "RAPPORT_SUBSCRIBER_STALL_SECONDS": "3",
        "RAPPORT_JWT_SECRET": "e2e-jwt-secret-for-tests-only-0123456789",
    }
    with serve(database_url, store[0], log, settings) as api:
        yield api


@pytest.fixture(scope="session")
def start_server(
    database_url: str, store: tuple[Any, Any]
) -> Callable[[Path, dict[str, str]], AbstractContextManager[Api]]:
    """Another server with settings of its own: ``with start_server(log, settings)``."""
    return partial(serve, database_url, store[0])
