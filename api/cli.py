"""The ``rapport`` command: serve, project, rebuild, migrate, schema."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Never
from uuid import UUID

from api.auth import Role
from api.settings import Settings
from eventstore.database import DEFAULT_DATA_DIR, resolve_database_url
from eventstore.recorder import recorder_of


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - only the serve command needs it

    from api.app import create_app  # noqa: PLC0415

    settings = Settings.from_env()
    database_url = resolve_database_url()
    if not os.environ.get("DATABASE_URL"):
        # A development machine (the embedded database): a key to start with.
        from api.runtime import development_key, open_store  # noqa: PLC0415

        store, _projections = open_store(database_url)
        key = development_key(store, development_key_path())
        store.close()
        print(  # noqa: T201
            f"Development API key (role admin, actor developer), kept in "
            f"{development_key_path()}:\n  {key}\n"
            f"Send it as the header  Authorization: Bearer {key}",
            flush=True,
        )
    # Built here even when workers build their own: a bad setting (such as an
    # unreadable trusted documents file) stops the start instead of each worker.
    app = create_app(settings, database_url)
    print(f"Rapport GraphQL at http://{settings.host}:{settings.port}/graphql", flush=True)  # noqa: T201
    # This implementation waits for room in the write buffer before it writes
    # a message, which the subscriptions' slow-consumer cut-off relies on.
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": args.log_level,
        "ws": "websockets-sansio",
    }
    if settings.workers == 1:
        uvicorn.run(app, **options)
        return 0
    # Each worker opens the database resolved here: the embedded server this
    # process started, if it started one.
    os.environ["DATABASE_URL"] = database_url
    return _supervise(
        uvicorn.Config(
            "api.app:app_from_env", factory=True, workers=settings.workers, **options
        )
    )


def _supervise(config: Any) -> int:
    """uvicorn's supervisor of several workers, as ``uvicorn.run`` starts it,
    with an exit status: when a worker fails to start, uvicorn stops every
    worker and the parent, which then exits as ``uvicorn.run`` does for one
    worker (3), not 0 as ``uvicorn.run`` does for several."""
    from uvicorn.config import STARTUP_FAILURE  # noqa: PLC0415
    from uvicorn.supervisors import Multiprocess  # noqa: PLC0415

    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    with contextlib.suppress(KeyboardInterrupt):
        supervisor.run()
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return STARTUP_FAILURE if failed else 0


def development_key_path() -> Path:
    data_dir = Path(os.environ.get("RAPPORT_DATA_DIR", str(DEFAULT_DATA_DIR)))
    return data_dir.parent / "dev-key"


def _keys(args: argparse.Namespace) -> int:
    from api.auth import key_row_text  # noqa: PLC0415
    from api.runtime import api_keys_of, open_store  # noqa: PLC0415

    app, _projections = open_store(resolve_database_url())
    keys = api_keys_of(app)
    try:
        with recorder_of(app).datastore.transaction(commit=True) as cur:
            if args.action == "create":
                issued = keys.create(
                    cur,
                    name=args.name or args.actor,
                    role=Role(args.role),
                    actor=args.actor,
                    team=args.team or (),
                )
                print(f"created key {issued.id}; it is shown only now:", file=sys.stderr)  # noqa: T201
                print(issued.key)  # noqa: T201
            elif args.action == "revoke":
                if not keys.revoke(cur, args.id):
                    print(f"no active key {args.id}", file=sys.stderr)  # noqa: T201
                    return 1
                print(f"revoked {args.id}")  # noqa: T201
            else:
                for row in keys.listing(cur):
                    print(key_row_text(row))  # noqa: T201
    finally:
        app.close()
    return 0


def _project(_: argparse.Namespace) -> int:
    from api.runtime import open_store, run_projections, settle_heap  # noqa: PLC0415

    app, projections = open_store(resolve_database_url())
    settle_heap()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger("rapport").info("projection runner started")
    run_projections(projections, stop)
    app.close()
    return 0


def _relay(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from api.runtime import open_store  # noqa: PLC0415
    from eventstore.broker import resolve_nats_url  # noqa: PLC0415
    from eventstore.relay import Relay  # noqa: PLC0415

    app, _projections = open_store(resolve_database_url())
    relay = Relay(
        app,
        resolve_nats_url(),
        stream=args.stream,
        subject_prefix=args.prefix,
        include_personal=args.include_personal,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await relay.run(stop)

    try:
        asyncio.run(run())
    finally:
        app.close()
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # noqa: PLC0415

    from api.runtime import open_store  # noqa: PLC0415

    app, projections = open_store(resolve_database_url())
    names = args.views or list(projections.views)
    unknown = sorted(set(names) - set(projections.views))
    if unknown:
        print(  # noqa: T201
            f"unknown view(s): {', '.join(unknown)}; known: {', '.join(projections.views)}",
            file=sys.stderr,
        )
        return 2
    for name in names:
        with tqdm(desc=name, unit="event", total=0, file=sys.stderr) as bar:

            def advance(position: int, total: int, bar: tqdm[Never] = bar) -> None:
                bar.total = total
                bar.update(position - bar.n)

            projections.rebuild([name], advance)
    app.close()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from api.runtime import grant_least_privilege, open_store  # noqa: PLC0415

    app, projections = open_store(resolve_database_url(), migrate=True)
    print("schema is up to date")  # noqa: T201
    if args.grant:
        grant_least_privilege(app, projections, args.grant)
        print(f"granted {args.grant} what the API and the runner need")  # noqa: T201
    app.close()
    return 0


def _head(text: str) -> tuple[int, str]:
    position, _, digest = text.partition(":")
    if not position.isdigit() or len(digest) != 64:  # noqa: PLR2004 - SHA-256 in hex
        raise argparse.ArgumentTypeError("expected POSITION:HASH, as verify prints it")
    return int(position), digest


def _verify(args: argparse.Namespace) -> int:
    from api.runtime import open_store  # noqa: PLC0415
    from eventstore.integrity import verify  # noqa: PLC0415

    app, _projections = open_store(resolve_database_url())
    report = verify(recorder_of(app), args.expect)
    app.close()
    if report.intact:
        print(  # noqa: T201
            f"hash chain intact: {report.events} events; "
            f"head {report.head_position}:{report.head_hash}"
        )
        return 0
    broken = report.first_break
    if broken is not None:
        print(  # noqa: T201
            f"hash chain BROKEN at position {broken.position} "
            f"(account {broken.account_id}, version {broken.version}): {broken.problem}",
            file=sys.stderr,
        )
    if report.anchor_problem is not None:
        print(f"expected head not found: {report.anchor_problem}", file=sys.stderr)  # noqa: T201
    return 1


def _export(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # noqa: PLC0415

    from api.runtime import open_store  # noqa: PLC0415
    from eventstore.transfer import export_lines  # noqa: PLC0415

    app, _projections = open_store(resolve_database_url())
    try:
        with (
            contextlib.ExitStack() as files,
            tqdm(desc="export", unit="event", file=sys.stderr, disable=None) as bar,
        ):
            out = (
                files.enter_context(Path(args.output).open("w", encoding="utf-8"))
                if args.output
                else sys.stdout
            )
            for line in export_lines(recorder_of(app), args.account, keys=args.keys):
                out.write(line + "\n")
                bar.update()
    finally:
        app.close()
    return 0


def _import(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # noqa: PLC0415

    from api.runtime import open_store  # noqa: PLC0415
    from eventstore.transfer import ImportRefused, import_lines  # noqa: PLC0415

    app, _projections = open_store(resolve_database_url())
    try:
        with (
            Path(args.file).open(encoding="utf-8") as lines,
            tqdm(desc="import", unit="event", file=sys.stderr, disable=None) as bar,
        ):

            def advance(done: int) -> None:
                bar.update(done - bar.n)

            count = import_lines(recorder_of(app), lines, advance)
    except ImportRefused as refused:
        print(f"import refused, nothing written: {refused}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        app.close()
    print(f"imported {count} events; run `rapport rebuild` to build the views")  # noqa: T201
    return 0


def _schema(args: argparse.Namespace) -> int:
    from api.schema import schema  # noqa: PLC0415

    sdl = schema.as_str() + "\n"
    if args.output:
        Path(args.output).write_text(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="rapport", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the GraphQL API")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve)
    commands.add_parser("project", help="keep the views current").set_defaults(run=_project)
    relay = commands.add_parser(
        "relay", help="publish every event to NATS JetStream, exactly once, in order"
    )
    relay.add_argument("--stream", default="RAPPORT_EVENTS", help="the JetStream stream")
    relay.add_argument(
        "--prefix", default="rapport.events", help="subjects are PREFIX.<EventType>"
    )
    relay.add_argument(
        "--include-personal",
        action="store_true",
        help="publish personal values as they are (an erasure cannot reach the stream)",
    )
    relay.set_defaults(run=_relay)
    keys = commands.add_parser("keys", help="create, revoke or list API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="make a key and print it (once)")
    create.add_argument("--role", required=True, choices=[str(role) for role in Role])
    create.add_argument(
        "--actor", required=True, help="the name stamped on the events it causes"
    )
    create.add_argument("--name", help="what the key is for (default: the actor)")
    create.add_argument(
        "--team",
        type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
        help="for a manager: the agents (actors) whose accounts they oversee, a,b,c",
    )
    revoke = key_actions.add_parser("revoke", help="stop a key from working")
    revoke.add_argument("id", type=UUID)
    key_actions.add_parser("list", help="every key, revoked ones too (never the secret)")
    keys.set_defaults(run=_keys)
    rebuild = commands.add_parser("rebuild", help="replay views from the first event")
    rebuild.add_argument("views", nargs="*", help="view names (default: all)")
    rebuild.set_defaults(run=_rebuild)
    migrate = commands.add_parser("migrate", help="create or update the tables (as owner)")
    migrate.add_argument(
        "--grant", metavar="ROLE", help="give ROLE the least privileges the API needs"
    )
    migrate.set_defaults(run=_migrate)
    check = commands.add_parser(
        "verify", help="recompute the events' hash chain; exit 1 if it is broken"
    )
    check.add_argument(
        "--expect",
        type=_head,
        metavar="POSITION:HASH",
        help="a head printed by an earlier verify, kept elsewhere: it must still be there",
    )
    check.set_defaults(run=_verify)
    export = commands.add_parser("export", help="write the event log as NDJSON")
    export.add_argument("--account", type=UUID, help="only this account's events")
    export.add_argument("--output", "-o", help="write to this file (default: stdout)")
    export.add_argument(
        "--without-keys",
        dest="keys",
        action="store_false",
        help="leave out the subjects' keys: personal data stays sealed in the file",
    )
    export.set_defaults(run=_export)
    load = commands.add_parser("import", help="load an NDJSON export into an empty store")
    load.add_argument("file")
    load.set_defaults(run=_import)
    schema = commands.add_parser("schema", help="print the GraphQL SDL")
    schema.add_argument("--output", "-o", help="write to this file")
    schema.set_defaults(run=_schema)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
