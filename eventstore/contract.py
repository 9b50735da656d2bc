"""The event contract downstream teams code against, generated from the code.

    python -m eventstore.contract docs     (make contract)

writes ``docs/events.md`` and one JSON Schema per event type and version in
``docs/events/``. Each schema describes an event's payload as Rapport hands it
out (history, and everything built on it): ids and times as strings, enums as
their values, personal values possibly ``[erased]``. A test fails when the
files are stale.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.account import PERSONAL_DATA, Account
from domain.personal import ERASED
from domain.values import Address, ContactChannel
from eventstore.audit import EVENT_TYPES

SCHEMA_ID = "https://rapport.invalid/events/"
# Fields every event has; they travel beside the payload, not in it.
ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def json_type(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of a value of the annotated Python type."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [json_type(arg) for arg in typing.get_args(annotation)]}
    if origin is tuple:
        return {"type": "array", "items": json_type(typing.get_args(annotation)[0])}
    if annotation is type(None):
        return {"type": "null"}
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return {"type": "string", "enum": [member.value for member in annotation]}
    simple = {
        str: {"type": "string"},
        int: {"type": "integer"},
        bool: {"type": "boolean"},
        UUID: {"type": "string", "format": "uuid"},
        datetime: {"type": "string", "format": "date-time"},
        date: {"type": "string", "format": "date"},
        # Exact decimal text, never a JSON number (a float would round it).
        Decimal: {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"},
    }
    if annotation in simple:
        return simple[annotation]
    if annotation in (Address, ContactChannel):
        hints = typing.get_type_hints(annotation)
        return {
            "type": "object",
            "properties": {name: json_type(hint) for name, hint in hints.items()},
            "required": list(hints),
            "additionalProperties": False,
        }
    msg = f"no JSON Schema for {annotation!r}"
    raise TypeError(msg)


def _fields(cls: type) -> dict[str, Any]:
    return {
        name: hint
        for name, hint in typing.get_type_hints(cls).items()
        if name not in ENVELOPE and typing.get_origin(hint) is not typing.ClassVar
    }


def versions(cls: type) -> dict[int, dict[str, Any]]:
    """Every version of an event class and its fields, newest last.

    Older versions are derived from the upcasters: the fields an upcaster
    adds to an empty payload are the ones its version introduced.
    """
    current = getattr(cls, "class_version", 1)
    fields = _fields(cls)
    shapes = {current: fields}
    for version in range(current - 1, 0, -1):
        added: dict[str, Any] = {}
        getattr(cls, f"upcast_v{version}_v{version + 1}")(added)
        fields = {k: v for k, v in fields.items() if k not in added}
        shapes[version] = fields
    return dict(sorted(shapes.items()))


def _doc(cls: type) -> str:
    """The docstring written for the class. eventsourcing makes each event a
    dataclass subclass of the same name, whose docstring is its signature."""
    for klass in cls.__mro__:
        if klass.__name__ != cls.__name__:
            break
        doc = " ".join((klass.__dict__.get("__doc__") or "").split())
        if doc and not doc.startswith(f"{cls.__name__}("):
            return doc
    return ""


def schema(name: str, version: int, fields: dict[str, Any]) -> dict[str, Any]:
    cls = getattr(Account, name)
    personal = PERSONAL_DATA.get(cls)
    properties = {}
    for field, hint in fields.items():
        prop = json_type(hint)
        if personal is not None and field in personal.fields:
            prop["x-personal"] = True
        properties[field] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID}{name}.v{version}.schema.json",
        "title": f"{name} version {version}",
        "description": _doc(cls) or name,
        "type": "object",
        "properties": properties,
        "required": list(fields),
        "additionalProperties": False,
    }


def contract() -> dict[str, str]:
    """Every file of the contract by its path under docs/."""
    files: dict[str, str] = {}
    lines = [
        "# Events",
        "",
        "Generated from the code by `make contract` (`python -m eventstore.contract "
        "docs`); a test fails when this file or a schema is stale.",
        "",
        "Every event belongs to one account and carries, beside its payload: "
        "`position` (global, increasing in commit order; numbers can be skipped), "
        "`event_id` (a UUID derived from the account and version: stable across "
        "export and import, the key to deduplicate by), `account_id`, `version` "
        "(the account's, from 1), `type`, `occurred_at`, `recorded_at`, `actor`, "
        "`correlation_id`, `causation_id` and `command_id`.",
        "",
        "Payloads are JSON: ids and times as strings, enum values in lower case. "
        "A new shape of an event is a new version; older events are upcast, so a "
        "consumer always receives the newest version. Fields marked personal read "
        f"`{ERASED}` (text) or `null` (dates) once the person was erased "
        "(see the README, *Erasure of personal data*). Messages from `rapport relay` "
        'and webhook requests also carry `personal_data`: `"withheld"` (personal '
        "fields in their erased form, read them from the API; always for webhooks, "
        'the default for the relay) or `"included"`.',
        "",
    ]
    for name in EVENT_TYPES:
        cls = getattr(Account, name)
        shapes = versions(cls)
        latest = max(shapes)
        lines += [f"## {name}", ""]
        if doc := _doc(cls):
            lines += [doc, ""]
        lines += ["| field | type | personal |", "|---|---|---|"]
        personal = PERSONAL_DATA.get(cls)
        for field, hint in shapes[latest].items():
            marked = "yes" if personal is not None and field in personal.fields else ""
            lines.append(f"| `{field}` | `{_describe(hint)}` | {marked} |")
        lines.append("")
        links = []
        for version, fields in shapes.items():
            path = f"events/{name}.v{version}.schema.json"
            files[path] = json.dumps(schema(name, version, fields), indent=2) + "\n"
            links.append(f"[version {version}]({path})")
        lines += ["JSON Schema: " + ", ".join(links), ""]
    files["events.md"] = "\n".join(lines).rstrip() + "\n"
    return files


def _describe(hint: Any) -> str:
    text = str(hint) if typing.get_origin(hint) else getattr(hint, "__name__", str(hint))
    for module in ("domain.values.", "uuid.", "datetime.", "decimal.", "typing."):
        text = text.replace(module, "")
    # A pipe would end the Markdown table's cell.
    return text.replace("NoneType", "None").replace("|", "\\|")


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    for path, text in contract().items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_text(text)
    print(f"wrote the event contract to {target}")  # noqa: T201


if __name__ == "__main__":
    main()
