"""Discovery endpoints (RFC 7644 §4): what they claim must be what the service
does."""

from __future__ import annotations

from typing import Any

import httpx

from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database
from tests.conftest import Tenant, make_settings, scim_client
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
    read,
    user_body,
)

SERVICE_PROVIDER_CONFIG_SCHEMA = (
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)
# Attributes of every resource that no schema declares (RFC 7643 §3.1).
COMMON_ATTRIBUTES = {"schemas", "id", "externalId", "meta"}


async def list_of(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(SCIM_MEDIA_TYPE)
    body = json_of(response)
    assert body["schemas"] == [LIST_RESPONSE_SCHEMA]
    assert body["totalResults"] == len(body["Resources"])
    resources: list[dict[str, Any]] = body["Resources"]
    return resources


def attributes_by_name(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {attribute["name"]: attribute for attribute in schema["attributes"]}


async def schemas_by_id(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {schema["id"]: schema for schema in await list_of(client, "/Schemas")}


# ServiceProviderConfig


async def test_service_provider_config_features(client: httpx.AsyncClient) -> None:
    """RFC 7643 §5: the features the service supports, and how to authenticate."""
    config = await read(client, "/ServiceProviderConfig")

    assert config["schemas"] == [SERVICE_PROVIDER_CONFIG_SCHEMA]
    assert config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["filter"]["supported"] is True
    assert config["changePassword"]["supported"] is False
    assert config["sort"]["supported"] is True
    assert config["etag"]["supported"] is True
    schemes = config["authenticationSchemes"]
    assert [scheme["type"] for scheme in schemes] == ["oauthbearertoken"]
    assert (
        config["meta"]["location"] == "http://scim.test/scim/v2/ServiceProviderConfig"
    )


async def test_unsupported_bulk_is_501(client: httpx.AsyncClient) -> None:
    """bulk.supported is false, so POST /Bulk is a 501 Error (RFC 7644 §3.12)."""
    response = await client.post(
        "/Bulk",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [],
        },
    )

    assert_scim_error(response, 501)


async def test_filter_max_results_caps_pages(
    database: Database, database_url: str, tenant: Tenant
) -> None:
    """filter.maxResults is the configured page limit, and a larger count is cut
    to it while totalResults stays true."""
    settings = make_settings(database_url, max_results=2)
    async with scim_client(create_app(settings, database), tenant.token) as client:
        for number in range(3):
            await create_user(client, f"user{number}@example.com")

        config = await read(client, "/ServiceProviderConfig")
        page = await read(client, "/Users?count=10")
        unbounded = await read(client, "/Users")

    assert config["filter"]["maxResults"] == 2
    assert page["totalResults"] == 3
    assert len(page["Resources"]) == 2
    assert len(unbounded["Resources"]) == 2


async def test_etag_support_is_real(client: httpx.AsyncClient) -> None:
    """etag.supported is true: every resource response carries an ETag equal to
    meta.version, and a write changes it (RFC 7644 §3.14)."""
    created = await create_user(client, "ada@example.com")

    read_response = await client.get(f"/Users/{created['id']}")
    put_response = await client.put(
        f"/Users/{created['id']}",
        json=user_body("ada@example.com", title="CTO"),
        headers={"If-Match": created["meta"]["version"]},
    )

    assert read_response.headers["etag"] == created["meta"]["version"]
    assert put_response.status_code == 200, put_response.text
    assert put_response.headers["etag"] == put_response.json()["meta"]["version"]
    assert put_response.headers["etag"] != created["meta"]["version"]


# ResourceTypes


async def test_resource_types_list_user_and_group(client: httpx.AsyncClient) -> None:
    """RFC 7643 §6: User (with the enterprise extension) and Group."""
    resource_types = {
        item["id"]: item for item in await list_of(client, "/ResourceTypes")
    }

    assert set(resource_types) == {"User", "Group"}
    user = resource_types["User"]
    assert user["endpoint"] == "/Users"
    assert user["schema"] == USER_SCHEMA
    assert user["schemaExtensions"] == [
        {"schema": ENTERPRISE_SCHEMA, "required": False}
    ]
    assert resource_types["Group"]["endpoint"] == "/Groups"
    assert resource_types["Group"]["schema"] == GROUP_SCHEMA
    for name, item in resource_types.items():
        assert await read(client, f"/ResourceTypes/{name}") == item


async def test_resource_type_endpoints_and_schemas_exist(
    client: httpx.AsyncClient,
) -> None:
    """Each resource type's endpoint serves a ListResponse, and each schema it
    names is served by /Schemas."""
    schemas = await schemas_by_id(client)

    for item in await list_of(client, "/ResourceTypes"):
        await list_of(client, item["endpoint"])
        assert item["schema"] in schemas
        for extension in item.get("schemaExtensions", []):
            assert extension["schema"] in schemas


# Schemas


async def test_schemas_are_served_one_by_one(client: httpx.AsyncClient) -> None:
    """RFC 7644 §4: /Schemas lists every schema, and /Schemas/{id} returns it."""
    schemas = await schemas_by_id(client)

    assert set(schemas) == {USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA}
    for urn, schema in schemas.items():
        assert await read(client, f"/Schemas/{urn}") == schema


async def test_user_schema_matches_behaviour(client: httpx.AsyncClient) -> None:
    """The User schema declares what the service enforces: userName is required,
    unique per server and not case-exact; groups and roles are read-only; the
    password is never returned."""
    user = attributes_by_name((await schemas_by_id(client))[USER_SCHEMA])

    assert user["userName"]["required"] is True
    assert user["userName"]["uniqueness"] == "server"
    assert user["userName"]["caseExact"] is False
    assert user["active"]["required"] is True
    assert user["groups"]["mutability"] == "readOnly"
    assert user["roles"]["mutability"] == "readOnly"
    assert user["password"]["returned"] == "never"


async def test_group_schema_matches_behaviour(client: httpx.AsyncClient) -> None:
    """The service rejects a second group with the same displayName, so the
    schema declares it unique; members can only be Users."""
    group = attributes_by_name((await schemas_by_id(client))[GROUP_SCHEMA])
    await create_group(client, "Engineering")
    duplicate = await client.post("/Groups", json=group_body("engineering"))

    assert_scim_error(duplicate, 409, "uniqueness")
    assert group["displayName"]["required"] is True
    assert group["displayName"]["uniqueness"] == "server"
    members = attributes_by_name({"attributes": group["members"]["subAttributes"]})
    assert members["$ref"]["referenceTypes"] == ["User"]
    assert members["type"]["canonicalValues"] == ["User"]


async def test_returned_user_attributes_are_declared(
    client: httpx.AsyncClient,
) -> None:
    """Every attribute of a full User response is declared by the schemas the
    resource lists (RFC 7643 §3), down to sub-attributes."""
    schemas = await schemas_by_id(client)
    boss = await create_user(client, "boss@example.com")
    created = await create_user(
        client,
        "ada@example.com",
        externalId="00u1",
        name={"givenName": "Ada", "familyName": "Lovelace"},
        displayName="Ada Lovelace",
        title="Analyst",
        emails=[{"value": "ada@example.com", "type": "work", "primary": True}],
        phoneNumbers=[{"value": "+44 20 7946 0000", "type": "work"}],
        **{ENTERPRISE_SCHEMA: {"employeeNumber": "7", "manager": boss["id"]}},
    )
    await create_group(client, "Engineering", [created["id"]])
    document = await read(client, f"/Users/{created['id']}")

    assert set(document["schemas"]) == {USER_SCHEMA, ENTERPRISE_SCHEMA}
    assert "groups" in document
    core = attributes_by_name(schemas[USER_SCHEMA])
    extension = attributes_by_name(schemas[ENTERPRISE_SCHEMA])
    for name, value in document.items():
        if name in COMMON_ATTRIBUTES:
            continue
        if name == ENTERPRISE_SCHEMA:
            for sub_name, sub_value in value.items():
                assert_declared(extension, sub_name, sub_value)
            continue
        assert_declared(core, name, value)


def assert_declared(declared: dict[str, dict[str, Any]], name: str, value: Any) -> None:
    assert name in declared, f"{name!r} is returned but not declared"
    sub_attributes = attributes_by_name(
        {"attributes": declared[name].get("subAttributes", [])}
    )
    entries = value if isinstance(value, list) else [value]
    for entry in entries:
        if isinstance(entry, dict):
            for sub_name in entry:
                assert sub_name in sub_attributes, (
                    f"{name}.{sub_name} is returned but not declared"
                )
