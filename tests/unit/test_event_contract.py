"""docs/events.md and the JSON Schemas are what downstream teams code against:
they must say what the code does."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from uuid import uuid4

import pytest

from domain.account import Account
from domain.values import AccountKind, Address, Influence
from eventstore.audit import jsonable
from eventstore.contract import ENVELOPE, contract

DOCS = Path(__file__).parents[2] / "docs"


def test_the_contract_in_docs_is_current():
    stale = [
        path
        for path, text in contract().items()
        if not (DOCS / path).exists() or (DOCS / path).read_text() != text
    ]
    assert stale == [], f"run `make contract`: {stale} differ"


def _conforms(value, schema):  # noqa: PLR0911 - one answer per JSON type
    """A small JSON Schema check for the keywords the contract uses."""
    if "anyOf" in schema:
        return any(_conforms(value, option) for option in schema["anyOf"])
    kind = schema["type"]
    if kind == "null":
        return value is None
    if kind == "string":
        return isinstance(value, str) and value in schema.get("enum", [value])
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list) and all(_conforms(v, schema["items"]) for v in value)
    return (
        isinstance(value, dict)
        and set(value) == set(schema["required"])
        and all(_conforms(value[k], s) for k, s in schema["properties"].items())
    )


@pytest.mark.parametrize("erase", [False, True])
def test_payloads_conform_to_their_schemas(erase):
    account = Account.open(
        name="Contract Ltd",
        kind=AccountKind.ORGANIZATION,
        address=Address(city="Lyon", country="FR"),
    )
    contact_id = uuid4()
    account.add_contact(
        contact_id=contact_id,
        name="Ann",
        influence=Influence.HIGH,
        birthday=date(1980, 1, 2),
    )
    account.update_contact(contact_id=contact_id, email="ann@x.example")
    if erase:
        account.erase_personal_data(reason="REQ-1")
    files = contract()
    for event in account.collect_events():
        name = type(event).__name__
        version = getattr(type(event), "class_version", 1)
        schema = json.loads(files[f"events/{name}.v{version}.schema.json"])
        payload = {k: jsonable(v) for k, v in vars(event).items() if k not in ENVELOPE}
        assert _conforms(payload, schema), (name, payload)
