"""SCIM request bodies and calls that many tests share."""

from __future__ import annotations

from typing import Any

import httpx

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_MEDIA_TYPE = "application/scim+json"


def user_body(user_name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}


def group_body(display_name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [GROUP_SCHEMA], "displayName": display_name, **attributes}


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def json_of(response: httpx.Response) -> dict[str, Any]:
    """Return the response's JSON object, failing with the body if it is not one."""
    body = response.json()
    assert isinstance(body, dict), response.text
    return body


async def create_user(
    client: httpx.AsyncClient, user_name: str, **attributes: Any
) -> dict[str, Any]:
    response = await client.post("/Users", json=user_body(user_name, **attributes))
    assert response.status_code == 201, response.text
    return json_of(response)


async def create_group(
    client: httpx.AsyncClient,
    display_name: str,
    member_ids: list[str] | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    if member_ids is not None:
        attributes["members"] = [{"value": user_id} for user_id in member_ids]
    response = await client.post("/Groups", json=group_body(display_name, **attributes))
    assert response.status_code == 201, response.text
    return json_of(response)


async def read(client: httpx.AsyncClient, location: str) -> dict[str, Any]:
    response = await client.get(location)
    assert response.status_code == 200, response.text
    return json_of(response)


async def member_ids(client: httpx.AsyncClient, group_id: str) -> set[str]:
    group = await read(client, f"/Groups/{group_id}")
    return {member["value"] for member in group.get("members", [])}


def assert_scim_error(
    response: httpx.Response, status: int, scim_type: str | None = None
) -> dict[str, Any]:
    """Check an Error response (RFC 7644 §3.12) and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_MEDIA_TYPE)
    body = json_of(response)
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    assert body.get("detail"), body
    return body
