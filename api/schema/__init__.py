"""The GraphQL schema, assembled from its areas."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.config import StrawberryConfig

from api.schema.accounts import AccountQueries
from api.schema.audit import AuditQueries
from api.schema.complaints import ComplaintMutations, ComplaintQueries
from api.schema.deals import DealMutations
from api.schema.follow_ups import FollowUpMutations, FollowUpQueries
from api.schema.health import HealthQueries
from api.schema.mutations import AccountMutations, CommandIds
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


def build_schema(limits: Sequence[Callable[[], SchemaExtension]] = ()) -> strawberry.Schema:
    """The schema, with ``limits`` (see ``api.hardening``) checked before the rest."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=[
            *limits,
            CommandIds,
            partial(MaskErrors, should_mask_error=_unexpected),
        ],
    )


# Without limits: for `rapport schema` and in-process callers; the API builds its own.
schema = build_schema()
