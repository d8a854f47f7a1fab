"""Roles in SCIM User documents: read-only, computed from mapped groups."""

from __future__ import annotations

from typing import Any

import httpx

from scim_reconciler.db.engine import Database
from scim_reconciler.services import mappings
from tests.conftest import Tenant

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def post(client: httpx.AsyncClient, path: str, body: Any) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def map_group(database: Database, tenant: Tenant, group: str, role: str) -> None:
    async with database.write() as session:
        await mappings.add_mapping(session, tenant.org, group=group, role_slug=role)


async def test_roles_only_for_mapped_members(
    client: httpx.AsyncClient, database: Database, tenant: Tenant
) -> None:
    """A member of a mapped group gets the role in reads and lists; a user in no
    group gets no roles attribute."""
    member = await post(
        client, "/Users", {"schemas": [USER_SCHEMA], "userName": "ada@example.com"}
    )
    loner = await post(
        client, "/Users", {"schemas": [USER_SCHEMA], "userName": "bob@example.com"}
    )
    await post(
        client,
        "/Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Analysts",
            "members": [{"value": member["id"]}],
        },
    )
    await map_group(database, tenant, "Analysts", "analytics_admin")

    read_member = (await client.get(f"/Users/{member['id']}")).json()
    read_loner = (await client.get(f"/Users/{loner['id']}")).json()
    listed = (await client.get("/Users", params={"count": 10})).json()

    assert [role["value"] for role in read_member["roles"]] == ["analytics_admin"]
    assert [group["display"] for group in read_member["groups"]] == ["Analysts"]
    assert "roles" not in read_loner
    assert "groups" not in read_loner
    by_id = {user["id"]: user for user in listed["Resources"]}
    assert [role["value"] for role in by_id[member["id"]]["roles"]] == [
        "analytics_admin"
    ]
    assert "roles" not in by_id[loner["id"]]
    assert listed["totalResults"] == 2
