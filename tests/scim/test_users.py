"""SCIM Users endpoint: create, read, filter, replace, patch, delete (RFC 7644 §3)."""

from __future__ import annotations

from typing import Any

import httpx

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def user_body(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **extra}


async def create(
    client: httpx.AsyncClient, user_name: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post("/Users", json=user_body(user_name, **extra))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_create_returns_resource_with_meta(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.3: 201 with the full resource, Location and ETag."""
    response = await client.post(
        "/Users", json=user_body("ada@example.com", externalId="00u1")
    )

    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["userName"] == "ada@example.com"
    assert body["externalId"] == "00u1"
    assert body["active"] is True
    assert body["meta"]["location"] == f"http://scim.test/scim/v2/Users/{body['id']}"
    assert response.headers["location"] == body["meta"]["location"]
    assert response.headers["etag"] == body["meta"]["version"]


async def test_duplicate_user_name_differing_in_case_is_409(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "Ada@Example.com")

    response = await client.post("/Users", json=user_body("ada@EXAMPLE.com"))

    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"
    assert response.json()["status"] == "409"


async def test_filter_user_name_ignores_case(client: httpx.AsyncClient) -> None:
    created = await create(client, "Ada@Example.com")

    response = await client.get(
        "/Users", params={"filter": 'userName eq "ADA@example.COM"'}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["totalResults"] == 1
    assert body["Resources"][0]["id"] == created["id"]


async def test_unknown_filter_attribute_is_invalid_filter(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/Users", params={"filter": 'title eq "x"'})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"
    assert "title" in response.json()["detail"]


async def test_deleted_user_returns_with_same_id(client: httpx.AsyncClient) -> None:
    created = await create(client, "ada@example.com", externalId="00u1")
    assert (await client.delete(f"/Users/{created['id']}")).status_code == 204
    assert (await client.get(f"/Users/{created['id']}")).status_code == 404

    returned = await create(client, "ada@example.com", externalId="00u1")

    assert returned["id"] == created["id"]
    assert returned["active"] is True


async def test_stale_if_match_is_412(client: httpx.AsyncClient) -> None:
    created = await create(client, "ada@example.com")
    patch = {"Operations": [{"op": "replace", "value": {"displayName": "Ada"}}]}
    first = await client.patch(f"/Users/{created['id']}", json=patch)
    assert first.status_code == 200

    response = await client.patch(
        f"/Users/{created['id']}",
        json=patch,
        headers={"If-Match": created["meta"]["version"]},
    )

    assert response.status_code == 412


async def test_email_on_local_domain_is_accepted(client: httpx.AsyncClient) -> None:
    """Entra ID syncs on-premises AD addresses such as user@corp.local as they are."""
    created = await create(
        client, "ada@corp.local", emails=[{"value": "ada@corp.local", "primary": True}]
    )

    assert created["emails"][0]["value"] == "ada@corp.local"


async def test_email_without_at_sign_is_invalid_value(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/Users", json=user_body("ada", emails=[{"value": "emailName357"}])
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
