"""The remaining commands through GraphQL, each with the view that shows it."""

from __future__ import annotations

from uuid import uuid4

ACCOUNT = """
query($id: UUID!) {
  account(id: $id) {
    name businessCategory address { city country } channels { kind value }
    classification relationshipType version
    contacts { id name role email phone influence }
  }
}"""

MUTATIONS = {
    "updateProfile": "UpdateProfileInput",
    "updateContact": "UpdateContactInput",
    "removeContact": "RemoveContactInput",
    "changeClassification": "ChangeClassificationInput",
    "changeRelationshipType": "ChangeRelationshipTypeInput",
    "addContact": "AddContactInput",
    "eraseSubject": "EraseSubjectInput",
    "logInteraction": "LogInteractionInput",
}


def _mutate(api, field: str, payload: dict) -> dict:
    document = f"""
    mutation($input: {MUTATIONS[field]}!) {{
      {field}(input: $input) {{
        __typename
        ... on AccountChange {{ version }}
        ... on Error {{ code message }}
      }}
    }}"""
    body = api.graphql(document, {"input": payload})
    assert "errors" not in body, body
    return body["data"][field]


def test_profile_classification_relationship_and_contacts_change_the_view(api):
    account_id = str(uuid4())
    opened = api.graphql(
        'mutation($id: UUID!) { openAccount(input: {id: $id, name: "Old Name", '
        "kind: GROUP}) { __typename } }",
        {"id": account_id},
    )
    assert opened["data"]["openAccount"]["__typename"] == "AccountChanged"
    ann = str(uuid4())
    assert (
        _mutate(
            api, "addContact", {"accountId": account_id, "contactId": ann, "name": "Ann"}
        )["__typename"]
        == "ContactAdded"
    )
    assert (
        _mutate(
            api,
            "updateProfile",
            {
                "accountId": account_id,
                "name": "New Name",
                "businessCategory": "retail",
                "address": {"city": "Turku", "country": "FI"},
                "channels": [{"kind": "WEB", "value": "https://example.fi"}],
            },
        )["version"]
        == 3
    )
    _mutate(api, "changeClassification", {"accountId": account_id, "classification": "A"})
    _mutate(
        api,
        "changeRelationshipType",
        {"accountId": account_id, "relationshipType": "DEDICATED_PERSONAL_ASSISTANCE"},
    )
    _mutate(
        api,
        "updateContact",
        {
            "accountId": account_id,
            "contactId": ann,
            "role": "CFO",
            "phone": "+358 40 123 4567",
            "influence": "HIGH",
        },
    )
    account = api.graphql(ACCOUNT, {"id": account_id})["data"]["account"]
    assert account == {
        "name": "New Name",
        "businessCategory": "retail",
        "address": {"city": "Turku", "country": "FI"},
        "channels": [{"kind": "WEB", "value": "https://example.fi"}],
        "classification": "A",
        "relationshipType": "DEDICATED_PERSONAL_ASSISTANCE",
        "version": 6,
        "contacts": [
            {
                "id": ann,
                "name": "Ann",
                "role": "CFO",
                "email": None,
                "phone": "+358 40 123 4567",
                "influence": "HIGH",
            }
        ],
    }
    unchanged = _mutate(
        api, "changeClassification", {"accountId": account_id, "classification": "A"}
    )
    assert unchanged["code"] == "UNCHANGED_VALUE"
    _mutate(
        api, "removeContact", {"accountId": account_id, "contactId": ann, "reason": "left"}
    )
    gone = _mutate(
        api, "updateContact", {"accountId": account_id, "contactId": ann, "role": "CEO"}
    )
    assert gone["code"] == "CONTACT_NOT_FOUND"
    account = api.graphql(ACCOUNT, {"id": account_id})["data"]["account"]
    assert (account["contacts"], account["version"]) == ([], 7)


ERASABLE = """
query($id: UUID!) {
  account(id: $id) {
    name personalDataErased address { street city }
    contacts { name email erased }
    interactions { edges { node { summary participants effortMinutes } } }
  }
  accountAt(id: $id, version: 2) { name contacts { name erased } }
}"""


def test_erase_subject_through_graphql(api):
    account_id, ann = str(uuid4()), str(uuid4())
    api.graphql(
        'mutation($id: UUID!) { openAccount(input: {id: $id, name: "Lee Family", '
        'kind: INDIVIDUAL, address: {street: "1 Elm Row", city: "York"}}) '
        "{ __typename } }",
        {"id": account_id},
    )
    _mutate(
        api,
        "addContact",
        {
            "accountId": account_id,
            "contactId": ann,
            "name": "Ann Lee",
            "email": "a@l.example",
        },
    )
    _mutate(
        api,
        "logInteraction",
        {
            "accountId": account_id,
            "channel": "CALL",
            "direction": "INBOUND",
            "participants": ["Ann Lee"],
            "occurredAt": "2026-11-20T10:00:00+00:00",
            "summary": "Asked about her order",
            "effortMinutes": 10,
        },
    )
    missing = _mutate(
        api,
        "eraseSubject",
        {"accountId": account_id, "contactId": str(uuid4()), "reason": "R1"},
    )
    assert missing["code"] == "CONTACT_NOT_FOUND"
    blank = _mutate(api, "eraseSubject", {"accountId": account_id, "reason": " "})
    assert blank["code"] == "INVALID_VALUE"

    erased = _mutate(
        api, "eraseSubject", {"accountId": account_id, "contactId": ann, "reason": "R2"}
    )
    assert (erased["__typename"], erased["version"]) == ("AccountChanged", 4)
    again = _mutate(
        api, "eraseSubject", {"accountId": account_id, "contactId": ann, "reason": "R3"}
    )
    assert again["code"] == "SUBJECT_ERASED"

    whole = _mutate(api, "eraseSubject", {"accountId": account_id, "reason": "R4"})
    assert whole["version"] == 5
    data = api.graphql(ERASABLE, {"id": account_id})["data"]
    assert data["account"] == {
        "name": "[erased]",
        "personalDataErased": True,
        "address": {"street": "[erased]", "city": "[erased]"},
        "contacts": [{"name": "[erased]", "email": "[erased]", "erased": True}],
        "interactions": {
            "edges": [
                {
                    "node": {
                        "summary": "[erased]",
                        "participants": ["[erased]"],
                        "effortMinutes": 10,
                    }
                }
            ]
        },
    }
    assert data["accountAt"] == {
        "name": "[erased]",
        "contacts": [{"name": "[erased]", "erased": False}],
    }
    refused = _mutate(
        api, "addContact", {"accountId": account_id, "contactId": str(uuid4()), "name": "X"}
    )
    assert refused["code"] == "SUBJECT_ERASED"
