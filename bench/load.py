"""GraphQL load from a process of its own: N clients, each one request at a time.

    python -m bench.load URL --clients 16 --seconds 10 --mode query ACCOUNT_ID...

Prints one JSON object: requests, errors, seconds, and every latency in ms.
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

import httpx

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


async def _client(
    http: httpx.AsyncClient,
    mode: str,
    accounts: itertools.cycle[str],
    deadline: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    expected = "account" if mode == "query" else "logInteraction"
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = await http.post("/graphql", json=_request(mode, next(accounts)))
        latencies.append((time.perf_counter() - started) * 1000)
        body = response.json() if response.status_code == 200 else {}  # noqa: PLR2004
        if "errors" in body or not (body.get("data") or {}).get(expected):
            errors.append(response.text[:200])


async def run(
    url: str, clients: int, seconds: float, mode: str, accounts: list[str]
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {os.environ['RAPPORT_BENCH_KEY']}"}
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=60, headers=headers
    ) as http:
        await http.post("/graphql", json=_request("query", accounts[0]))  # warm up
        cycle = itertools.cycle(accounts)
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(
                _client(http, mode, cycle, deadline, latencies, errors)
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
