"""SCIM tokens, the role catalog and group-to-role mappings over the admin API."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AuditEvent, Plan, RoleMapping, Source
from scim_reconciler.services import organizations
from tests.admin.api.conftest import OrgAdmin, assert_problem
from tests.conftest import PUBLIC_BASE_URL


async def test_create_token_returns_secret_once(
    acme_admin: httpx.AsyncClient, acme: OrgAdmin, database: Database
) -> None:
    created = await acme_admin.post(
        "/organizations/acme/tokens",
        json={"name": "Okta Production", "expires_in_days": 90},
    )
    listed = await acme_admin.get("/organizations/acme/tokens")

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("scimr_")
    assert body["created_by"] == "admin:acme admin"
    assert body["status"] == "active"
    assert body["scim_base_url"] == f"{PUBLIC_BASE_URL}/scim/v2"
    assert created.headers["location"].endswith(f"/tokens/{body['id']}")
    assert listed.json()["total"] == 2
    assert body["secret"] not in listed.text
    async with database.read() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.resource_id == body["id"])
        )
    assert event is not None
    assert event.source is Source.admin
    assert event.actor == "admin:acme admin"
    assert body["secret"] not in str(event.details)


async def test_new_token_authenticates_scim_and_revocation_stops_it(
    acme_admin: httpx.AsyncClient, app: object, acme: OrgAdmin
) -> None:
    created = await acme_admin.post(
        "/organizations/acme/tokens", json={"name": "Entra", "expires_in_days": 1}
    )
    secret, token_id = created.json()["secret"], created.json()["id"]
    scim = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url=f"{PUBLIC_BASE_URL}/scim/v2",
        headers={"Authorization": f"Bearer {secret}"},
    )
    async with scim:
        before = await scim.get("/Users")
        revoked = await acme_admin.delete(f"/organizations/acme/tokens/{token_id}")
        after = await scim.get("/Users")

    assert before.status_code == 200
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert after.status_code == 401


async def test_token_needs_scim_plan(
    acme_admin: httpx.AsyncClient, acme: OrgAdmin, database: Database
) -> None:
    async with database.write() as session:
        await organizations.change_plan(session, "acme", Plan.starter)

    response = await acme_admin.post(
        "/organizations/acme/tokens", json={"name": "Okta", "expires_in_days": 30}
    )

    body = assert_problem(response, 403, "starter", "professional or enterprise")
    assert body["type"].endswith(":not-allowed")


async def test_token_rejects_bad_values(acme_admin: httpx.AsyncClient) -> None:
    too_long = await acme_admin.post(
        "/organizations/acme/tokens", json={"name": "Okta", "expires_in_days": 99999}
    )
    no_name = await acme_admin.post(
        "/organizations/acme/tokens", json={"expires_in_days": 30}
    )

    assert_problem(too_long, 422, "body.expires_in_days", "99999", "3650")
    assert_problem(no_name, 422, "body.name", "missing")


async def test_revoke_unknown_token(acme_admin: httpx.AsyncClient) -> None:
    response = await acme_admin.delete("/organizations/acme/tokens/nope")

    assert_problem(response, 404, "'nope'", "'acme'")


async def test_revoke_other_orgs_token_through_own_org(
    acme_admin: httpx.AsyncClient, globex: OrgAdmin
) -> None:
    response = await acme_admin.delete(
        f"/organizations/acme/tokens/{globex.tenant.token_id}"
    )

    assert_problem(response, 404, globex.tenant.token_id)


async def test_role_catalog(acme_admin: httpx.AsyncClient) -> None:
    response = await acme_admin.get("/roles")

    assert response.status_code == 200
    roles = {item["slug"]: item["name"] for item in response.json()["items"]}
    assert roles["global_admin"] == "Global Administrator"
    assert len(roles) == response.json()["total"] == 9


async def test_add_list_remove_mapping(
    acme_admin: httpx.AsyncClient, database: Database
) -> None:
    full = await acme_admin.post(
        "/organizations/acme/mappings",
        json={"group": "Dashboard Admins", "role": "global_admin"},
    )
    limited = await acme_admin.post(
        "/organizations/acme/mappings",
        json={
            "group": "00g2",
            "role": "course_management_admin",
            "grant": "limited",
            "object_ids": ["course-2", "course-1"],
        },
    )
    listed = await acme_admin.get("/organizations/acme/mappings")
    removed = await acme_admin.delete(
        f"/organizations/acme/mappings/{full.json()['id']}"
    )
    after = await acme_admin.get("/organizations/acme/mappings")

    assert full.status_code == 201, full.text
    assert full.json()["grant"] == "full"
    assert full.json()["role_name"] == "Global Administrator"
    assert limited.json()["object_ids"] == ["course-1", "course-2"]
    assert listed.json()["total"] == 2
    assert removed.status_code == 200
    assert [item["group"] for item in after.json()["items"]] == ["00g2"]
    async with database.read() as session:
        actors = (
            await session.scalars(
                select(AuditEvent.actor).where(
                    AuditEvent.resource_type == "RoleMapping"
                )
            )
        ).all()
    assert actors == ["admin:acme admin"] * 3


async def test_mapping_rejects_bad_values(
    acme_admin: httpx.AsyncClient, database: Database
) -> None:
    unknown_role = await acme_admin.post(
        "/organizations/acme/mappings", json={"group": "G", "role": "superuser"}
    )
    limited_without_objects = await acme_admin.post(
        "/organizations/acme/mappings",
        json={"group": "G", "role": "api_admin", "grant": "limited"},
    )
    full_with_objects = await acme_admin.post(
        "/organizations/acme/mappings",
        json={"group": "G", "role": "api_admin", "object_ids": ["c1"]},
    )
    bad_grant = await acme_admin.post(
        "/organizations/acme/mappings",
        json={"group": "G", "role": "api_admin", "grant": "partial"},
    )
    empty_group = await acme_admin.post(
        "/organizations/acme/mappings", json={"group": " ", "role": "api_admin"}
    )

    assert_problem(unknown_role, 422, "'superuser'", "global_admin")
    assert_problem(limited_without_objects, 422, "object_ids")
    assert_problem(full_with_objects, 422, "object_ids", "limited")
    assert_problem(bad_grant, 422, "body.grant", '"partial"')
    assert_problem(empty_group, 422, "body.group")
    async with database.read() as session:
        assert (await session.scalars(select(RoleMapping))).all() == []


async def test_duplicate_mapping_conflicts(acme_admin: httpx.AsyncClient) -> None:
    body = {"group": "Analysts", "role": "analytics_admin"}
    await acme_admin.post("/organizations/acme/mappings", json=body)

    response = await acme_admin.post(
        "/organizations/acme/mappings", json={**body, "group": "analysts"}
    )

    assert_problem(response, 409, "'analysts'", "analytics_admin")


async def test_remove_unknown_mapping(acme_admin: httpx.AsyncClient) -> None:
    missing = await acme_admin.delete("/organizations/acme/mappings/999")
    not_a_number = await acme_admin.delete("/organizations/acme/mappings/abc")

    assert_problem(missing, 404, "mapping 999")
    assert_problem(not_a_number, 422, "path.mapping_id", '"abc"')
