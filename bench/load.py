"""GraphQL load from a process of its own: N clients, each one request at a time.

    python -m bench.load URL --clients 16 --seconds 10 --mode query ACCOUNT_ID...

Prints one JSON object: requests, errors, seconds, and every latency in ms.

Each client keeps one HTTP/1.1 connection and speaks the protocol itself, as
load tools such as wrk do: a general client (httpx) cost about 2.8 ms of this
process's CPU a request, on the same cores as the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

ACCOUNT = """
query Account($id: UUID!) {
  account(id: $id) {
    id name tier stage version
    contacts { id name role email }
    interactions(first: 20) { edges { node { id channel occurredAt summary } } }
    stageHistory { value enteredAt leftAt }
  }
}"""

LOG_INTERACTION = """
mutation Log($input: LogInteractionInput!) {
  logInteraction(input: $input) {
    __typename
    ... on InteractionLogged { version }
  }
}"""


def _request(mode: str, account_id: str) -> dict[str, Any]:
    if mode == "query":
        return {"query": ACCOUNT, "variables": {"id": account_id}}
    return {
        "query": LOG_INTERACTION,
        "variables": {
            "input": {
                "accountId": account_id,
                "channel": "EMAIL",
                "direction": "INBOUND",
                "occurredAt": datetime.now(tz=UTC).isoformat(),
                "summary": "Load test",
            }
        },
    }


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs to /graphql, one request at a time."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.head = head

    @classmethod
    async def open(cls, url: str, key: str) -> Connection:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await asyncio.open_connection(host, port)
        head = (
            f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        ).encode()
        return cls(reader, writer, head)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """The answer's status and body (the server must send its length)."""
        self.writer.write(b"%sContent-Length: %d\r\n\r\n%s" % (self.head, len(body), body))
        lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError("the answer has no Content-Length")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _client(
    url: str,
    key: str,
    mode: str,
    accounts: itertools.cycle[str],
    deadline: float,
    *,
    latencies: list[float],
    errors: list[str],
) -> None:
    expected = "account" if mode == "query" else "logInteraction"
    connection = await Connection.open(url, key)
    try:
        while time.monotonic() < deadline:
            body = json.dumps(_request(mode, next(accounts))).encode()
            started = time.perf_counter()
            status, answer = await connection.post(body)
            latencies.append((time.perf_counter() - started) * 1000)
            data = json.loads(answer) if status == 200 else {}  # noqa: PLR2004
            if "errors" in data or not (data.get("data") or {}).get(expected):
                errors.append(answer[:200].decode(errors="replace"))
    finally:
        connection.close()


async def run(
    url: str, clients: int, seconds: float, mode: str, accounts: list[str]
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    key = os.environ["RAPPORT_BENCH_KEY"]
    warm_up = await Connection.open(url, key)
    await warm_up.post(json.dumps(_request("query", accounts[0])).encode())
    warm_up.close()
    cycle = itertools.cycle(accounts)
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(
            _client(url, key, mode, cycle, deadline, latencies=latencies, errors=errors)
            for _ in range(clients)
        )
    )
    elapsed = time.monotonic() - started
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": elapsed,
        "latencies_ms": latencies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("url")
    parser.add_argument("accounts", nargs="+")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mode", choices=("query", "mutation"), default="query")
    args = parser.parse_args()
    result = asyncio.run(
        run(args.url, args.clients, args.seconds, args.mode, args.accounts)
    )
    print(json.dumps(result))  # noqa: T201 - the parent process reads it


if __name__ == "__main__":
    main()
