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
