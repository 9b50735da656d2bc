"""The store's JSON transcoder: eventsourcing's, with a quicker way back.

It writes the bytes ``JSONTranscoder`` writes and reads everything it reads;
only the reading is cheaper. ``JSONTranscoder`` turns each
``{"_type_": name, "_data_": data}`` object back through its transcoding's
``decode`` method, and a UUID through ``UUID()``'s parser. Here each name maps
to one function, and for the two an event holds most (its moments and its
ids) that function is ``datetime.fromisoformat`` or builds the UUID from its
digits directly. Reading history (rebuilds, time travel, a command's
fast-forward) spends most of its time in that hook.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Transcoding,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

from domain.account import uuid_of_hex

UUID_HEX_DIGITS = 32


def _uuid(data: str) -> UUID:
    """What ``UUIDAsHex`` decodes, built directly when it is 32 ASCII letters
    and digits, as ``UUID.hex`` writes (``int()`` refuses any that is not a
    hex digit); anything else, a sign or a separator, goes through ``UUID()``."""
    if len(data) == UUID_HEX_DIGITS and data.isascii() and data.isalnum():
        return uuid_of_hex(data)
    return UUID(data)


# eventsourcing's own transcodings, and the function that decodes the same.
_QUICKER: dict[type[Transcoding], Callable[[Any], Any]] = {
    UUIDAsHex: _uuid,
    DatetimeAsISO: datetime.fromisoformat,
}


class StoreTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        self._decoders: dict[str, Callable[[Any], Any]] = {}
        super().__init__()

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._decoders[transcoding.name] = _QUICKER.get(
            type(transcoding), transcoding.decode
        )

    def _decode_obj(self, d: dict[str, Any]) -> Any:
        # JSONTranscoder's rule: an object of exactly _type_ and _data_ is a
        # transcoded value, and an unknown _type_ is an error.
        if len(d) == 2 and "_type_" in d and "_data_" in d:  # noqa: PLR2004
            try:
                decode = self._decoders[d["_type_"]]
            except KeyError:
                msg = (
                    f"Data serialized with name '{d['_type_']}' is not "
                    "deserializable. Please register a custom transcoding for this type."
                )
                raise TranscodingNotRegisteredError(msg) from None
            return decode(d["_data_"])
        return d
