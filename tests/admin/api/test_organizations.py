"""Organizations, plans and organization admin credentials over the admin API."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AuditEvent, Organization, Plan, Source
from tests.admin.api.conftest import Client, OrgAdmin, assert_problem


async def admin_events(database: Database, action: str) -> list[AuditEvent]:
    async with database.read() as session:
        found = await session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == action, AuditEvent.source == Source.admin
            )
        )
        return list(found.all())


async def test_create_organization(
    operator: httpx.AsyncClient, database: Database
) -> None:
    response = await operator.post(
        "/organizations",
        json={"slug": "initech", "name": " Initech ", "plan": "professional"},
    )

    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/admin/v1/organizations/initech"
    body = response.json()
    assert body["slug"] == "initech"
    assert body["name"] == "Initech"
    assert body["plan"] == "professional"
    assert body["scim_enabled"] is True
    assert body["scim_base_url"] == "http://scim.test/scim/v2"
    events = await admin_events(database, "organization_created")
    assert len(events) == 1
    assert events[0].actor is not None
    assert events[0].actor.startswith("operator:")
    assert events[0].resource_id == "initech"


async def test_create_organization_twice_conflicts(
    operator: httpx.AsyncClient, acme: OrgAdmin
) -> None:
    response = await operator.post(
        "/organizations", json={"slug": "acme", "name": "Acme", "plan": "free"}
    )

    body = assert_problem(response, 409, "'acme'")
    assert body["type"].endswith(":conflict")


async def test_create_organization_rejects_bad_values(
    operator: httpx.AsyncClient, database: Database
) -> None:
    bad_slug = await operator.post(
        "/organizations", json={"slug": "Not A Slug", "name": "X", "plan": "free"}
    )
    bad_plan = await operator.post(
        "/organizations", json={"slug": "ok", "name": "X", "plan": "platinum"}
    )
    blank_name = await operator.post(
        "/organizations", json={"slug": "ok", "name": "   ", "plan": "free"}
    )
    unknown_field = await operator.post(
        "/organizations",
        json={"slug": "ok", "name": "X", "plan": "free", "colour": "red"},
    )

    slug_problem = assert_problem(bad_slug, 422, "body.slug", '"Not A Slug"')
    assert slug_problem["errors"][0]["location"] == "body.slug"
    assert_problem(bad_plan, 422, "body.plan", '"platinum"', "enterprise")
    assert_problem(blank_name, 422, "body.name")
    assert_problem(unknown_field, 422, "body.colour", "not a known field")
    async with database.read() as session:
        assert await session.scalar(select(Organization).filter_by(slug="ok")) is None


async def test_list_organizations_pages(
    operator: httpx.AsyncClient, acme: OrgAdmin, globex: OrgAdmin
) -> None:
    first = await operator.get("/organizations", params={"limit": 1})
    second = await operator.get("/organizations", params={"offset": 1, "limit": 1})

    assert first.status_code == 200
    assert first.json()["total"] == 2
    assert [item["slug"] for item in first.json()["items"]] == ["acme"]
    assert first.json()["next_offset"] == 1
    assert [item["slug"] for item in second.json()["items"]] == ["globex"]
    assert second.json()["next_offset"] is None


async def test_change_plan(
    operator: httpx.AsyncClient, acme: OrgAdmin, database: Database
) -> None:
    response = await operator.patch("/organizations/acme", json={"plan": "starter"})

    assert response.status_code == 200, response.text
    assert response.json()["plan"] == "starter"
    assert response.json()["scim_enabled"] is False
    async with database.read() as session:
        stored = await session.get(Organization, acme.tenant.org.id)
    assert stored is not None
    assert stored.plan is Plan.starter
    events = await admin_events(database, "plan_changed")
    assert [event.details for event in events] == [
        {"before": "enterprise", "after": "starter"}
    ]


async def test_change_plan_of_missing_org(operator: httpx.AsyncClient) -> None:
    response = await operator.patch("/organizations/nobody", json={"plan": "free"})

    assert_problem(response, 404, "'nobody'")


async def test_admin_credential_lifecycle(
    operator: httpx.AsyncClient, client_for: Client, acme: OrgAdmin, database: Database
) -> None:
    created = await operator.post(
        "/organizations/acme/admin-credentials", json={"name": "Grace Hopper"}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    credential_id = created.json()["id"]
    signed_in = await client_for(secret).get("/me")

    listed = await operator.get("/organizations/acme/admin-credentials")
    revoked = await operator.delete(
        f"/organizations/acme/admin-credentials/{credential_id}"
    )
    after = await client_for(secret).get("/me")

    assert signed_in.json()["name"] == "admin:Grace Hopper"
    names = [item["name"] for item in listed.json()["items"]]
    assert names == ["acme admin", "Grace Hopper"]
    assert secret not in listed.text
    assert all("secret" not in item for item in listed.json()["items"])
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert_problem(after, 401)
    created_events = await admin_events(database, "admin_credential_created")
    assert created_events[-1].actor is not None
    assert created_events[-1].actor.startswith("operator:")
    assert len(await admin_events(database, "admin_credential_revoked")) == 1


async def test_revoke_unknown_credential(
    operator: httpx.AsyncClient, acme: OrgAdmin, globex: OrgAdmin
) -> None:
    """A credential of another organization is not found through this one."""
    response = await operator.delete(
        f"/organizations/acme/admin-credentials/{globex.credential_id}"
    )

    assert_problem(response, 404, repr(globex.credential_id))
