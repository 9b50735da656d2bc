"""Answers kept until the views move: a read that asks the same again is not run again.

A query's answer is kept when every field it selects is in ``KEPT_FIELDS``:
fields worked out from the views' rows alone, with no clock (a period's
duration, days since the last contact, health and breaches all count until
now) and no other table (history reads the event log). A field left out of
the list is never kept, so a new field is safe until someone lists it.

An answer is kept for one principal (what it may see depends on who asks),
one document, one operation and one set of variables, under where its scope
stood before it was worked out (``Runtime.standing``, one query at the start
of each request that could be answered from what was kept):

- A document whose root fields are all ``account(id:)`` depends on those
  accounts' rows only, which change only when one of their events is taken
  in, or in a rebuild. Its scope stands at the position of each account's
  latest event and at the number of rebuilds the views have had (counted in
  ``view_rebuilds`` by each rebuild's own transaction), and answers are kept
  only once every view has taken those events in.
- Any other document depends on every view: its scope stands at each view's
  position and the transaction that last wrote its tracking row, which any
  write to a view, a rebuild included, changes.

A request that finds its scope standing elsewhere drops the scope's kept
answers. Answers with errors are not kept, and neither are those of
operations on a websocket: a websocket's context, and the rows its loaders
hold, last as long as the connection. If the standing cannot be read, the
query is worked out as if nothing were kept.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import psycopg
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    VariableNode,
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
LONGEST_KEPT = 16_384
"""Characters of document and variables beyond which an answer is not kept:
the number of kept answers then bounds the memory their keys take too."""
STANDING = "rapport.standing"
"""Where a request's ASGI scope holds (scope, standing), once read for it."""


@dataclass(frozen=True)
class Keeping:
    """How the answers of a keepable document are kept.

    When every root field is ``account(id:)``, by those accounts: each is
    given by a variable (``(True, name)``) or written in the document
    (``(False, text)``). Otherwise (``accounts`` None), by where every view
    stands.
    """

    accounts: tuple[tuple[bool, str], ...] | None

    def scope(self, variables: dict[str, Any] | None) -> Scope | None:
        """The accounts this request's answer depends on (``EVERY_VIEW`` for
        all of them); None when an id is not one."""
        if self.accounts is None:
            return EVERY_VIEW
        try:
            return tuple(
                sorted(
                    {
                        UUID(str((variables or {})[text] if variable else text))
                        for variable, text in self.accounts
                    }
                )
            )
        except (KeyError, ValueError):
            return None


Scope = tuple[UUID, ...] | Literal["every view"]
EVERY_VIEW: Scope = "every view"
Standing = tuple[Any, ...]


def keepable(schema: GraphQLSchema, document: DocumentNode) -> Keeping | None:
    """How the document's answers are kept, if its operations are all
    queries selecting only kept fields."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not all(o.operation is OperationType.QUERY for o in operations):
        return None
    info = TypeInfo(schema)
    check = _KeptFieldsOnly(info)
    visit(document, TypeInfoVisitor(info, check))
    if not check.kept:
        return None
    return Keeping(_accounts_named(document, operations))


def _accounts_named(
    document: DocumentNode, operations: list[OperationDefinitionNode]
) -> tuple[tuple[bool, str], ...] | None:
    """Each root ``account(id:)``'s id, if those are the only root fields."""
    if len(operations) != 1 or len(document.definitions) != 1:
        return None  # fragments or several operations: by every view
    named: list[tuple[bool, str]] = []
    for selection in operations[0].selection_set.selections:
        if not isinstance(selection, FieldNode):
            return None
        if selection.name.value == TYPENAME:
            continue
        ids = [a.value for a in selection.arguments or () if a.name.value == "id"]
        if selection.name.value != "account" or len(ids) != 1 or selection.directives:
            return None
        value = ids[0]
        if isinstance(value, VariableNode):
            named.append((True, value.name.value))
        elif isinstance(value, StringValueNode):
            named.append((False, value.value))
        else:
            return None
    return tuple(named) if named else None


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

    An answer is kept under its scope (the accounts it depends on, or every
    view) and where that scope stood before it was worked out
    (``Runtime.standing``): what it read is at least that recent. When a
    request finds a scope standing elsewhere, the scope's kept answers are
    dropped. At most ``max_answers`` are kept, the least recently asked for
    going first.
    """

    def __init__(self, max_answers: int) -> None:
        self.max_answers = max_answers
        self._answers: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._encoded: dict[tuple[Any, ...], bytes] = {}
        self._standing: dict[Scope, Standing] = {}
        self._kept_in: dict[Scope, set[tuple[Any, ...]]] = {}
        self._keeping: OrderedDict[tuple[str, str | None], Keeping | None] = OrderedDict()
        self.hits = 0
        """Requests answered from what was kept (``early`` of them before routing)."""
        self.early = 0
        self.misses = 0

    def keeping(
        self,
        schema: GraphQLSchema,
        query: str,
        operation: str | None,
        document: DocumentNode,
    ) -> Keeping | None:
        """``keepable``, worked out once per document text."""
        key = (query, operation)
        if key in self._keeping:
            self._keeping.move_to_end(key)
            return self._keeping[key]
        found = self._keeping[key] = keepable(schema, document)
        if len(self._keeping) > self.max_answers:
            self._keeping.popitem(last=False)
        return found

    def known_keeping(self, query: str, operation: str | None) -> Keeping | None:
        """How ``query``'s answers are kept, if it was run here already and is keepable."""
        key = (query, operation)
        if key not in self._keeping:
            return None
        self._keeping.move_to_end(key)
        return self._keeping[key]

    def get(
        self, scope: Scope, standing: Standing, key: tuple[Any, ...]
    ) -> dict[str, Any] | None:
        found = self._find(scope, standing, key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def _find(
        self, scope: Scope, standing: Standing, key: tuple[Any, ...]
    ) -> dict[str, Any] | None:
        if self._standing.get(scope, standing) != standing:
            self._drop(scope)
            return None
        found = self._answers.get((scope, key))
        if found is not None:
            self._answers.move_to_end((scope, key))
        return found

    def put(
        self, scope: Scope, standing: Standing, key: tuple[Any, ...], data: dict[str, Any]
    ) -> None:
        if self._standing.get(scope, standing) != standing:
            return  # the scope stood elsewhere meanwhile
        entry = (scope, key)
        self._answers[entry] = data
        self._encoded.pop(entry, None)
        self._kept_in.setdefault(scope, set()).add(entry)
        self._standing[scope] = standing
        if len(self._answers) > self.max_answers:
            dropped, _ = self._answers.popitem(last=False)
            self._encoded.pop(dropped, None)
            kept = self._kept_in[dropped[0]]
            kept.discard(dropped)
            if not kept:
                self._drop(dropped[0])

    def _drop(self, scope: Scope) -> None:
        """Forget ``scope``: its answers, and where it stood."""
        for dropped in self._kept_in.pop(scope, ()):
            self._answers.pop(dropped, None)
            self._encoded.pop(dropped, None)
        self._standing.pop(scope, None)

    def encoded(
        self, scope: Scope, standing: Standing, key: tuple[Any, ...]
    ) -> bytes | None:
        """The kept answer as the HTTP view would send it, JSON encoded once;
        counted by ``answered_early`` once it is sent."""
        data = self._find(scope, standing, key)
        if data is None:
            return None
        entry = (scope, key)
        found = self._encoded.get(entry)
        if found is None:
            found = self._encoded[entry] = encode_answer(data)
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
    """What an answer is kept under; None when the variables are not plain JSON,
    or when the document and variables take more than ``LONGEST_KEPT``."""
    try:
        values = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None
    if len(query) + len(values) > LONGEST_KEPT:
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
        request = getattr(context.context, "request", None)
        document, query = context.graphql_document, context.query
        # As the client sent it (None for none): what api.kept_http looks up by.
        operation = getattr(context, "_provided_operation_name", context.operation_name)
        if (
            answers is None
            or runtime is None
            or principal is None
            or document is None
            or query is None
            or context.pre_execution_errors
            or isinstance(request, WebSocket)
        ):
            yield
            return
        schema = context.schema._schema  # noqa: SLF001 - graphql-core's, for TypeInfo
        keeping = answers.keeping(schema, query, operation, document)
        scope = None if keeping is None else keeping.scope(context.variables)
        key = (
            None
            if scope is None
            else answer_key(principal, query, operation, context.variables)
        )
        read = None if request is None else request.scope.get(STANDING)
        if scope is None or key is None:
            standing = None
        elif read is not None and read[0] == scope:
            standing = read[1]  # read on the way in (api.kept_http), before this
        else:
            standing = await standing_of(runtime, scope)
        if scope is None or key is None or standing is None:
            yield
            return
        found = answers.get(scope, standing, key)
        if found is not None:
            context.result = ExecutionResult(data=found)
            yield
            return
        yield
        result = context.result
        if isinstance(result, ExecutionResult) and not result.errors and result.data:
            answers.put(scope, standing, key, result.data)


async def standing_of(runtime: Any, scope: Scope) -> Standing | None:
    """Where ``scope`` stands (``Runtime.standing``); None when it cannot be
    read, or when answers in it cannot be kept now."""
    try:
        found: Standing | None = await runtime.standing(scope)
    except psycopg.Error:
        now = time.monotonic()
        if now >= _quiet_until[0]:
            _quiet_until[0] = now + WARN_EVERY_SECONDS
            log.warning(
                "cannot read where the views stand; nothing kept (said at most every %d s)",
                WARN_EVERY_SECONDS,
                exc_info=True,
            )
        return None
    return found


WARN_EVERY_SECONDS = 60
_quiet_until = [0.0]
