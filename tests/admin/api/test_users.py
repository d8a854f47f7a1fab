"""Dashboard users, their roles, groups and history; audit events; drift."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.reconcile.runs import Reconciler, RunRequest
from tests.admin.api.conftest import OrgAdmin, assert_problem
from tests.conftest import PUBLIC_BASE_URL
from tests.support.resources import create_group, patch_body
from tests.support.runs import accounts, configure, user_name, write_directory


@pytest.fixture
async def scim(app: FastAPI, acme: OrgAdmin) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=f"{PUBLIC_BASE_URL}/scim/v2",
        headers={"Authorization": f"Bearer {acme.tenant.token}"},
    ) as client:
        yield client


@pytest.fixture
async def reconciled(
    database: Database, acme: OrgAdmin, tmp_path: Path
) -> dict[str, str]:
    """Users 1 to 5 in Dashboard Admins, user 1 also in Analysts; ids by userName."""
    directory = write_directory(tmp_path / "directory.json", range(1, 6), [1])
    await configure(database, acme.tenant.org, directory)
    await Reconciler(database, None).run("acme", RunRequest())
    return {
        name: account.id
        for name, account in (await accounts(database, acme.tenant.org.id)).items()
    }


async def test_search_users_with_roles(
    acme_admin: httpx.AsyncClient, reconciled: dict[str, str]
) -> None:
    everyone = await acme_admin.get("/organizations/acme/users")
    one = await acme_admin.get("/organizations/acme/users", params={"query": "USER1@"})
    paged = await acme_admin.get(
        "/organizations/acme/users", params={"limit": 2, "offset": 4}
    )
    wildcard = await acme_admin.get("/organizations/acme/users", params={"query": "%"})

    assert everyone.json()["total"] == 5
    names = [user["user_name"] for user in everyone.json()["items"]]
    assert names == sorted(names)
    assert [user["user_name"] for user in one.json()["items"]] == [user_name(1)]
    roles = {role["role"] for role in one.json()["items"][0]["roles"]}
    assert roles == {"global_admin", "analytics_admin"}
    assert one.json()["items"][0]["managed_by"] == "idp"
    assert paged.json()["total"] == 5
    assert len(paged.json()["items"]) == 1
    assert paged.json()["next_offset"] is None
    assert wildcard.json()["total"] == 0


async def test_search_leaves_out_deleted_users(
    acme_admin: httpx.AsyncClient,
    scim: httpx.AsyncClient,
    reconciled: dict[str, str],
) -> None:
    user_id = reconciled[user_name(5)]
    assert (await scim.delete(f"/Users/{user_id}")).status_code == 204

    listed = await acme_admin.get("/organizations/acme/users")
    shown = await acme_admin.get(f"/organizations/acme/users/{user_id}")

    assert user_name(5) not in [user["user_name"] for user in listed.json()["items"]]
    assert shown.status_code == 200
    assert shown.json()["deleted"] is True
    assert shown.json()["active"] is False


async def test_user_detail_names_groups_and_mappings(
    acme_admin: httpx.AsyncClient,
    scim: httpx.AsyncClient,
    reconciled: dict[str, str],
) -> None:
    user_id = reconciled[user_name(1)]
    await create_group(scim, "Book Club", [user_id])

    response = await acme_admin.get(f"/organizations/acme/users/{user_id}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_name"] == user_name(1)
    assert body["external_id"] == "00u1"
    groups = {group["display_name"]: group for group in body["groups"]}
    assert set(groups) == {"Analysts", "Book Club", "Dashboard Admins"}
    assert groups["Book Club"]["mappings"] == []
    admins = groups["Dashboard Admins"]["mappings"]
    assert [(m["role"], m["grant"]) for m in admins] == [("global_admin", "full")]
    assert groups["Analysts"]["external_id"] == "00g2"
    assert [m["role"] for m in groups["Analysts"]["mappings"]] == ["analytics_admin"]
    assert {role["role"] for role in body["roles"]} == {
        "global_admin",
        "analytics_admin",
    }


async def test_user_history_has_every_source(
    acme_admin: httpx.AsyncClient,
    scim: httpx.AsyncClient,
    reconciled: dict[str, str],
) -> None:
    """Reconciliation, a SCIM push to the user and a SCIM group push all show."""
    user_id = reconciled[user_name(2)]
    patched = await scim.patch(
        f"/Users/{user_id}",
        json=patch_body({"op": "replace", "path": "displayName", "value": "Two"}),
    )
    assert patched.status_code == 200, patched.text
    await create_group(scim, "Book Club", [user_id])
    await create_group(scim, "Chess Club", [reconciled[user_name(3)]])

    response = await acme_admin.get(f"/organizations/acme/users/{user_id}/history")
    first = await acme_admin.get(
        f"/organizations/acme/users/{user_id}/history", params={"limit": 1}
    )

    assert response.status_code == 200, response.text
    events = response.json()["items"]
    kinds = [(event["source"], event["resource_type"]) for event in events]
    assert kinds[0] == ("scim", "Group")
    assert kinds[1] == ("scim", "User")
    assert ("reconcile", "User") in kinds
    assert all(event["details"].get("displayName") != "Chess Club" for event in events)
    times = [event["at"] for event in events]
    assert times == sorted(times, reverse=True)
    assert first.json()["total"] == response.json()["total"]
    assert first.json()["items"] == events[:1]


async def test_unknown_user_is_404(
    acme_admin: httpx.AsyncClient,
    reconciled: dict[str, str],
    globex: OrgAdmin,
    operator: httpx.AsyncClient,
) -> None:
    """A user id of another organization is not found through this one."""
    own_id = reconciled[user_name(1)]

    missing = await acme_admin.get("/organizations/acme/users/nope")
    history = await acme_admin.get("/organizations/acme/users/nope/history")
    through_other = await operator.get(f"/organizations/globex/users/{own_id}")

    assert_problem(missing, 404, "'nope'")
    assert_problem(history, 404, "'nope'")
    assert_problem(through_other, 404, own_id)


async def test_audit_events_filter_by_source(
    acme_admin: httpx.AsyncClient, reconciled: dict[str, str]
) -> None:
    await acme_admin.post(
        "/organizations/acme/tokens", json={"name": "Okta", "expires_in_days": 5}
    )

    admin = await acme_admin.get(
        "/organizations/acme/audit-events", params={"source": "admin"}
    )
    reconcile = await acme_admin.get(
        "/organizations/acme/audit-events", params={"source": "reconcile", "limit": 3}
    )
    bad = await acme_admin.get(
        "/organizations/acme/audit-events", params={"source": "ldap"}
    )

    sources = {event["source"] for event in admin.json()["items"]}
    assert sources == {"admin"}
    assert admin.json()["items"][0]["action"] == "token_created"
    assert admin.json()["items"][0]["actor"] == "admin:acme admin"
    assert len(reconcile.json()["items"]) == 3
    assert reconcile.json()["total"] > 3
    assert {event["source"] for event in reconcile.json()["items"]} == {"reconcile"}
    assert_problem(bad, 422, "query.source", '"ldap"', "reconcile")


async def test_drift_per_day(
    acme_admin: httpx.AsyncClient, reconciled: dict[str, str]
) -> None:
    response = await acme_admin.get("/organizations/acme/drift", params={"days": 7})
    too_many = await acme_admin.get("/organizations/acme/drift", params={"days": 0})

    assert response.status_code == 200, response.text
    days = response.json()["days"]
    assert len(days) == 7
    assert days[-1]["day"] == utcnow().date().isoformat()
    assert days[0]["day"] == (utcnow().date() - timedelta(days=6)).isoformat()
    assert days[-1]["runs"] == 1
    assert days[-1]["drift"] > 0
    assert response.json()["total_drift"] == days[-1]["drift"]
    assert all(day["drift"] == 0 for day in days[:-1])
    assert_problem(too_many, 422, "query.days", "0")
