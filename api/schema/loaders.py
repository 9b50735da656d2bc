"""DataLoaders kept beside the areas that use them, one set per request.

Each loader batches the keys of one request (every account of a page) into
one query. Keys carry the account's version: a subscription's context lives
on across changes, and a new version is a new key, so what it reads after a
change is never an answer loaded before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from strawberry.dataloader import DataLoader

from api.context import Context, Info
from api.runtime import Runtime

K = TypeVar("K", bound=Hashable)

Load = Callable[[Runtime, list[K]], Awaitable[list[Any]]]

_LOADERS: WeakKeyDictionary[Context, dict[str, DataLoader[Any, Any]]] = WeakKeyDictionary()


def request_loader(info: Info, name: str, load: Load[K]) -> DataLoader[K, Any]:
    """The request's loader called ``name``, made on first use.

    ``load`` gets the runtime, never the context: a loader that held its
    context would keep it alive in this weak map forever.
    """
    loaders = _LOADERS.setdefault(info.context, {})
    if name not in loaders:
        runtime = info.context.runtime

        async def batch(keys: list[K]) -> list[Any]:
            return await load(runtime, keys)

        loaders[name] = DataLoader(load_fn=batch)
    return loaders[name]
