"""Which documents' answers may be kept (``api.answers``)."""

from __future__ import annotations

import pytest
from graphql import GraphQLObjectType, parse

from api.answers import KEPT_FIELDS, keepable
from api.schema import schema

GRAPHQL_SCHEMA = schema._schema  # noqa: SLF001 - graphql-core's, as the API's extension uses


@pytest.mark.parametrize(("type_name", "fields"), sorted(KEPT_FIELDS.items()))
def test_every_kept_field_is_a_field_of_the_schema(type_name, fields):
    found = GRAPHQL_SCHEMA.get_type(type_name)
    assert isinstance(found, GraphQLObjectType)
    assert fields <= set(found.fields)


@pytest.mark.parametrize(
    "document",
    [
        'query { account(id: "1") { id name contacts { name } } }',
        'query { account(id: "1") { __typename stageHistory { value leftAt } } }',
        'query { ...F } fragment F on Query { account(id: "1") { id } }',
        'query { a: account(id: "1") { id } b: account(id: "2") { version } }',
        "query { accounts { edges { node { id } cursor } pageInfo { endCursor } } }",
    ],
)
def test_queries_of_kept_fields_are_keepable(document):
    assert keepable(GRAPHQL_SCHEMA, parse(document))


@pytest.mark.parametrize(
    "document",
    [
        # Counts until now.
        'query { account(id: "1") { stageHistory { durationSeconds } } }',
        'query { account(id: "1") { id daysSinceLastContact } }',
        # The same, inside a fragment.
        'query { ...F } fragment F on Query { account(id: "1") { health { score } } }',
        'query { account(id: "1") { ... on Account { timeInStages { value } } } }',
        # Reads the event log.
        'query { account(id: "1") { history { edges { node { type } } } } }',
        # Not a query.
        "mutation { __typename }",
        # A query beside a mutation in one document.
        'query Q { account(id: "1") { id } } mutation M { __typename }',
    ],
)
def test_documents_with_any_other_field_are_not(document):
    assert not keepable(GRAPHQL_SCHEMA, parse(document))
