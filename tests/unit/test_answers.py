"""Which documents' answers may be kept (``api.answers``)."""

from __future__ import annotations

from uuid import UUID

import pytest
from graphql import GraphQLObjectType, parse

from api.answers import EVERY_VIEW, KEPT_FIELDS, Answers, keepable
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


ONE = "00000000-0000-0000-0000-000000000001"
TWO = "00000000-0000-0000-0000-000000000002"


@pytest.mark.parametrize(
    ("document", "variables", "scope"),
    [
        ("query ($id: UUID!) { account(id: $id) { id } }", {"id": ONE}, (UUID(ONE),)),
        (f'query {{ account(id: "{TWO}") {{ id }} __typename }}', None, (UUID(TWO),)),
        (
            "query ($a: UUID!) { x: account(id: $a) { id }"
            f' y: account(id: "{ONE}") {{ id }} }}',
            {"a": TWO},
            (UUID(ONE), UUID(TWO)),
        ),
        # Lists, fragments and directives: by every view.
        ("query { accounts { edges { cursor } } }", None, EVERY_VIEW),
        (
            f'query {{ ...F }} fragment F on Query {{ account(id: "{ONE}") {{ id }} }}',
            None,
            EVERY_VIEW,
        ),
        (
            "query ($id: UUID!, $x: Boolean!) { account(id: $id) @include(if: $x) { id } }",
            {"id": ONE, "x": True},
            EVERY_VIEW,
        ),
        # Not an account's id: nothing kept.
        ("query ($id: UUID!) { account(id: $id) { id } }", {"id": "nope"}, None),
        ("query ($id: UUID!) { account(id: $id) { id } }", {}, None),
    ],
)
def test_answers_are_kept_by_the_accounts_named_at_the_root(document, variables, scope):
    keeping = keepable(GRAPHQL_SCHEMA, parse(document))
    assert keeping is not None
    assert keeping.scope(variables) == scope


def test_a_scope_that_moved_drops_its_answers_and_no_others():
    answers = Answers(max_answers=10)
    one, two = (UUID(ONE),), (UUID(TWO),)
    answers.put(one, (1,), ("q",), {"a": 1})
    answers.put(two, (5,), ("q",), {"a": 2})
    assert answers.get(one, (1,), ("q",)) == {"a": 1}
    assert answers.get(one, (3,), ("q",)) is None  # moved on
    assert answers.get(one, (1,), ("q",)) is None  # and gone
    assert answers.get(two, (5,), ("q",)) == {"a": 2}


def test_misses_leave_nothing_behind_and_the_oldest_answer_goes_first():
    answers = Answers(max_answers=2)
    for i in range(100):
        assert answers.get((UUID(int=i),), (i,), ("q",)) is None
    assert not answers._standing  # noqa: SLF001
    for i in range(3):
        answers.put((UUID(int=i),), (i,), ("q",), {"n": i})
    assert answers.get((UUID(int=0),), (0,), ("q",)) is None
    assert answers.get((UUID(int=2),), (2,), ("q",)) == {"n": 2}
    assert len(answers._standing) == 2  # noqa: SLF001


def test_an_answer_worked_out_under_an_older_standing_is_not_put_over_a_newer():
    answers = Answers(max_answers=10)
    one = (UUID(ONE),)
    answers.put(one, (2,), ("q",), {"new": True})
    answers.put(one, (1,), ("q",), {"new": False})
    assert answers.get(one, (2,), ("q",)) == {"new": True}
