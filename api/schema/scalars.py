"""Scalars, enums and connection plumbing shared by every area of the schema."""

from __future__ import annotations

import base64
import json
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
    "Position",
    "RelationshipType",
    "Stage",
    "Tier",
]

Position = NewType("Position", int)

SCALARS: dict[object, ScalarDefinition] = {
    Position: strawberry.scalar(
        name="Position",
        description="Place of an event in the global, gap-free event order "
        "(a 64-bit integer, sent as a JSON number).",
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
):
    strawberry.enum(_vocabulary)

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


class InvalidCursor(ValueError):
    pass


def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode()


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise InvalidCursor(f"not a cursor of this list: {cursor!r}") from None
    if not isinstance(key, list) or len(key) != arity:
        raise InvalidCursor(f"not a cursor of this list: {cursor!r}")
    return key


def page_size(first: int, maximum: int) -> int:
    if not 1 <= first <= maximum:
        raise ValueError(f"first must be between 1 and {maximum}")
    return first


def connection(nodes: list[T], keys: list[tuple[Any, ...]], limit: int) -> Connection[T]:
    """A page from ``limit + 1`` fetched rows: the extra row only says there is more."""
    edges = [
        Edge(cursor=encode_cursor(*key), node=node)
        for node, key in zip(nodes[:limit], keys[:limit], strict=True)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(nodes) > limit,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
