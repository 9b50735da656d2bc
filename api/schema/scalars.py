"""Scalars, enums and connection plumbing shared by every area of the schema."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Generic, NewType, TypeVar

import strawberry
from strawberry.types.scalar import ScalarDefinition

from domain.values import (
    AccountKind,
    Channel,
    Classification,
    ContactChannelKind,
    Direction,
    Influence,
    OccasionKind,
    RelationshipType,
    Stage,
    Tier,
)

__all__ = [
    "AccountKind",
    "Channel",
    "Classification",
    "ContactChannelKind",
    "Direction",
    "Influence",
    "MoneyInput",
    "OccasionKind",
    "Position",
    "RelationshipType",
    "Stage",
    "Tier",
]

Position = NewType("Position", int)

SCALARS: dict[object, ScalarDefinition] = {
    Position: strawberry.scalar(
        name="Position",
        description="Place of an event in the global event order, a 64-bit integer "
        "sent as a JSON number. Positions become visible in increasing order: once "
        "a reader has seen position n, no event below n appears later. Numbers "
        "may be skipped.",
        serialize=int,
        parse_value=int,
    )
}

# The domain's vocabularies are the schema's enums (values in UPPER_CASE).
for _vocabulary in (
    AccountKind,
    Tier,
    Stage,
    RelationshipType,
    Classification,
    Influence,
    Channel,
    Direction,
    ContactChannelKind,
    OccasionKind,
):
    strawberry.enum(_vocabulary)


@strawberry.input(description="An exact amount: decimal text, never a float.")
class MoneyInput:
    amount: str = strawberry.field(
        description="Positive, with no more decimals than the currency has: "
        "1250.50 (no sign, no exponent)."
    )
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR.")


T = TypeVar("T")


@strawberry.type(description="Relay page information; pages go forward only.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="True when this page was asked for with `after`."
    )
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


class InvalidArgument(ValueError):
    """A query argument the client got wrong; its message is shown as is."""


def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode()


def decode_cursor(cursor: str, *parts: Callable[[str], Any]) -> tuple[Any, ...]:
    """The keyset behind ``cursor``, each part parsed by the matching function."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not (
            isinstance(key, list)
            and len(key) == len(parts)
            and all(isinstance(k, str) for k in key)
        ):
            raise InvalidArgument
        return tuple(parse(k) for parse, k in zip(parts, key, strict=True))
    except (ValueError, TypeError):
        raise InvalidArgument(f"not a cursor of this list: {cursor!r}") from None


def page_size(first: int, maximum: int) -> int:
    if not 1 <= first <= maximum:
        raise InvalidArgument(f"first must be between 1 and {maximum}")
    return first


def connection(
    nodes: list[T], keys: list[tuple[Any, ...]], limit: int, *, after: str | None
) -> Connection[T]:
    """A page from ``limit + 1`` fetched rows: the extra row only says there is more."""
    edges = [
        Edge(cursor=encode_cursor(*key), node=node)
        for node, key in zip(nodes[:limit], keys[:limit], strict=True)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(nodes) > limit,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
