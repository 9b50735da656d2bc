"""``make bench``: Rapport's speed, measured side by side in one run.

    python -m bench [--smoke] [--output bench/results.json] [--database-url URL]

Runs in a database of its own on the PostgreSQL the app uses (``DATABASE_URL``,
or the embedded server), dropped afterwards. Prints a table and writes every
figure, with the machine it ran on, as JSON. ``--smoke`` runs each part for a
moment only, so that the bench never rots (no figure from it means anything).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from psycopg.sql import SQL, Identifier

from api.auth import Role
from api.runtime import api_keys_of, open_store, settle_heap
from domain.account import Account
from domain.application import Accounts, CommandMeta
from domain.errors import ConcurrencyConflict
from domain.values import AccountKind, Channel, Direction, Stage, Tier
from eventstore.audit import Audit
from eventstore.database import eventsourcing_env, resolve_database_url, scratch_database
from eventstore.recorder import recorder_of
from projections.runner import PROJECTED_CHANNEL, Projections

META = CommandMeta("bench")


@dataclass(frozen=True)
class Scale:
    write_seconds: float
    writers: tuple[int, ...]
    lag_rate: float
    lag_seconds: float
    rebuild_events: int
    load_seconds: float
    load_clients: int
    travel_events: int


FULL = Scale(8, (1, 8, 32), 300, 15, 200_000, 15, 16, 10_000)
SMOKE = Scale(0.5, (1, 8), 50, 1, 1_000, 1, 4, 300)


@dataclass
class Results:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, part: str, case: str, **figures: Any) -> None:
        row = {"part": part, "case": case, **figures}
        self.rows.append(row)
        shown = ", ".join(f"{k} {_show(v)}" for k, v in figures.items())
        print(f"{part:<14} {case:<46} {shown}", flush=True)  # noqa: T201


def _show(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _in_threads(count: int, work: Callable[[int], int]) -> tuple[int, float]:
    """Run ``work(i)`` in ``count`` threads; return the sum of what they did and
    the seconds from the first start to the last end."""
    done = [0] * count
    threads = [
        threading.Thread(target=lambda i=i: done.__setitem__(i, work(i)))
        for i in range(count)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - started


# -- 1. append throughput ------------------------------------------------------------


def _log(app: Accounts, account_id: UUID, **kwargs: Any) -> Any:
    return app.log_interaction(
        META,
        account_id,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        occurred_at=datetime.now(tz=UTC) - timedelta(minutes=1),
        summary="Benchmark",
        **kwargs,
    )


def rapport_writes(app: Accounts, writers: int, seconds: float) -> tuple[int, float]:
    accounts = [
        app.open_account(META, name=f"Writer {i}", kind=AccountKind.GROUP).account_id
        for i in range(writers)
    ]

    def work(i: int) -> int:
        deadline, count = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            _log(app, accounts[i])
            count += 1
        return count

    return _in_threads(writers, work)


def contended_writes(app: Accounts, writers: int, seconds: float) -> dict[str, Any]:
    """Writers on one account, each with the version it read: a conflict is an
    answer, never a lost write."""
    account_id = app.open_account(META, name="Contended", kind=AccountKind.GROUP).account_id
    conflicts = [0] * writers

    def work(i: int) -> int:
        deadline, count = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            version = app.get_account(account_id).version
            try:
                _log(app, account_id, expected_version=version)
                count += 1
            except ConcurrencyConflict:
                conflicts[i] += 1
        return count

    written, elapsed = _in_threads(writers, work)
    final = app.get_account(account_id).version
    return {
        "events_per_s": written / elapsed,
        "written": written,
        "conflicts": sum(conflicts),
        "lost": final - 1 - written,
    }


def naive_writes(url: str, state: bytes, writers: int, seconds: float) -> tuple[int, float]:
    """Plain psycopg, one event per transaction, the same row shape: the ceiling."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_naive_events (notification_id bigserial"
            " PRIMARY KEY, originator_id uuid NOT NULL, originator_version bigint"
            " NOT NULL, topic text NOT NULL, state bytea NOT NULL, event_id uuid,"
            " occurred_at timestamptz, recorded_at timestamptz NOT NULL DEFAULT"
            " clock_timestamp(), actor text NOT NULL, correlation_id uuid,"
            " causation_id uuid, command_id uuid,"
            " UNIQUE (originator_id, originator_version))"
        )

    def work(_: int) -> int:
        account, count = uuid4(), 0
        deadline = time.monotonic() + seconds
        with psycopg.connect(url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                count += 1
                conn.execute(
                    "INSERT INTO bench_naive_events (originator_id, originator_version,"
                    " topic, state, event_id, occurred_at, actor, correlation_id,"
                    " command_id) VALUES (%s, %s, %s, %s, %s, now(), %s, %s, %s)",
                    (
                        account,
                        count,
                        "bench:Naive",
                        state,
                        uuid4(),
                        "bench",
                        uuid4(),
                        uuid4(),
                    ),
                    prepare=True,
                )
        return count

    return _in_threads(writers, work)


class Note(Aggregate):
    """eventsourcing with nothing of Rapport: an aggregate that takes notes."""

    def __init__(self) -> None:
        self.last = ""

    @event("Noted")
    def note(self, text: str) -> None:
        self.last = text


class Notes(Application[UUID]):
    name = "bench_plain"


def eventsourcing_writes(url: str, writers: int, seconds: float) -> tuple[int, float]:
    """eventsourcing's own PostgreSQL application, nothing of Rapport: each
    write saves a new aggregate's first event (no replay, its best case)."""
    env = eventsourcing_env(url)
    for key in ("APPLICATION_RECORDER_TOPIC", "MAPPER_TOPIC", "TRANSCODER_TOPIC"):
        env.pop(key)
    env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
    app = Notes(env=env)
    try:

        def work(_: int) -> int:
            deadline, count = time.monotonic() + seconds, 0
            while time.monotonic() < deadline:
                app.save(Note())  # one event
                count += 1
            return count

        return _in_threads(writers, work)
    finally:
        app.close()


def writes(url: str, app: Accounts, scale: Scale, results: Results) -> None:
    state = _sample_state(app)
    for writers in scale.writers:
        done, seconds = rapport_writes(app, writers, scale.write_seconds)
        results.add(
            "append",
            f"Rapport command path, {writers} writer(s)",
            events_per_s=done / seconds,
        )
        done, seconds = eventsourcing_writes(url, writers, scale.write_seconds)
        results.add(
            "append",
            f"eventsourcing default, {writers} writer(s)",
            events_per_s=done / seconds,
        )
        done, seconds = naive_writes(url, state, writers, scale.write_seconds)
        results.add(
            "append",
            f"plain psycopg INSERT, {writers} writer(s)",
            events_per_s=done / seconds,
        )
    results.add(
        "append",
        "Rapport, 8 writers on one account",
        **contended_writes(app, 8, scale.write_seconds),
    )


def _sample_state(app: Accounts) -> bytes:
    account_id = app.open_account(META, name="Sample", kind=AccountKind.GROUP).account_id
    _log(app, account_id)
    (recorded,) = recorder_of(app).account_events(account_id, after_version=1, limit=1)
    return bytes(recorded.stored.state)


# -- 2. projection lag -------------------------------------------------------------


def projection_lag(url: str, app: Accounts, scale: Scale, results: Results) -> None:
    projections = Projections(app, url)
    projections.catch_up()
    stop = threading.Event()
    runner = threading.Thread(target=projections.run, args=(stop, 0.2))
    seen: list[tuple[int, float]] = []

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SQL("LISTEN {}").format(Identifier(PROJECTED_CHANNEL)))
            while not stop.is_set():
                seen.extend(
                    (int(note.payload), time.monotonic())
                    for note in conn.notifies(timeout=0.2)
                )

    listener = threading.Thread(target=listen)
    listener.start()
    runner.start()
    writers = 8
    accounts = [
        app.open_account(META, name=f"Lag {i}", kind=AccountKind.GROUP).account_id
        for i in range(writers)
    ]
    committed: list[tuple[int, float]] = []
    interval = writers / scale.lag_rate

    def work(i: int) -> int:
        deadline, count = time.monotonic() + scale.lag_seconds, 0
        next_at = time.monotonic() + i * interval / writers
        while (now := time.monotonic()) < deadline:
            if now < next_at:
                time.sleep(next_at - now)
            next_at += interval
            outcome = _log(app, accounts[i])
            committed.append((outcome.position, time.monotonic()))
            count += 1
        return count

    done, seconds = _in_threads(writers, work)
    time.sleep(1)
    stop.set()
    runner.join()
    listener.join()
    lags = []
    for position, at in committed:
        shown = next((t for p, t in seen if p >= position and t >= at - 1), None)
        if shown is not None:
            lags.append(max(0.0, shown - at) * 1000)
    results.add(
        "projection",
        f"commit to visible, {writers} writers at {scale.lag_rate:.0f}/s asked",
        achieved_per_s=done / seconds,
        p50_ms=percentile(lags, 0.5),
        p95_ms=percentile(lags, 0.95),
        p99_ms=percentile(lags, 0.99),
        unseen=len(committed) - len(lags),
    )


# -- 3. rebuild ------------------------------------------------------------------------


def populate(app: Accounts, events: int, per_account: int = 50) -> int:
    """Write ``events`` events quickly: whole accounts built in memory, saved
    twenty to a transaction (the command path is measured elsewhere)."""
    written = 0
    moment = datetime.now(tz=UTC) - timedelta(days=30)
    while written < events:
        batch = []
        for _ in range(20):
            account = Account.open(name=f"Account {written}", kind=AccountKind.ORGANIZATION)
            account.add_contact(contact_id=uuid4(), name="Ann Lee", email="ann@x.example")
            account.change_tier(tier=Tier.PARTNER, reason="grew")
            account.change_stage(stage=Stage.AWARENESS, reason="met")
            for i in range(per_account - 4):
                account.log_interaction(
                    interaction_id=uuid4(),
                    channel=Channel.CALL if i % 3 == 0 else Channel.EMAIL,
                    direction=Direction.OUTBOUND,
                    occurred_at=moment + timedelta(minutes=i),
                    participants=("Ann Lee",),
                    summary=f"Conversation {i}",
                    effort_minutes=10,
                )
            batch.append(account)
            written += per_account
        app.save(*batch, meta=META)
    return written


def rebuild(url: str, app: Accounts, scale: Scale, results: Results) -> None:
    started = time.perf_counter()
    written = populate(app, scale.rebuild_events)
    results.add(
        "rebuild",
        "writing the events (batched saves)",
        events=written,
        seconds=time.perf_counter() - started,
    )
    projections = Projections(app, url)
    total = app.recorder.max_notification_id() or 0
    started = time.perf_counter()
    projections.rebuild(projections.views)
    seconds = time.perf_counter() - started
    results.add(
        "rebuild",
        f"every view, from the first event ({len(projections.views)} views)",
        events=total,
        events_per_s=total / seconds,
    )


# -- 4 and 6. GraphQL under load, and the API's memory ---------------------------------


def graphql_load(url: str, app: Accounts, scale: Scale, results: Results) -> None:
    accounts = []
    for i in range(50):
        account_id = app.open_account(
            META, name=f"Served {i}", kind=AccountKind.ORGANIZATION
        ).account_id
        app.add_contact(
            META, account_id, name="Ann Lee", role="Buyer", email="ann@x.example"
        )
        app.change_stage(META, account_id, Stage.AWARENESS, "met")
        for _ in range(25):
            _log(app, account_id)
        accounts.append(str(account_id))
    with recorder_of(app).datastore.transaction(commit=True) as cur:
        key = api_keys_of(app).create(cur, name="bench", role=Role.ADMIN, actor="bench").key
    for workers, kept in ((1, True), (2, True), (1, False)):
        _serve_and_load(
            url, app, key, accounts, workers, kept=kept, scale=scale, results=results
        )


def _serve_and_load(
    url: str,
    app: Accounts,
    key: str,
    accounts: list[str],
    workers: int,
    *,
    kept: bool,
    scale: Scale,
    results: Results,
) -> None:
    """Load ``rapport serve`` with ``workers`` API processes: with one that keeps
    answers, reads, writes and the process's memory; otherwise reads only.
    Without ``kept``, the API keeps no answers (``RAPPORT_KEPT_ANSWERS=0``):
    every read is worked out."""
    port = _free_port()
    env = os.environ | {
        "DATABASE_URL": url,
        "RAPPORT_PORT": str(port),
        "RAPPORT_WORKERS": str(workers),
        "RAPPORT_RUN_PROJECTIONS": "true",
        # The load is the measurement: no per-key rate limit in its way.
        "RAPPORT_RATE_LIMIT_PER_SECOND": "0",
        "RAPPORT_KEPT_ANSWERS": "1000" if kept else "0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    processes = "" if workers == 1 else f", {workers} API processes"
    processes += "" if kept else ", no answers kept"
    full = workers == 1 and kept
    try:
        _wait_until_up(base, server, app.recorder.max_notification_id() or 0)
        for mode in ("query", "mutation") if full else ("query",):
            load = _load(base, key, accounts, mode, scale)
            _add_load(
                results,
                "account(id): contacts, 20 interactions, stages" + processes
                if mode == "query"
                else "logInteraction mutation (read-your-writes)",
                load,
                scale.load_clients,
            )
        if full:
            # Reads while writes move the views (and so drop every kept answer).
            writing = _start_load(base, key, accounts, "mutation", scale, WRITING_CLIENTS)
            try:
                load = _load(base, key, accounts, "query", scale)
            finally:
                written = _finish(writing)
            _add_load(
                results,
                "account(id): contacts, 20 interactions, stages, while "
                f"{WRITING_CLIENTS} clients log interactions",
                load,
                scale.load_clients,
                writes_per_s=written["requests"] / written["seconds"],
                write_errors=written["errors"],
            )
        if full:
            results.add(
                "memory",
                "API process peak RSS under that load",
                mib=_peak_rss_mib(server.pid),
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


WRITING_CLIENTS = 2
"""Clients logging interactions while ``account(id)`` is read, in the mixed case."""


def _load(
    base: str, key: str, accounts: list[str], mode: str, scale: Scale
) -> dict[str, Any]:
    """``bench.load`` from a process of its own; what it measured."""
    return _finish(_start_load(base, key, accounts, mode, scale, scale.load_clients))


def _start_load(
    base: str, key: str, accounts: list[str], mode: str, scale: Scale, clients: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "bench.load",
            base,
            *accounts,
            "--clients",
            str(clients),
            "--seconds",
            str(scale.load_seconds),
            "--mode",
            mode,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"RAPPORT_BENCH_KEY": key},
    )


def _finish(load: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = load.communicate()
    if load.returncode != 0:
        raise RuntimeError(f"bench.load failed: {err.strip()[-2000:]}")
    found: dict[str, Any] = json.loads(out)
    return found


def _add_load(
    results: Results, case: str, load: dict[str, Any], clients: int, **more: Any
) -> None:
    latencies = load["latencies_ms"]
    results.add(
        "graphql",
        case,
        clients=clients,
        requests_per_s=load["requests"] / load["seconds"],
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        errors=load["errors"],
        first_error=load["first_error"],
        **more,
    )


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(base: str, server: subprocess.Popen[bytes], position: int) -> None:
    """Until the server answers and its views show every event written so far."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("rapport serve exited")
        try:
            health = httpx.get(f"{base}/health")
            if health.json()["projected_position"] >= position:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("rapport serve did not catch up")


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- 5. time travel --------------------------------------------------------------------


def time_travel(app: Accounts, scale: Scale, results: Results) -> None:
    account = Account.open(name="Long history", kind=AccountKind.ORGANIZATION)
    moment = datetime.now(tz=UTC) - timedelta(days=400)
    app.save(account, meta=META)
    while account.version < scale.travel_events:
        for _ in range(min(500, scale.travel_events - account.version)):
            account.log_interaction(
                interaction_id=uuid4(),
                channel=Channel.EMAIL,
                direction=Direction.INBOUND,
                occurred_at=moment,
                summary="Order",
            )
        app.save(account, meta=META)
    audit = Audit(app)
    step = max(1, scale.travel_events // 25)
    timings = []
    for version in range(step // 2, scale.travel_events, step):
        started = time.perf_counter()
        audit.state_at(account.id, version=version)
        timings.append((time.perf_counter() - started) * 1000)
    results.add(
        "time travel",
        f"state at a past version, {scale.travel_events:,} events",
        median_ms=statistics.median(timings),
        max_ms=max(timings),
    )


# -- the run ---------------------------------------------------------------------------


def machine(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        commit = conn.execute("SHOW synchronous_commit").fetchone()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgresql": row[0] if row else None,
        "synchronous_commit": commit[0] if commit else None,
    }


PARTS = ("append", "projection", "rebuild", "graphql", "time travel")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a moment per part")
    parser.add_argument("--output", default="bench/results.json")
    parser.add_argument(
        "--database-url", help="the server (default: DATABASE_URL or embedded)"
    )
    parser.add_argument(
        "--only", choices=PARTS, action="append", help="run only these parts"
    )
    args = parser.parse_args()
    scale = SMOKE if args.smoke else FULL
    parts = args.only or PARTS
    server_url = args.database_url or resolve_database_url()
    results = Results()
    started = time.perf_counter()
    with scratch_database(server_url, "rapport_bench") as url:
        app, _ = open_store(url)
        settle_heap()  # as rapport serve and rapport project do once started
        try:
            if "append" in parts:
                writes(url, app, scale, results)
            if "projection" in parts:
                projection_lag(url, app, scale, results)
            if "time travel" in parts:
                time_travel(app, scale, results)
            if "rebuild" in parts:
                rebuild(url, app, scale, results)
            if "graphql" in parts:
                graphql_load(url, app, scale, results)
        finally:
            app.close()
        report = {
            "run_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "scale": "smoke" if args.smoke else "full",
            "seconds": time.perf_counter() - started,
            "machine": machine(url),
            "results": results.rows,
        }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.output} in {report['seconds']:.0f} s")  # noqa: T201


if __name__ == "__main__":
    main()
