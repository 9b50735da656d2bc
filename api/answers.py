"""Answers kept until the views move: a read that asks the same again is not run again.

A query's answer is kept when every field it selects is in ``KEPT_FIELDS``:
fields worked out from the views' rows alone, with no clock (a period's
duration, days since the last contact, health and breaches all count until
now) and no other table (history reads the event log). A field left out of
the list is never kept, so a new field is safe until someone lists it.

An answer is kept for one principal (what it may see depends on who asks),
one document, one operation and one set of variables, under where every view
stood before it was worked out (``Runtime.views_standing``, read in one query
at the start of each request that could be answered from what was kept). A
request that finds the views standing elsewhere drops every kept answer.
Answers with errors are not kept, and neither are those of operations on a
websocket: a websocket's context, and the rows its loaders hold, last as long
as the connection. If the views' standing cannot be read, the query is worked
out as if nothing were kept.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)
from graphql.type import get_named_type
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from api.auth import Principal

log = logging.getLogger("rapport.api")

KEPT_FIELDS: dict[str, frozenset[str]] = {
    "Query": frozenset({"account", "accounts"}),
    "Account": frozenset(
        {
            "id",
            "version",
            "name",
            "kind",
            "businessCategory",
            "address",
            "channels",
            "specialRequirements",
            "purchaseCharacteristics",
            "foundedOn",
            "tier",
            "stage",
            "relationshipType",
            "classification",
            "manager",
            "interactionCount",
            "pendingWrittenConfirmations",
            "personalDataErased",
            "lastInteractionAt",
            "openComplaints",
            "openedAt",
            "updatedAt",
            "position",
            "contacts",
            "stageHistory",
            "tierHistory",
            "managerHistory",
            "interactions",
        }
    ),
    "Address": frozenset({"street", "city", "postalCode", "country"}),
    "ContactChannel": frozenset({"kind", "value"}),
    "Contact": frozenset(
        {
            "id",
            "name",
            "role",
            "influence",
            "email",
            "phone",
            "birthday",
            "preferences",
            "erased",
        }
    ),
    # Not durationSeconds: an open period counts until now.
    "Period": frozenset(
        {"value", "previous", "enteredAt", "leftAt", "reason", "actor", "position"}
    ),
    "Interaction": frozenset(
        {
            "id",
            "channel",
            "direction",
            "occurredAt",
            "participants",
            "summary",
            "outcome",
            "effortMinutes",
            "oral",
            "loggedBy",
            "confirmedAt",
            "confirmationChannel",
            "confirmationNote",
            "occasion",
            "awaitingConfirmation",
            "cost",
        }
    ),
    "GreetedOccasion": frozenset({"kind", "contactId", "year"}),
    "Money": frozenset({"amount", "currency"}),
    "InteractionConnection": frozenset({"edges", "pageInfo"}),
    "InteractionEdge": frozenset({"node", "cursor"}),
    "AccountConnection": frozenset({"edges", "pageInfo"}),
    "AccountEdge": frozenset({"node", "cursor"}),
    "PageInfo": frozenset({"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}),
}
"""Per type, the fields whose values come from the views' rows alone."""

TYPENAME = "__typename"
STANDING = "rapport.views_standing"
"""Where a request's scope holds the views' standing, once read for it."""


def keepable(schema: GraphQLSchema, document: DocumentNode) -> bool:
    """Are the document's operations all queries, selecting only kept fields?"""
    if not all(
        definition.operation is OperationType.QUERY
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ):
        return False
    info = TypeInfo(schema)
    check = _KeptFieldsOnly(info)
    visit(document, TypeInfoVisitor(info, check))
    return check.kept


class _KeptFieldsOnly(Visitor):
    def __init__(self, info: TypeInfo) -> None:
        super().__init__()
        self.info = info
        self.kept = True

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        parent = self.info.get_parent_type()
        name = node.name.value
        if name == TYPENAME:
            return None
        if parent is None or name not in KEPT_FIELDS.get(get_named_type(parent).name, ()):
            self.kept = False
            return self.BREAK
        return None


class Answers:
    """The answers one process keeps, for the views as they stand now.

    An answer is kept under where the views stood (``Runtime.views_standing``)
    before it was worked out: what it read of them is at least that recent.
    When a request finds them standing elsewhere, every kept answer is
    dropped. At most ``max_answers`` are kept, the least recently asked for
    going first.
    """

    def __init__(self, max_answers: int) -> None:
        self.max_answers = max_answers
        self._standing: tuple[str | None, ...] = ()
        self._answers: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._encoded: dict[tuple[Any, ...], bytes] = {}
        self._keepable: OrderedDict[tuple[str, str | None], bool] = OrderedDict()
        self.hits = 0
        """Requests answered from what was kept (``early`` of them before routing)."""
        self.early = 0
        self.misses = 0

    def keepable(
        self,
        schema: GraphQLSchema,
        query: str,
        operation: str | None,
        document: DocumentNode,
    ) -> bool:
        """``keepable``, worked out once per document text."""
        key = (query, operation)
        found = self._keepable.get(key)
        if found is not None:
            self._keepable.move_to_end(key)
        else:
            found = keepable(schema, document)
            self._keepable[key] = found
            if len(self._keepable) > self.max_answers:
                self._keepable.popitem(last=False)
        return found

    def known_keepable(self, query: str, operation: str | None) -> bool:
        """Was ``query`` run here already, and found keepable?"""
        found = self._keepable.get((query, operation))
        if found is None:
            return False
        self._keepable.move_to_end((query, operation))
        return found

    def get(
        self, standing: tuple[str | None, ...], key: tuple[Any, ...]
    ) -> dict[str, Any] | None:
        found = self._find(standing, key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def _find(
        self, standing: tuple[str | None, ...], key: tuple[Any, ...]
    ) -> dict[str, Any] | None:
        if standing != self._standing:
            self._answers.clear()
            self._encoded.clear()
            self._standing = standing
        found = self._answers.get(key)
        if found is not None:
            self._answers.move_to_end(key)
        return found

    def put(
        self, standing: tuple[str | None, ...], key: tuple[Any, ...], data: dict[str, Any]
    ) -> None:
        if standing != self._standing:
            return
        self._answers[key] = data
        self._encoded.pop(key, None)
        if len(self._answers) > self.max_answers:
            dropped, _ = self._answers.popitem(last=False)
            self._encoded.pop(dropped, None)

    def encoded(
        self, standing: tuple[str | None, ...], key: tuple[Any, ...]
    ) -> bytes | None:
        """The kept answer as the HTTP view would send it, JSON encoded once;
        counted by ``answered_early`` once it is sent."""
        data = self._find(standing, key)
        if data is None:
            return None
        found = self._encoded.get(key)
        if found is None:
            found = self._encoded[key] = encode_answer(data)
        return found

    def answered_early(self) -> None:
        self.hits += 1
        self.early += 1


def encode_answer(data: dict[str, Any]) -> bytes:
    """An answer's body, as strawberry's HTTP view encodes it."""
    return json.dumps({"data": data}, separators=(",", ":")).encode()


def answer_key(
    principal: Principal, query: str, operation: str | None, variables: Any
) -> tuple[Any, ...] | None:
    """What an answer is kept under; None when the variables are not plain JSON."""
    try:
        values = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return (principal, query, operation, values)


class KeptAnswers(SchemaExtension):
    """Answers a query from the runtime's ``Answers`` when it can, and keeps
    what it works out. Runs after parsing and validation, and after the
    request's credential was checked and charged to its rate."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        runtime = getattr(context.context, "runtime", None)
        answers: Answers | None = getattr(runtime, "answers", None)
        principal = getattr(context.context, "principal", None)
        document = context.graphql_document
        query = context.query
        # As the client sent it (None for none): what api.kept_http looks up by.
        operation = getattr(context, "_provided_operation_name", context.operation_name)
        key = (
            None
            if answers is None
            or runtime is None
            or principal is None
            or document is None
            or query is None
            or context.pre_execution_errors
            or not answers.keepable(
                context.schema._schema,  # noqa: SLF001 - graphql-core's, for TypeInfo
                query,
                operation,
                document,
            )
            else answer_key(principal, query, operation, context.variables)
        )
        if (
            answers is None
            or runtime is None
            or key is None
            or isinstance(getattr(context.context, "request", None), WebSocket)
        ):
            yield
            return
        request = getattr(context.context, "request", None)
        # Read already on the way in (api.kept_http), before this execution.
        standing = None if request is None else request.scope.get(STANDING)
        if standing is None:
            try:
                standing = await runtime.views_standing()
            except psycopg.Error:
                log.warning(
                    "cannot read where the views stand; nothing kept", exc_info=True
                )
                yield
                return
        found = answers.get(standing, key)
        if found is not None:
            context.result = ExecutionResult(data=found)
            yield
            return
        yield
        result = context.result
        if isinstance(result, ExecutionResult) and not result.errors and result.data:
            answers.put(standing, key, result.data)
