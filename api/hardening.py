"""Limits on what one request may cost, and which documents the API runs.

- Query limits: depth, tokens and aliases per document, introspection on or off
  (schema extensions, built from the settings by ``schema_extensions``).
- Trusted documents: persisted queries by SHA-256 hash (Apollo's automatic
  persisted queries protocol) and, in ``only`` mode, nothing else.
- Body size: ``BodyLimit``, an ASGI middleware answering 413.
- Rate limits: a token bucket per credential, kept in this process.
- A statement timeout on the API's database connections.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from graphql import DocumentNode, GraphQLError, parse
from psycopg.conninfo import conninfo_to_dict
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from api.settings import Settings

# -- Trusted documents ------------------------------------------------------------

PERSISTED_QUERY_VERSION = 1
REMEMBERED_DOCUMENTS = 1000
"""Outside ``only`` mode: how many client-registered documents a process keeps."""
LONGEST_REMEMBERED = 16_384
"""Longer documents run, but are not remembered by hash."""

GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def _stand_in(operation_name: str | None) -> DocumentNode:
    """What a refused operation carries instead of the client's document: an
    operation of the name asked for, never run (its errors are set first)."""
    name = (
        operation_name if operation_name and GRAPHQL_NAME.fullmatch(operation_name) else ""
    )
    return parse(f"query {name} {{ __typename }}")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class TrustedDocumentsError(ValueError):
    """The trusted documents file cannot be used; the message says why."""


def load_manifest(path: str | Path) -> dict[str, str]:
    """A JSON object of SHA-256 hash (hex) to document text; every hash is checked."""
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        msg = f"cannot read trusted documents from {path}: {error}"
        raise TrustedDocumentsError(msg) from None
    if not isinstance(found, dict):
        msg = f"{path}: expected a JSON object of SHA-256 hash to document"
        raise TrustedDocumentsError(msg)
    documents: dict[str, str] = {}
    for key, text in found.items():
        if not isinstance(text, str) or sha256_hex(text) != key.lower():
            msg = f"{path}: {key!r} is not the SHA-256 of its document"
            raise TrustedDocumentsError(msg)
        documents[key.lower()] = text
    return documents


def _refusal(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _not_found() -> GraphQLError:
    # Apollo clients send the query's text again on exactly this message.
    return _refusal("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")


def _not_in_list() -> GraphQLError:
    return _refusal(
        "PersistedQueryNotInList: only trusted documents are accepted",
        "PERSISTED_QUERY_NOT_IN_LIST",
    )


class TrustedDocuments:
    """Registered documents by hash: the manifest's, and outside ``only`` mode
    those clients registered (hash and text together, the hash checked), the
    most recently used first kept."""

    def __init__(self, manifest: Mapping[str, str], *, only: bool) -> None:
        self.manifest = dict(manifest)
        self.only = only
        self.registered: OrderedDict[str, str] = OrderedDict()

    def document(self, query: str | None, extensions: Any) -> str | GraphQLError:
        """The text to run for this request, or why it is refused."""
        persisted = (
            extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        )
        if persisted is not None:
            return self._persisted(query, persisted)
        if query is None or not self.only or sha256_hex(query) in self.manifest:
            return query or ""
        return _not_in_list()

    def _persisted(self, query: str | None, persisted: Any) -> str | GraphQLError:
        wanted = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        version = persisted.get("version") if isinstance(persisted, dict) else None
        if version != PERSISTED_QUERY_VERSION or not isinstance(wanted, str):
            return _refusal(
                "persistedQuery needs version 1 and a sha256Hash", "BAD_PERSISTED_QUERY"
            )
        wanted = wanted.lower()
        if query is None:
            known = self.manifest.get(wanted) or self._recall(wanted)
            return _not_found() if known is None else known
        if sha256_hex(query) != wanted:
            return _refusal(
                "provided sha256Hash does not match query", "BAD_PERSISTED_QUERY"
            )
        if wanted not in self.manifest:
            if self.only:
                return _not_in_list()
            self._remember(wanted, query)
        return query

    def _remember(self, digest: str, query: str) -> None:
        if len(query) > LONGEST_REMEMBERED:
            return
        self.registered[digest] = query
        self.registered.move_to_end(digest)
        while len(self.registered) > REMEMBERED_DOCUMENTS:
            self.registered.popitem(last=False)

    def _recall(self, digest: str) -> str | None:
        found = self.registered.get(digest)
        if found is not None:
            self.registered.move_to_end(digest)
        return found


class PersistedQueries(SchemaExtension):
    """Resolves ``extensions.persistedQuery`` to its document, and refuses what
    ``TrustedDocuments`` refuses: the refused document is neither parsed nor run.

    Runs first, before parsing, for every operation: HTTP and websockets alike
    (a websocket sends the document's text; strawberry does not pass a
    websocket message's extensions on, so hash-only requests are HTTP's).
    """

    def __init__(self, documents: TrustedDocuments) -> None:
        self.documents = documents

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None:
            found = self.documents.document(context.query, context.operation_extensions)
            if isinstance(found, GraphQLError):
                context.graphql_document = _stand_in(context.operation_name)
                context.pre_execution_errors = [found]
            else:
                context.query = found
        yield


def schema_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """The limits the settings ask for, as schema extensions (each made per request)."""
    extensions: list[Callable[[], SchemaExtension]] = []
    manifest = (
        load_manifest(settings.trusted_documents_file)
        if settings.trusted_documents_file
        else {}
    )
    only = settings.trusted_documents == "only"
    if only and not manifest:
        msg = "RAPPORT_TRUSTED_DOCUMENTS=only needs RAPPORT_TRUSTED_DOCUMENTS_FILE"
        raise TrustedDocumentsError(msg)
    extensions.append(partial(PersistedQueries, TrustedDocuments(manifest, only=only)))
    # The validation rules are made once: a fresh extension per request brings
    # the same rules, so a document's validation is cached (api.schema).
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_query_aliases).validation_rules,
    ]
    if not settings.introspection:
        rules += DisableIntrospection().validation_rules
    extensions += [
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        partial(AddValidationRules, rules),
    ]
    return extensions


# -- Request bodies ---------------------------------------------------------------

DRAINED_AT_MOST = 8 * 1024 * 1024
"""Past the limit, so much more is read and dropped so the client sees the 413;
a longer body is answered at once and its connection closed."""


def replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for an application after the body was read: the body, in
    one message, then whatever ``receive`` brings (a disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class BodyLimit:
    """Answers 413 to a request whose body is longer than ``max_bytes``.

    At most ``max_bytes`` are held: the body is read before the application
    runs, and handed to it once it is known to be short enough.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            if declared - self.max_bytes <= DRAINED_AT_MOST:
                await _drain(receive, declared)
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self.max_bytes:
                if more:
                    await _drain(receive, DRAINED_AT_MOST)
                await self._refuse(send)
                return
            chunks.append(chunk)
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send) -> None:
        detail = {
            "detail": f"request body larger than {self.max_bytes} bytes "
            "(RAPPORT_MAX_BODY_BYTES)"
        }
        content = json.dumps(detail).encode()
        await send_json(send, 413, content, (b"connection", b"close"))


async def send_json(
    send: Send, status: int, content: bytes, *headers: tuple[bytes, bytes]
) -> None:
    """A whole response of JSON ``content``, straight to ASGI's ``send``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive, at_most: int) -> None:
    """Read and drop the rest of a body, up to ``at_most`` bytes."""
    dropped = 0
    while dropped <= at_most:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


# -- Rate limits -----------------------------------------------------------------

KEPT_BUCKETS = 10_000
"""Past so many buckets, the full ones (idle long enough) are dropped."""


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``rate``
    per second. Single-threaded under asyncio: ``take`` never awaits, so no
    two requests interleave inside it."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float | None:
        """Spend one request of ``key``'s; None if allowed, else seconds to wait."""
        if not self.enabled:
            return None
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= KEPT_BUCKETS:
                self._forget_full(now)
            bucket = self.buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.at) * self.rate
            )
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key in [k for k, b in self.buckets.items() if now - b.at >= full_after]:
            del self.buckets[key]


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))


def rate_limit_message(seconds: float) -> str:
    return f"rate limit exceeded; retry after {retry_after(seconds)} s"


def client_key(connection: HTTPConnection) -> str:
    client = connection.client
    return f"address:{client.host if client else 'unknown'}"


def principal_key(credential: str) -> str:
    return f"credential:{credential}"


async def charged_context(
    request: HTTPConnection,
    getter: Callable[[HTTPConnection], Awaitable[Any]],
    limiter: RateLimiter,
) -> Any:
    """``getter``'s context for ``request``, charged to the request's credential.

    Unauthenticated and refused HTTP requests are charged to the client's
    address. A websocket is charged when its connection is initialised and for
    each operation it starts (see ``api.app``), not here.
    """
    if isinstance(request, WebSocket) or not limiter.enabled:
        return await getter(request)
    try:
        context = await getter(request)
    except HTTPException as refused:
        if refused.status_code == 401:  # noqa: PLR2004
            _charge(limiter, client_key(request))
        raise
    principal = getattr(context, "principal", None)
    key = principal_key(principal.credential) if principal else client_key(request)
    _charge(limiter, key)
    return context


def _charge(limiter: RateLimiter, key: str) -> None:
    wait = limiter.take(key)
    if wait is not None:
        raise HTTPException(
            429, rate_limit_message(wait), headers={"Retry-After": retry_after(wait)}
        )


# -- The database ----------------------------------------------------------------


def statement_timeout_kwargs(database_url: str, seconds: float) -> dict[str, str]:
    """Connection keywords that cap each statement at ``seconds`` (none when 0),
    keeping any ``options`` the URL already has."""
    if seconds <= 0:
        return {}
    options = str(conninfo_to_dict(database_url).get("options") or "")
    timeout = f"-c statement_timeout={max(1, round(seconds * 1000))}"
    return {"options": f"{options} {timeout}".strip()}
