"""The GraphQL schema, assembled from its areas."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, ParserCache, SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig

from api.answers import KeptAnswers
from api.schema.accounts import AccountQueries
from api.schema.audit import AuditQueries
from api.schema.complaints import ComplaintMutations, ComplaintQueries
from api.schema.deals import DealMutations
from api.schema.follow_ups import FollowUpMutations, FollowUpQueries
from api.schema.health import HealthQueries
from api.schema.mutations import AccountMutations
from api.schema.occasions import OccasionQueries
from api.schema.scalars import SCALARS, InvalidArgument
from api.schema.subscriptions import Subscription
from api.schema.surveys import SurveyMutations, SurveyQueries
from api.schema.webhooks import WebhookMutations, WebhookQueries


@strawberry.type
class Query(
    AccountQueries,
    AuditQueries,
    WebhookQueries,
    ComplaintQueries,
    SurveyQueries,
    FollowUpQueries,
    HealthQueries,
    OccasionQueries,
):
    pass


@strawberry.type
class Mutation(
    AccountMutations,
    WebhookMutations,
    ComplaintMutations,
    SurveyMutations,
    DealMutations,
    FollowUpMutations,
):
    pass


def _unexpected(error: GraphQLError) -> bool:
    """Mask errors that are not the client's to fix: they could leak internals.

    Invalid arguments and GraphQL's own errors (a variable of the wrong shape)
    are the client's, and say what to fix.
    """
    original = error.original_error
    return original is not None and not isinstance(original, InvalidArgument | GraphQLError)


# Distinct documents kept parsed and validated (the API's clients send few).
DOCUMENT_CACHE = 1000


class ParseOnce(ParserCache):
    """Parses each distinct document once; leaves alone a document an earlier
    extension has already settled (a refused persisted query)."""

    def on_parse(self) -> Iterator[None]:
        if self.execution_context.graphql_document is None:
            yield from super().on_parse()
        else:
            yield


class ValidateOnce(ValidationCache):
    """Validates each distinct document once; keeps errors already found."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors is None:
            yield from super().on_validate()
        else:
            yield


def build_schema(
    limits: Sequence[Callable[[], SchemaExtension]] = (), *, keep_answers: bool = False
) -> strawberry.Schema:
    """The schema, with ``limits`` (see ``api.hardening``) checked before the rest;
    with ``keep_answers``, queries are answered from what the runtime kept
    (``api.answers``) when they can be."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=[
            *limits,
            # The same documents come again and again: parse and validate once.
            partial(ParseOnce, maxsize=DOCUMENT_CACHE),
            partial(ValidateOnce, maxsize=DOCUMENT_CACHE),
            partial(MaskErrors, should_mask_error=_unexpected),
            *([KeptAnswers] if keep_answers else []),
        ],
    )


# Without limits: for `rapport schema` and in-process callers; the API builds its own.
schema = build_schema()
