"""Requests that Okta, Microsoft Entra ID and OneLogin really send, and what
they expect back.

Each test pins down one shape an IdP's SCIM client is known to send, or one
property of the response it relies on. The bodies are written from the IdPs'
documented and observed behaviour, not copied from any recording.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.resources import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    LIST_RESPONSE_SCHEMA,
    SCIM_MEDIA_TYPE,
    USER_SCHEMA,
    assert_scim_error,
    create_group,
    create_user,
    group_body,
    json_of,
    member_ids,
    patch_body,
    read,
    user_body,
)

MICROSOFT_GROUP_SCHEMA = (
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
)


async def patch_user(
    client: httpx.AsyncClient, user_id: str, *operations: dict[str, Any]
) -> dict[str, Any]:
    response = await client.patch(f"/Users/{user_id}", json=patch_body(*operations))
    assert response.status_code == 200, response.text
    return json_of(response)


async def patch_group(
    client: httpx.AsyncClient, group_id: str, *operations: dict[str, Any]
) -> dict[str, Any]:
    response = await client.patch(f"/Groups/{group_id}", json=patch_body(*operations))
    assert response.status_code == 200, response.text
    return json_of(response)


async def make_users(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for number in range(count):
        created = await create_user(client, f"member{number}@example.com")
        ids.append(created["id"])
    return ids


async def search_users(
    client: httpx.AsyncClient, **params: str | int
) -> dict[str, Any]:
    response = await client.get("/Users", params=params)
    assert response.status_code == 200, response.text
    body = json_of(response)
    assert body["schemas"] == [LIST_RESPONSE_SCHEMA]
    return body


def user_names(listing: dict[str, Any]) -> set[str]:
    return {resource["userName"] for resource in listing["Resources"]}


# PATCH operation names


@pytest.mark.parametrize(
    ("op", "path", "value", "expected_title"),
    [
        ("Add", "title", "Engineer", "Engineer"),
        ("ADD", "title", "Engineer", "Engineer"),
        ("Replace", "title", "Manager", "Manager"),
        ("REPLACE", "title", "Manager", "Manager"),
        ("Remove", "title", None, None),
        ("rEmOvE", "title", None, None),
    ],
)
async def test_patch_op_in_any_case(
    client: httpx.AsyncClient,
    op: str,
    path: str,
    value: str | None,
    expected_title: str | None,
) -> None:
    """Entra ID sends ``Add``, ``Replace`` and ``Remove`` capitalized; RFC 7644
    §3.5.2 spells them in lower case, so the op name is compared without case."""
    created = await create_user(client, "ada@example.com", title="Analyst")
    operation: dict[str, Any] = {"op": op, "path": path}
    if value is not None:
        operation["value"] = value

    patched = await patch_user(client, created["id"], operation)

    assert patched.get("title") == expected_title


async def test_unknown_patch_op_is_invalid(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.5.2: op is add, remove or replace; anything else is a 400."""
    created = await create_user(client, "ada@example.com")

    response = await client.patch(
        f"/Users/{created['id']}",
        json=patch_body({"op": "merge", "path": "title", "value": "x"}),
    )

    assert_scim_error(response, 400)


# Booleans as strings


@pytest.mark.parametrize(
    ("sent", "expected"),
    [("False", False), ("false", False), ("FALSE", False), ("True", True)],
)
async def test_create_accepts_string_boolean(
    client: httpx.AsyncClient, sent: str, expected: bool
) -> None:
    """Entra ID sends ``"active": "False"`` as a string on create."""
    created = await create_user(client, "ada@example.com", active=sent)

    assert created["active"] is expected
    assert (await read(client, f"/Users/{created['id']}"))["active"] is expected


async def test_put_accepts_string_boolean(client: httpx.AsyncClient) -> None:
    """Entra ID sends string booleans in a PUT of the whole user as well."""
    created = await create_user(client, "ada@example.com")

    response = await client.put(
        f"/Users/{created['id']}", json=user_body("ada@example.com", active="false")
    )

    assert response.status_code == 200, response.text
    assert response.json()["active"] is False


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "value": {"active": "False"}},
        {"op": "replace", "path": "active", "value": "false"},
    ],
    ids=["path", "path-less", "lower-case"],
)
async def test_patch_accepts_string_boolean(
    client: httpx.AsyncClient, operation: dict[str, Any]
) -> None:
    """Entra ID deactivates with ``"value": "False"``, with and without a path."""
    created = await create_user(client, "ada@example.com")

    patched = await patch_user(client, created["id"], operation)

    assert patched["active"] is False


async def test_string_boolean_in_emails(
    client: httpx.AsyncClient,
) -> None:
    """String booleans are read inside multi-valued entries too (``primary``)."""
    created = await create_user(client, "ada@example.com")

    patched = await patch_user(
        client,
        created["id"],
        {
            "op": "Add",
            "path": "emails",
            "value": [{"value": "ada@example.com", "type": "work", "primary": "True"}],
        },
    )

    assert patched["emails"][0]["primary"] is True


@pytest.mark.parametrize("sent", ["yes", "0", "", "Falsch", 1])
async def test_create_rejects_non_boolean(
    client: httpx.AsyncClient, sent: object
) -> None:
    """Only true and false (in any case) are booleans; anything else is a 400
    invalidValue (RFC 7644 §3.12) that names the attribute."""
    response = await client.post(
        "/Users", json=user_body("ada@example.com", active=sent)
    )

    body = assert_scim_error(response, 400, "invalidValue")
    assert "active" in body["detail"]


async def test_put_rejects_non_boolean(client: httpx.AsyncClient) -> None:
    """A PUT with ``"active": "yes"`` is a 400 invalidValue and changes nothing."""
    created = await create_user(client, "ada@example.com")

    response = await client.put(
        f"/Users/{created['id']}", json=user_body("ada@example.com", active="yes")
    )

    assert_scim_error(response, 400, "invalidValue")
    assert (await read(client, f"/Users/{created['id']}"))["active"] is True


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "active", "value": "nope"},
        {"op": "replace", "value": {"active": "nope"}},
    ],
    ids=["path", "path-less"],
)
async def test_patch_rejects_non_boolean(
    client: httpx.AsyncClient, operation: dict[str, Any]
) -> None:
    """A PATCH value that is neither true nor false is a 400 invalidValue."""
    created = await create_user(client, "ada@example.com")

    response = await client.patch(f"/Users/{created['id']}", json=patch_body(operation))

    assert_scim_error(response, 400, "invalidValue")
    assert (await read(client, f"/Users/{created['id']}"))["active"] is True


# Path-less replace


async def test_pathless_replace_mixed_names(
    client: httpx.AsyncClient,
) -> None:
    """Entra ID sends a path-less replace whose value object uses plain names,
    dotted sub-attribute names and fully qualified extension names."""
    created = await create_user(
        client, "ada@example.com", name={"givenName": "Ada", "familyName": "King"}
    )

    patched = await patch_user(
        client,
        created["id"],
        {
            "op": "Replace",
            "value": {
                "active": False,
                "displayName": "Ada Lovelace",
                "name.givenName": "Augusta",
                f"{ENTERPRISE_SCHEMA}:employeeNumber": "1815",
                f"{ENTERPRISE_SCHEMA}:department": "Analytics",
            },
        },
    )

    assert patched["active"] is False
    assert patched["displayName"] == "Ada Lovelace"
    assert patched["name"]["givenName"] == "Augusta"
    assert patched["name"]["familyName"] == "King"
    enterprise = patched[ENTERPRISE_SCHEMA]
    assert enterprise["employeeNumber"] == "1815"
    assert enterprise["department"] == "Analytics"
    assert ENTERPRISE_SCHEMA in patched["schemas"]
    assert await read(client, f"/Users/{created['id']}") == patched


async def test_pathless_replace_filtered_key(client: httpx.AsyncClient) -> None:
    """A key of a path-less value may be a value-filtered path such as
    ``emails[type eq "work"].value``; it applies as that path would, and is
    not dropped."""
    created = await create_user(
        client,
        "ada@example.com",
        emails=[{"value": "old@example.com", "type": "work", "primary": False}],
    )

    patched = await patch_user(
        client,
        created["id"],
        {
            "op": "replace",
            "value": {
                'emails[type eq "work"].value': "new@example.com",
                'emails[type eq "work"].primary': "True",
                "title": "CTO",
                'addresses[type eq "work"].locality': "London",
            },
        },
    )

    assert patched["emails"] == [
        {"value": "new@example.com", "type": "work", "primary": True}
    ]
    assert patched["title"] == "CTO"
    assert patched["addresses"] == [{"type": "work", "locality": "London"}]


# Value-filtered paths


async def test_replace_filtered_email_value(
    client: httpx.AsyncClient,
) -> None:
    """RFC 7644 §3.5.2.3: a replace on ``emails[type eq "work"].value`` changes
    only the matching entry, and filters then find the new value."""
    created = await create_user(
        client,
        "ada@example.com",
        emails=[
            {"value": "ada@work.example", "type": "work", "primary": True},
            {"value": "ada@home.example", "type": "home"},
        ],
    )

    patched = await patch_user(
        client,
        created["id"],
        {
            "op": "replace",
            "path": 'emails[type eq "work"].value',
            "value": "lovelace@work.example",
        },
    )

    by_type = {email["type"]: email["value"] for email in patched["emails"]}
    assert by_type == {"work": "lovelace@work.example", "home": "ada@home.example"}
    found = await search_users(client, filter='emails.value eq "lovelace@work.example"')
    assert found["totalResults"] == 1
    stale = await search_users(client, filter='emails.value eq "ada@work.example"')
    assert stale["totalResults"] == 0


@pytest.mark.parametrize("op", ["Add", "Replace"])
async def test_filtered_path_creates_entry(client: httpx.AsyncClient, op: str) -> None:
    """Entra ID sends ``emails[type eq "work"].value`` to a user who has no work
    email yet and expects the entry to be created with that type."""
    created = await create_user(client, "ada@example.com")

    patched = await patch_user(
        client,
        created["id"],
        {
            "op": op,
            "path": 'emails[type eq "work"].value',
            "value": "ada@work.example",
        },
    )

    assert len(patched["emails"]) == 1
    assert patched["emails"][0]["type"] == "work"
    assert patched["emails"][0]["value"] == "ada@work.example"
    found = await search_users(client, filter='emails[type eq "work"]')
    assert found["totalResults"] == 1


async def test_filtered_path_on_addresses(
    client: httpx.AsyncClient,
) -> None:
    """Entra ID writes addresses through filtered paths such as
    ``addresses[type eq "work"].formatted``, one sub-attribute at a time."""
    created = await create_user(client, "ada@example.com")

    patched = await patch_user(
        client,
        created["id"],
        {
            "op": "Add",
            "path": 'addresses[type eq "work"].formatted',
            "value": "1 Main St, London",
        },
        {
            "op": "Add",
            "path": 'addresses[type eq "work"].country',
            "value": "GB",
        },
    )

    assert patched["addresses"] == [
        {"type": "work", "formatted": "1 Main St, London", "country": "GB"}
    ]


# Group membership


@pytest.mark.parametrize(
    "shape",
    ["value", "value and display", "null $ref"],
)
async def test_add_member_shapes(client: httpx.AsyncClient, shape: str) -> None:
    """Member adds come as ``[{"value"}]``, ``[{"value", "display"}]`` or
    ``[{"$ref": null, "value"}]``, and all three add the member."""
    ada, grace = await make_users(client, 2)
    group = await create_group(client, "Engineering", [ada])
    member: dict[str, Any] = {"value": grace}
    if shape == "value and display":
        member["display"] = "grace@example.com"
    if shape == "null $ref":
        member = {"$ref": None, "value": grace}

    patched = await patch_group(
        client, group["id"], {"op": "add", "path": "members", "value": [member]}
    )

    assert {item["value"] for item in patched["members"]} == {ada, grace}
    assert await member_ids(client, group["id"]) == {ada, grace}


async def test_add_member_keeps_display(client: httpx.AsyncClient) -> None:
    """The member ``display`` a client sends is returned as sent."""
    (ada,) = await make_users(client, 1)
    group = await create_group(client, "Engineering")

    patched = await patch_group(
        client,
        group["id"],
        {
            "op": "add",
            "path": "members",
            "value": [{"value": ada, "display": "Ada Lovelace"}],
        },
    )

    assert patched["members"][0]["display"] == "Ada Lovelace"


async def test_add_existing_member_is_idempotent(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.5.2.1: adding a value that is already there changes nothing,
    not even the version."""
    ada, grace = await make_users(client, 2)
    group = await create_group(client, "Engineering", [ada, grace])

    patched = await patch_group(
        client,
        group["id"],
        {"op": "Add", "path": "members", "value": [{"value": ada}]},
    )

    assert {item["value"] for item in patched["members"]} == {ada, grace}
    assert patched["meta"]["version"] == group["meta"]["version"]


async def test_add_unknown_member_is_invalid(client: httpx.AsyncClient) -> None:
    """A member id that is no User of the organization is a 400 that names it."""
    group = await create_group(client, "Engineering")
    missing = str(uuid.uuid4())

    response = await client.patch(
        f"/Groups/{group['id']}",
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": missing}]}
        ),
    )

    body = assert_scim_error(response, 400, "invalidValue")
    assert missing in body["detail"]


async def test_remove_member_by_value_filter(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.5.2.2: a remove with path ``members[value eq "id"]`` removes
    that one member."""
    ada, grace, alan = await make_users(client, 3)
    group = await create_group(client, "Engineering", [ada, grace, alan])

    patched = await patch_group(
        client,
        group["id"],
        {"op": "remove", "path": f'members[value eq "{grace}"]'},
    )

    assert {item["value"] for item in patched["members"]} == {ada, alan}
    assert await member_ids(client, group["id"]) == {ada, alan}


async def test_legacy_remove_with_value_list(client: httpx.AsyncClient) -> None:
    """Entra's legacy ``Remove`` has path ``members`` and a value list, and
    removes only the listed members."""
    ada, grace, alan = await make_users(client, 3)
    group = await create_group(client, "Engineering", [ada, grace, alan])

    patched = await patch_group(
        client,
        group["id"],
        {
            "op": "Remove",
            "path": "members",
            "value": [{"value": ada}, {"value": alan}],
        },
    )

    assert {item["value"] for item in patched["members"]} == {grace}
    assert await member_ids(client, group["id"]) == {grace}


async def test_legacy_remove_non_member(
    client: httpx.AsyncClient,
) -> None:
    """Entra's value-list Remove never empties the group: a list that names
    only users outside the group removes no member."""
    ada, grace, outsider = await make_users(client, 3)
    group = await create_group(client, "Engineering", [ada, grace])

    patched = await patch_group(
        client,
        group["id"],
        {"op": "Remove", "path": "members", "value": [{"value": outsider}]},
    )

    assert {item["value"] for item in patched["members"]} == {ada, grace}
    assert await member_ids(client, group["id"]) == {ada, grace}


async def test_legacy_remove_empty_list(
    client: httpx.AsyncClient,
) -> None:
    """A value-list Remove whose list is empty names no member, so it removes
    none; reading it as a path-only remove would empty the group."""
    ada, grace = await make_users(client, 2)
    group = await create_group(client, "Engineering", [ada, grace])

    response = await client.patch(
        f"/Groups/{group['id']}",
        json=patch_body({"op": "Remove", "path": "members", "value": []}),
    )

    assert response.status_code == 200, response.text
    assert await member_ids(client, group["id"]) == {ada, grace}


async def test_replace_members_empty_list(
    client: httpx.AsyncClient,
) -> None:
    """RFC 7644 §3.5.2.3: a replace of ``members`` with ``[]`` empties the group."""
    ada, grace = await make_users(client, 2)
    group = await create_group(client, "Engineering", [ada, grace])

    patched = await patch_group(
        client, group["id"], {"op": "replace", "path": "members", "value": []}
    )

    assert patched.get("members", []) == []
    assert await member_ids(client, group["id"]) == set()


async def test_replace_members_sets_exactly_those(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.5.2.3: a replace of ``members`` sets the whole list."""
    ada, grace, alan = await make_users(client, 3)
    group = await create_group(client, "Engineering", [ada, grace])

    patched = await patch_group(
        client,
        group["id"],
        {"op": "replace", "path": "members", "value": [{"value": alan}]},
    )

    assert {item["value"] for item in patched["members"]} == {alan}


async def test_replace_without_members_keeps_them(client: httpx.AsyncClient) -> None:
    """A path-less replace that does not mention ``members`` leaves them alone."""
    ada, grace = await make_users(client, 2)
    group = await create_group(client, "Engineering", [ada, grace])

    patched = await patch_group(
        client,
        group["id"],
        {"op": "replace", "value": {"externalId": "00g1"}},
    )

    assert patched["externalId"] == "00g1"
    assert await member_ids(client, group["id"]) == {ada, grace}


async def test_put_group_sets_listed_members(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.5.1: a PUT of a Group with ``members`` sets exactly those."""
    ada, grace, alan = await make_users(client, 3)
    group = await create_group(client, "Engineering", [ada, grace])

    response = await client.put(
        f"/Groups/{group['id']}",
        json=group_body("Engineering", members=[{"value": grace}, {"value": alan}]),
    )

    assert response.status_code == 200, response.text
    assert await member_ids(client, group["id"]) == {grace, alan}


async def test_put_group_without_members_keeps_them(
    client: httpx.AsyncClient,
) -> None:
    """A PUT that only renames a group (no ``members`` key) keeps its members,
    so a rename cannot strip every member of the roles the group grants."""
    ada, grace = await make_users(client, 2)
    group = await create_group(client, "Engineering", [ada, grace])

    response = await client.put(
        f"/Groups/{group['id']}", json=group_body("Platform Engineering")
    )

    assert response.status_code == 200, response.text
    assert response.json()["displayName"] == "Platform Engineering"
    assert await member_ids(client, group["id"]) == {ada, grace}


async def test_okta_rename_with_id_in_value(client: httpx.AsyncClient) -> None:
    """Okta renames a group with a path-less replace whose value carries the
    group's own ``id`` next to the new ``displayName``; members stay."""
    ada, grace = await make_users(client, 2)
    group = await create_group(client, "Engineering", [ada, grace])

    patched = await patch_group(
        client,
        group["id"],
        {
            "op": "replace",
            "value": {"id": group["id"], "displayName": "Platform Engineering"},
        },
    )

    assert patched["id"] == group["id"]
    assert patched["displayName"] == "Platform Engineering"
    assert await member_ids(client, group["id"]) == {ada, grace}
    found = await client.get(
        "/Groups", params={"filter": 'displayName eq "Platform Engineering"'}
    )
    assert found.json()["totalResults"] == 1


# Enterprise manager


@pytest.mark.parametrize(
    "shape", ["object", "bare string"], ids=["object", "bare-string"]
)
async def test_create_with_manager(client: httpx.AsyncClient, shape: str) -> None:
    """Entra ID sends the enterprise ``manager`` as ``{"value": id}`` without
    ``$ref``, or as a bare id string."""
    boss = await create_user(client, "boss@example.com")
    manager: Any = {"value": boss["id"]} if shape == "object" else boss["id"]

    created = await create_user(
        client,
        "ada@example.com",
        schemas=[USER_SCHEMA, ENTERPRISE_SCHEMA],
        **{ENTERPRISE_SCHEMA: {"manager": manager, "employeeNumber": "7"}},
    )

    assert created[ENTERPRISE_SCHEMA]["manager"]["value"] == boss["id"]
    assert created[ENTERPRISE_SCHEMA]["employeeNumber"] == "7"


@pytest.mark.parametrize(
    ("path", "value_shape"),
    [
        (f"{ENTERPRISE_SCHEMA}:manager", "bare string"),
        (f"{ENTERPRISE_SCHEMA}:manager", "object"),
        ("manager", "object"),
        ("manager", "bare string"),
    ],
)
async def test_patch_manager(
    client: httpx.AsyncClient, path: str, value_shape: str
) -> None:
    """Entra ID sets the manager through the qualified path or path ``manager``,
    with a bare id or with ``{"value": id}``."""
    boss = await create_user(client, "boss@example.com")
    created = await create_user(client, "ada@example.com")
    value: Any = boss["id"] if value_shape == "bare string" else {"value": boss["id"]}

    patched = await patch_user(
        client, created["id"], {"op": "Add", "path": path, "value": value}
    )

    assert patched[ENTERPRISE_SCHEMA]["manager"]["value"] == boss["id"]
    stored = await read(client, f"/Users/{created['id']}")
    assert stored[ENTERPRISE_SCHEMA]["manager"]["value"] == boss["id"]


async def test_pathless_replace_of_manager(client: httpx.AsyncClient) -> None:
    """A path-less replace may name the manager by its qualified name."""
    boss = await create_user(client, "boss@example.com")
    created = await create_user(client, "ada@example.com")

    patched = await patch_user(
        client,
        created["id"],
        {"op": "replace", "value": {f"{ENTERPRISE_SCHEMA}:manager": boss["id"]}},
    )

    assert patched[ENTERPRISE_SCHEMA]["manager"]["value"] == boss["id"]


async def test_remove_manager(client: httpx.AsyncClient) -> None:
    """``Remove`` on the qualified manager path clears the manager."""
    boss = await create_user(client, "boss@example.com")
    created = await create_user(
        client,
        "ada@example.com",
        **{ENTERPRISE_SCHEMA: {"manager": {"value": boss["id"]}}},
    )

    patched = await patch_user(
        client, created["id"], {"op": "Remove", "path": f"{ENTERPRISE_SCHEMA}:manager"}
    )

    assert "manager" not in patched.get(ENTERPRISE_SCHEMA, {})


# Create bodies


async def test_create_with_extra_attributes(
    client: httpx.AsyncClient,
) -> None:
    """IdP create bodies carry ``password``, ``groups: []``, ``roles: []``,
    ``meta.resourceType`` and null attributes. The password is write-only and
    never returned (RFC 7643 §4.1.1)."""
    body = user_body(
        "ada@example.com",
        externalId="00u1",
        password="Tr0ub4dor&3",
        groups=[],
        roles=[],
        meta={"resourceType": "User"},
        title=None,
        nickName=None,
        name={"givenName": "Ada", "familyName": "Lovelace", "middleName": None},
        emails=[{"value": "ada@example.com", "type": "work", "primary": True}],
        phoneNumbers=None,
    )

    response = await client.post("/Users", json=body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["userName"] == "ada@example.com"
    assert created["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert "password" not in created
    assert "title" not in created
    assert created["meta"]["resourceType"] == "User"
    assert "Tr0ub4dor&3" not in response.text


async def test_create_ignores_groups_it_computes(client: httpx.AsyncClient) -> None:
    """RFC 7643 §4.1.2: ``groups`` is read-only; a create that lists a group
    does not make the user a member."""
    group = await create_group(client, "Engineering")

    created = await create_user(
        client, "ada@example.com", groups=[{"value": group["id"]}]
    )

    assert "groups" not in created
    assert await member_ids(client, group["id"]) == set()


async def test_group_create_with_microsoft_schema(client: httpx.AsyncClient) -> None:
    """Entra ID creates groups with a Microsoft schema URN next to the core one."""
    (ada,) = await make_users(client, 1)
    body = {
        "schemas": [GROUP_SCHEMA, MICROSOFT_GROUP_SCHEMA],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Group1DisplayName",
        "members": [{"value": ada}],
        "meta": {"resourceType": "Group"},
    }

    response = await client.post("/Groups", json=body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["schemas"] == [GROUP_SCHEMA]
    assert created["externalId"] == body["externalId"]
    assert [member["value"] for member in created["members"]] == [ada]


async def test_user_create_with_unknown_extension(client: httpx.AsyncClient) -> None:
    """A create may carry an extension schema that the service does not define,
    such as an IdP's custom attributes; the service drops it and creates the user."""
    custom = "urn:okta:custom:user:1.0"
    body = user_body(
        "ada@example.com",
        schemas=[USER_SCHEMA, custom],
        **{custom: {"costCode": "42"}},
    )

    response = await client.post("/Users", json=body)

    assert response.status_code == 201, response.text
    assert response.json()["schemas"] == [USER_SCHEMA]
    assert custom not in response.json()


async def test_patch_without_schemas(client: httpx.AsyncClient) -> None:
    """Some clients send a PatchOp with only ``Operations``, no ``schemas``."""
    created = await create_user(client, "ada@example.com")

    response = await client.patch(
        f"/Users/{created['id']}",
        json={"Operations": [{"op": "replace", "path": "title", "value": "CTO"}]},
    )

    assert response.status_code == 200, response.text
    assert response.json()["title"] == "CTO"


async def test_create_without_schemas(client: httpx.AsyncClient) -> None:
    """A resource without ``schemas`` gets the core schema of its endpoint."""
    response = await client.post("/Users", json={"userName": "ada@example.com"})

    assert response.status_code == 201, response.text
    assert response.json()["schemas"] == [USER_SCHEMA]


# Content types


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/scim+json",
        "application/scim+json; charset=utf-8",
        "application/json; charset=UTF-8",
    ],
)
async def test_request_content_types(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    """RFC 7644 §3.1 names application/scim+json; IdPs also send
    application/json, a charset parameter, or no Content-Type at all."""
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"schemas": ["%s"], "userName": "ada@example.com"}' % USER_SCHEMA.encode()

    created = await client.post("/Users", content=body, headers=headers)
    assert created.status_code == 201, created.text
    patch = b'{"Operations": [{"op": "replace", "path": "title", "value": "CTO"}]}'
    patched = await client.patch(
        f"/Users/{created.json()['id']}", content=patch, headers=headers
    )

    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "CTO"


# Filters


async def test_filter_ignores_case(
    client: httpx.AsyncClient,
) -> None:
    """RFC 7644 §3.4.2.2: attribute names and operators are case-insensitive,
    and userName is compared without case (caseExact false)."""
    await create_user(client, "Ada@Example.com")
    await create_user(client, "grace@example.com", active=False)

    found = await search_users(
        client, filter='USERNAME Eq "ada@EXAMPLE.com" AND Active EQ true'
    )

    assert found["totalResults"] == 1
    assert user_names(found) == {"Ada@Example.com"}


async def test_filter_and_binds_tighter_than_or(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.4.2.2: ``and`` takes precedence over ``or``; parentheses group."""
    await create_user(client, "ada@example.com", active=True)
    await create_user(client, "grace@example.com", active=True)
    await create_user(client, "alan@example.com", active=False)

    ungrouped = await search_users(
        client,
        filter='userName eq "ada@example.com" or userName eq "grace@example.com" '
        "and active eq false",
    )
    grouped = await search_users(
        client,
        filter='(userName eq "ada@example.com" or userName eq "grace@example.com") '
        "and active eq false",
    )
    either = await search_users(
        client,
        filter='userName eq "alan@example.com" or (userName eq "grace@example.com" '
        "and active eq true)",
    )

    assert user_names(ungrouped) == {"ada@example.com"}
    assert user_names(grouped) == set()
    assert user_names(either) == {"alan@example.com", "grace@example.com"}


async def test_filter_not_and_presence(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.4.2.2: ``not (...)`` and ``pr``."""
    await create_user(client, "ada@example.com", externalId="00u1")
    await create_user(client, "grace@example.com")

    present = await search_users(client, filter="externalId pr")
    negated = await search_users(client, filter='not (userName eq "ada@example.com")')

    assert user_names(present) == {"ada@example.com"}
    assert user_names(negated) == {"grace@example.com"}


async def test_filter_user_external_id(client: httpx.AsyncClient) -> None:
    """An IdP whose matching attribute is externalId looks a user up by
    ``externalId eq`` before creating it."""
    created = await create_user(client, "ada@example.com", externalId="00u1AbC")
    await create_user(client, "grace@example.com", externalId="00u2")

    found = await search_users(client, filter='externalId eq "00u1AbC"')

    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == created["id"]


async def test_group_lookup_without_members(
    client: httpx.AsyncClient,
) -> None:
    """Entra ID looks a group up by ``displayName eq`` with
    ``excludedAttributes=members`` and expects no members in the result."""
    (ada,) = await make_users(client, 1)
    group = await create_group(client, "Engineering", [ada], externalId="00g1")
    await create_group(client, "Sales")

    by_name = await client.get(
        "/Groups",
        params={
            "filter": 'displayName eq "engineering"',
            "excludedAttributes": "members",
        },
    )
    by_external_id = await client.get(
        "/Groups",
        params={"filter": 'externalId eq "00g1"', "excludedAttributes": "members"},
    )

    for response in (by_name, by_external_id):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["totalResults"] == 1
        assert body["Resources"][0]["id"] == group["id"]
        assert body["Resources"][0]["displayName"] == "Engineering"
        assert "members" not in body["Resources"][0]


async def test_filter_with_okta_paging_parameters(client: httpx.AsyncClient) -> None:
    """Okta sends ``startIndex=1&count=100`` along with its filter."""
    await create_user(client, "ada@example.com")

    found = await search_users(
        client, filter='userName eq "ada@example.com"', startIndex=1, count=100
    )

    assert found["totalResults"] == 1
    assert found["startIndex"] == 1
    assert found["itemsPerPage"] == 1


async def test_entra_test_connection_filter(client: httpx.AsyncClient) -> None:
    """Entra's "Test Connection" filters on a random GUID and needs 200 with an
    empty ListResponse: ``totalResults: 0`` and ``Resources: []``."""
    await create_user(client, "ada@example.com")
    probe = str(uuid.uuid4())

    for attribute in ("userName", "externalId", "id"):
        response = await client.get(
            "/Users", params={"filter": f'{attribute} eq "{probe}"'}
        )

        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(SCIM_MEDIA_TYPE)
        body = response.json()
        assert body["schemas"] == [LIST_RESPONSE_SCHEMA]
        assert body["totalResults"] == 0
        assert body["Resources"] == []


@pytest.mark.parametrize(
    "text",
    ['userName eq "unterminated', "userName zz 1", "((", 'emails[type eq "w"'],
)
async def test_malformed_filter_is_invalid_filter(
    client: httpx.AsyncClient, text: str
) -> None:
    """RFC 7644 §3.4.2.2: a filter that does not parse is a 400 invalidFilter."""
    response = await client.get("/Users", params={"filter": text})

    assert_scim_error(response, 400, "invalidFilter")


# Paging


async def test_paging_rules(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.4.2.4: startIndex below 1 is 1, a negative count is 0,
    ``count=0`` returns no resources and the true total, and a page past the
    end is empty with totalResults unchanged."""
    for number in range(5):
        await create_user(client, f"user{number}@example.com")

    low_start = await search_users(client, startIndex=0, count=2)
    negative_start = await search_users(client, startIndex=-3, count=2)
    negative_count = await search_users(client, count=-1)
    zero_count = await search_users(client, count=0)
    past_end = await search_users(client, startIndex=10, count=2)
    last_page = await search_users(client, startIndex=5, count=2)

    assert low_start["startIndex"] == 1
    assert len(low_start["Resources"]) == 2
    assert negative_start["startIndex"] == 1
    assert negative_start["Resources"] == low_start["Resources"]
    assert negative_count["totalResults"] == 5
    assert negative_count["Resources"] == []
    assert zero_count["totalResults"] == 5
    assert zero_count["Resources"] == []
    assert zero_count["itemsPerPage"] == 0
    assert past_end["totalResults"] == 5
    assert past_end["Resources"] == []
    assert last_page["totalResults"] == 5
    assert len(last_page["Resources"]) == 1


async def test_pages_cover_every_user_once(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.4.2.4: walking the pages returns each resource exactly once."""
    for number in range(7):
        await create_user(client, f"user{number}@example.com")

    seen: list[str] = []
    for start in (1, 4, 7):
        page = await search_users(client, startIndex=start, count=3)
        seen.extend(resource["id"] for resource in page["Resources"])

    assert len(seen) == 7
    assert len(set(seen)) == 7


@pytest.mark.parametrize("parameter", ["startIndex", "count"])
async def test_non_integer_paging_parameter(
    client: httpx.AsyncClient, parameter: str
) -> None:
    """A paging parameter that is not an integer is a 400 that names it."""
    response = await client.get("/Users", params={parameter: "ten"})

    body = assert_scim_error(response, 400, "invalidValue")
    assert parameter in body["detail"]


# What the IdPs expect back


async def test_create_returns_full_resource(
    client: httpx.AsyncClient,
) -> None:
    """RFC 7644 §3.3: 201 with the whole resource as stored, in
    ``application/scim+json``, with Location and meta."""
    response = await client.post(
        "/Users",
        json=user_body(
            "ada@example.com",
            externalId="00u1",
            name={"givenName": "Ada", "familyName": "Lovelace"},
            emails=[{"value": "ada@example.com", "type": "work", "primary": True}],
        ),
    )

    assert response.status_code == 201
    assert response.headers["content-type"].startswith(SCIM_MEDIA_TYPE)
    created = response.json()
    assert created["id"]
    assert created["schemas"] == [USER_SCHEMA]
    assert created["externalId"] == "00u1"
    assert created["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert created["emails"][0]["value"] == "ada@example.com"
    assert created["active"] is True
    assert created["meta"]["resourceType"] == "User"
    assert created["meta"]["created"]
    assert created["meta"]["lastModified"]
    assert response.headers["location"] == created["meta"]["location"]
    assert await read(client, f"/Users/{created['id']}") == created


async def test_group_create_returns_members(
    client: httpx.AsyncClient,
) -> None:
    """RFC 7644 §3.3: a Group create returns the group with its members."""
    ada, grace = await make_users(client, 2)

    response = await client.post(
        "/Groups",
        json=group_body("Engineering", members=[{"value": ada}, {"value": grace}]),
    )

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(SCIM_MEDIA_TYPE)
    created = response.json()
    assert created["displayName"] == "Engineering"
    assert {member["value"] for member in created["members"]} == {ada, grace}
    assert created["meta"]["resourceType"] == "Group"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada@Example.com", "ADA@example.COM"),
    ],
)
async def test_duplicate_user_name_is_409(
    client: httpx.AsyncClient, first: str, second: str
) -> None:
    """RFC 7644 §3.3 and §3.12: a duplicate userName, also one differing only in
    case (userName is caseExact false), is a 409 uniqueness."""
    await create_user(client, first)

    response = await client.post("/Users", json=user_body(second))

    assert_scim_error(response, 409, "uniqueness")


async def test_duplicate_group_name_is_409(client: httpx.AsyncClient) -> None:
    """A second group with the same displayName (any case) is a 409 uniqueness."""
    await create_group(client, "Engineering")

    response = await client.post("/Groups", json=group_body("ENGINEERING"))

    assert_scim_error(response, 409, "uniqueness")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/Users/{id}"),
        ("PUT", "/Users/{id}"),
        ("PATCH", "/Users/{id}"),
        ("DELETE", "/Users/{id}"),
        ("GET", "/Groups/{id}"),
        ("PATCH", "/Groups/{id}"),
        ("DELETE", "/Groups/{id}"),
        ("GET", "/Schemas/urn:example:unknown"),
        ("GET", "/ResourceTypes/Device"),
    ],
)
async def test_not_found_is_scim_error(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """RFC 7644 §3.12: 404 is an Error whose ``status`` is the string "404"."""
    url = path.format(id=uuid.uuid4())
    body: dict[str, Any] | None = None
    if method == "PUT":
        body = user_body("ada@example.com")
    if method == "PATCH":
        body = patch_body({"op": "replace", "path": "displayName", "value": "x"})

    response = await client.request(method, url, json=body)

    assert_scim_error(response, 404)


async def test_patch_returns_200_with_resource(client: httpx.AsyncClient) -> None:
    """Entra's validator wants a body after PATCH: 200 with the whole resource."""
    created = await create_user(client, "ada@example.com")
    (member,) = await make_users(client, 1)
    group = await create_group(client, "Engineering")

    user_response = await client.patch(
        f"/Users/{created['id']}",
        json=patch_body({"op": "replace", "path": "title", "value": "CTO"}),
    )
    group_response = await client.patch(
        f"/Groups/{group['id']}",
        json=patch_body({"op": "add", "path": "members", "value": [{"value": member}]}),
    )

    assert user_response.status_code == 200
    assert user_response.headers["content-type"].startswith(SCIM_MEDIA_TYPE)
    assert user_response.json()["userName"] == "ada@example.com"
    assert user_response.json()["title"] == "CTO"
    assert user_response.headers["etag"] == user_response.json()["meta"]["version"]
    assert group_response.status_code == 200
    assert group_response.json()["displayName"] == "Engineering"
    assert group_response.json()["members"][0]["value"] == member


@pytest.mark.parametrize(
    "endpoint", ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"]
)
async def test_post_on_discovery_endpoint_is_405(
    client: httpx.AsyncClient, endpoint: str
) -> None:
    """Discovery endpoints only serve GET (RFC 7644 §4), so a POST is a 405
    Error."""
    response = await client.post(endpoint, json={})

    assert_scim_error(response, 405)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Basic dXNlcjpwYXNz", "Bearer ", "scimr_nobearer"],
)
async def test_bad_token_is_401_error(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    """RFC 7644 §3.12 and RFC 6750 §3: a missing or bad token is a 401 Error
    body with a WWW-Authenticate challenge, on every endpoint."""
    headers = {"Authorization": authorization} if authorization else {}
    client.headers.pop("Authorization")

    for path in ("/Users", "/Groups", "/ServiceProviderConfig"):
        response = await client.get(path, headers=headers)

        assert_scim_error(response, 401)
        assert response.headers["www-authenticate"].lower().startswith("bearer")


# Okta deactivation and returning users


async def test_okta_deactivates_with_patch(client: httpx.AsyncClient) -> None:
    """Okta never deletes users. It sends a PATCH with ``active: false``, and
    the user stays readable and listed, inactive."""
    created = await create_user(client, "ada@example.com", externalId="00u1")

    patched = await patch_user(
        client, created["id"], {"op": "replace", "value": {"active": False}}
    )

    assert patched["active"] is False
    assert (await read(client, f"/Users/{created['id']}"))["active"] is False
    inactive = await search_users(client, filter="active eq false")
    assert user_names(inactive) == {"ada@example.com"}


async def test_okta_deactivates_with_put(client: httpx.AsyncClient) -> None:
    """Okta's PUT of the whole user with ``active: false`` deactivates it and
    replaces the other attributes."""
    created = await create_user(
        client, "ada@example.com", externalId="00u1", title="Analyst"
    )

    response = await client.put(
        f"/Users/{created['id']}",
        json=user_body(
            "ada@example.com",
            externalId="00u1",
            active=False,
            name={"givenName": "Ada", "familyName": "Lovelace"},
        ),
    )

    assert response.status_code == 200, response.text
    replaced = response.json()
    assert replaced["id"] == created["id"]
    assert replaced["active"] is False
    assert "title" not in replaced
    assert replaced["name"]["familyName"] == "Lovelace"


async def test_okta_reactivates_with_patch(client: httpx.AsyncClient) -> None:
    """Okta reactivates a user with a PATCH of ``active: true``."""
    created = await create_user(client, "ada@example.com", active=False)

    patched = await patch_user(
        client, created["id"], {"op": "replace", "value": {"active": True}}
    )

    assert patched["active"] is True


@pytest.mark.parametrize(
    "returning_name", ["ada@example.com", "ada.lovelace@example.com"]
)
async def test_returning_user_keeps_id(
    client: httpx.AsyncClient, returning_name: str
) -> None:
    """A user deactivated by one IdP client and POSTed again with the same
    externalId (even under a new userName) is the same user: same id, active."""
    created = await create_user(client, "ada@example.com", externalId="00u1")
    await patch_user(
        client, created["id"], {"op": "replace", "path": "active", "value": False}
    )

    response = await client.post(
        "/Users", json=user_body(returning_name, externalId="00u1")
    )

    assert response.status_code == 201, response.text
    returned = response.json()
    assert returned["id"] == created["id"]
    assert returned["userName"] == returning_name
    assert returned["active"] is True
    listing = await search_users(client, filter='externalId eq "00u1"')
    assert listing["totalResults"] == 1


async def test_active_user_posted_again_is_409(client: httpx.AsyncClient) -> None:
    """An active user POSTed again under the same externalId is a duplicate."""
    await create_user(client, "ada@example.com", externalId="00u1")

    response = await client.post(
        "/Users", json=user_body("ada@example.com", externalId="00u1")
    )

    assert_scim_error(response, 409, "uniqueness")
