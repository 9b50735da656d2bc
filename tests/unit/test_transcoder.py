"""The store's transcoder reads back exactly what eventsourcing's reads."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from domain.account import Account
from domain.application import Accounts
from domain.values import AccountKind, Address, Channel, Direction
from eventstore.transcoder import StoreTranscoder


def _transcoders() -> tuple[JSONTranscoder, JSONTranscoder]:
    """eventsourcing's, and the store's, each with every transcoding Rapport registers."""
    plain = Accounts().mapper.transcoder
    store = Accounts(
        env={"TRANSCODER_TOPIC": "eventstore.transcoder:StoreTranscoder"}
    ).mapper.transcoder
    assert type(plain) is JSONTranscoder
    assert isinstance(store, StoreTranscoder)
    return plain, store


def _names(encoded: bytes) -> set[str]:
    """The transcodings an encoded value uses."""
    names: set[str] = set()
    json.loads(encoded, object_hook=lambda d: names.add(d.get("_type_", "")) or d)
    return names


def _history() -> list[dict]:
    account = Account.open(
        name="Quill & Co",
        kind=AccountKind.ORGANIZATION,
        address=Address(street="1 Ink Row", city="Leeds", postal_code="LS1", country="GB"),
        founded_on=date(1999, 4, 1),
    )
    contact_id = uuid4()
    account.add_contact(contact_id=contact_id, name="Ann Lee", email="ann@x.example")
    for minute in range(3):
        account.log_interaction(
            interaction_id=uuid4(),
            channel=Channel.CALL,
            direction=Direction.OUTBOUND,
            occurred_at=datetime(2026, 1, 2, 3, minute, tzinfo=UTC),
            participants=("Ann Lee",),
            summary="Talked",
            effort_minutes=5,
        )
    return [dict(vars(event)) for event in account.collect_events()]


def test_every_event_of_a_history_reads_back_the_same():
    plain, store = _transcoders()
    history = _history()
    assert {"uuid_hex", "datetime_iso", "address", "date_iso"} <= {
        name for state in history for name in _names(plain.encode(state))
    }
    for state in history:
        encoded = plain.encode(state)
        assert store.encode(state) == encoded  # the same bytes written
        assert store.decode(encoded) == plain.decode(encoded)


@pytest.mark.parametrize(
    "value",
    [
        uuid4(),
        UUID(int=0),
        datetime(2026, 11, 23, 17, 0, 1, 5, tzinfo=UTC),
        Decimal("12.50"),
        date(2026, 2, 28),
        [uuid4(), {"nested": datetime(2020, 1, 1, tzinfo=UTC)}],
        # Not a transcoded value: an object with other keys stays an object.
        {"_type_": "uuid_hex", "_data_": "0" * 32, "more": 1},
        {"_type_": "uuid_hex"},
    ],
)
def test_each_value_reads_back_as_eventsourcing_reads_it(value):
    plain, store = _transcoders()
    encoded = plain.encode({"value": value})
    decoded = store.decode(encoded)
    assert decoded == plain.decode(encoded) == {"value": value}
    assert type(decoded["value"]) is type(value)


@pytest.mark.parametrize(
    "data",
    [
        "12345678-1234-5678-1234-567812345678",
        "{12345678123456781234567812345678}",
        "\u0663" * 32,  # another script's digits, which UUID() takes
    ],
)
def test_uuid_digits_in_another_form_go_through_uuids_own_parser(data):
    plain, store = _transcoders()
    encoded = json.dumps({"_type_": "uuid_hex", "_data_": data}).encode()
    assert store.decode(encoded) == plain.decode(encoded) == UUID(data)


def test_uuid_digits_that_are_not_a_uuid_are_refused_as_uuid_refuses_them():
    _, store = _transcoders()
    # Strings int() alone might take: UUID() refuses these, as before.
    for data in ("z" * 32, "abc", "-" + "0" * 31, "-" + "f" * 31, "0_" * 16):
        encoded = json.dumps({"_type_": "uuid_hex", "_data_": data}).encode()
        with pytest.raises(ValueError):  # noqa: PT011 - UUID()'s and int()'s own
            store.decode(encoded)


def test_an_unknown_type_is_an_error_as_in_eventsourcing():
    plain, store = _transcoders()
    encoded = b'{"_type_": "no_such_type", "_data_": 1}'
    for transcoder in (plain, store):
        with pytest.raises(TranscodingNotRegisteredError, match="no_such_type"):
            transcoder.decode(encoded)
