"""The GraphQL schema, assembled from its areas."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from api.schema.accounts import AccountQueries
from api.schema.mutations import AccountMutations
from api.schema.scalars import SCALARS


@strawberry.type
class Query(AccountQueries):
    pass


@strawberry.type
class Mutation(AccountMutations):
    pass


schema = strawberry.Schema(
    query=Query, mutation=Mutation, config=StrawberryConfig(scalar_map=SCALARS)
)
