"""Kept answers sent before a request reaches FastAPI and strawberry (``api.answers``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.answers import STANDING, Answers, answer_key, standing_of
from api.auth import Unauthenticated
from api.context import credential_in
from api.hardening import principal_key, replaying, send_json

JSON = "application/json"


class AnswerKeptFirst:
    """Sends a kept answer before the request reaches FastAPI and strawberry.

    Only for a POST to ``path`` whose JSON body holds a query, maybe its
    variables and operation name, and nothing else (a persisted query goes
    the whole way), that this process has run before and found keepable
    (``Answers.known_keeping``), under a credential that authenticates, and
    whose answer is kept for the views as they stand. The request is charged
    to its credential's rate as it would be further on. Anything else, and a
    request the rate refuses, goes on to the application as it came, which
    answers it (with the error it deserves).
    """

    def __init__(self, app: ASGIApp, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or getattr(getattr(scope["app"].state, "runtime", None), "answers", None)
            is None
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        answer = await _kept_answer(scope, body)
        if answer is None:
            await self.app(scope, replaying(body, receive), send)
            return
        await send_json(send, 200, answer)


REQUEST_FIELDS = frozenset({"query", "variables", "operationName"})


async def _kept_answer(scope: Scope, body: bytes) -> bytes | None:
    """The kept answer to this request, if it has one and may have it now."""
    state = scope["app"].state
    runtime = state.runtime
    answers: Answers = runtime.answers
    asked = _asked(scope, body)
    if asked is None:
        return None
    keeping = answers.known_keeping(asked.query, asked.operation)
    kept_in = None if keeping is None else keeping.scope(asked.variables)
    if kept_in is None:
        return None
    try:
        principal = await runtime.authenticate(asked.credential)
    except Unauthenticated:
        return None
    key = answer_key(principal, asked.query, asked.operation, asked.variables)
    standing = None if key is None else await standing_of(runtime, kept_in)
    if key is None or standing is None:
        return None
    scope[STANDING] = (kept_in, standing)  # for the execution, if the request goes on
    answer = answers.encoded(kept_in, standing, key)
    if (
        answer is None
        or state.limiter.take(principal_key(principal.credential)) is not None
    ):
        # A refused request goes on, to be refused with when to come back.
        return None
    answers.answered_early()
    return answer


@dataclass(frozen=True)
class Asked:
    credential: str
    query: str
    operation: str | None
    variables: dict[str, Any] | None


def _asked(scope: Scope, body: bytes) -> Asked | None:
    """What a plain JSON query asks, with its credential; None for anything else."""
    headers = Headers(scope=scope)
    credential = credential_in(headers)
    if credential is None or headers.get("content-type", "").split(";")[0] != JSON:
        return None
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(request, dict) or not request.keys() <= REQUEST_FIELDS:
        return None
    query, operation = request.get("query"), request.get("operationName")
    variables = request.get("variables")
    if (
        not isinstance(query, str)
        or not isinstance(operation, str | None)
        or not isinstance(variables, dict | None)
    ):
        return None
    return Asked(credential, query, operation, variables)
