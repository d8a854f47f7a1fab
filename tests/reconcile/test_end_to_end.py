"""Reconciliation end to end: SCIM pushes to a real ``serve`` process, missed
pushes mimicked by editing the directory file, then dry run, apply and re-apply
through the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from scim_reconciler.db.engine import Database
from tests.conftest import Tenant
from tests.support.cli import run_cli
from tests.support.server import serve

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

PEOPLE = {
    "ada": ("00u1", "Ada", "Lovelace"),
    "bob": ("00u2", "Bob", "Babbage"),
    "cyd": ("00u3", "Cyd", "Charisse"),
    "dan": ("00u4", "Dan", "Dennett"),
    "eve": ("00u5", "Eve", "Easley"),
}


def idp_user(
    name: str, *, email: str | None = None, active: bool = True
) -> dict[str, Any]:
    external_id, given, family = PEOPLE.get(name, ("00u6", name.title(), "Newcomer"))
    return {
        "id": external_id,
        "userName": f"{name}@example.com",
        "email": email or f"{name}@example.com",
        "givenName": given,
        "familyName": family,
        "active": active,
    }


def directory(
    users: list[dict[str, Any]], admins: list[str], analysts: list[str]
) -> str:
    return json.dumps(
        {
            "users": users,
            "groups": [
                {"id": "00g1", "name": "Dashboard Admins", "members": admins},
                {"id": "00g2", "name": "Analysts", "members": analysts},
            ],
        }
    )


async def push_user(client: httpx.AsyncClient, name: str) -> str:
    external_id, given, family = PEOPLE[name]
    response = await client.post(
        "/Users",
        json={
            "schemas": [USER_SCHEMA],
            "userName": f"{name}@example.com",
            "externalId": external_id,
            "name": {"givenName": given, "familyName": family},
            "emails": [
                {"value": f"{name}@example.com", "type": "work", "primary": True}
            ],
            "active": True,
        },
    )
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


async def push_group(
    client: httpx.AsyncClient, name: str, external_id: str, members: list[str]
) -> str:
    response = await client.post(
        "/Groups",
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "externalId": external_id,
            "members": [{"value": member} for member in members],
        },
    )
    assert response.status_code == 201, response.text
    group_id: str = response.json()["id"]
    return group_id


async def reconcile(database_url: str, work_dir: Path, *options: str) -> dict[str, Any]:
    result = await asyncio.to_thread(
        run_cli, database_url, work_dir, "reconcile", "acme", "--json", *options
    )
    assert result.returncode == 0, result.stderr + result.stdout
    report: dict[str, Any] = json.loads(result.stdout)
    return report


async def cli(database_url: str, work_dir: Path, *arguments: str) -> None:
    result = await asyncio.to_thread(run_cli, database_url, work_dir, *arguments)
    assert result.returncode == 0, result.stderr + result.stdout


async def user_named(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    found = await client.get(
        "/Users", params={"filter": f'userName eq "{name}@example.com"'}
    )
    resources: list[dict[str, Any]] = found.json()["Resources"]
    assert len(resources) == 1, found.text
    return resources[0]


def role_slugs(user: dict[str, Any]) -> set[str]:
    return {role["value"] for role in user.get("roles", [])}


@pytest.mark.slow
async def test_missed_pushes_are_planned_applied_and_settle(
    database: Database, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """Every kind of missed push is found with a reason, fixed, and fixed once."""
    directory_file = tmp_path / "directory.json"
    everyone = [idp_user(name) for name in PEOPLE]
    admins, analysts = ["00u1", "00u2", "00u5"], ["00u3", "00u4"]
    directory_file.write_text(directory(everyone, admins, analysts))
    mapping = ("mapping", "add", "acme", "--group")
    await cli(
        database_url, tmp_path, *mapping, "Dashboard Admins", "--role", "global_admin"
    )
    await cli(database_url, tmp_path, *mapping, "00g2", "--role", "analytics_admin")
    await cli(
        database_url, tmp_path, "connector", "set", "acme", "--kind", "file",
        "--path", str(directory_file), "--max-deactivation-percent", "100",
    )  # fmt: skip

    with serve(database_url, tmp_path) as server:
        async with httpx.AsyncClient(
            base_url=server.scim_url,
            headers={"Authorization": f"Bearer {tenant.token}"},
            timeout=10,
        ) as client:
            ids = {name: await push_user(client, name) for name in PEOPLE}
            members = [ids["ada"], ids["bob"], ids["eve"]]
            await push_group(client, "Dashboard Admins", "00g1", members)
            await push_group(client, "Analysts", "00g2", [ids["cyd"], ids["dan"]])
            in_line = await reconcile(database_url, tmp_path, "--dry-run")
            assert in_line["changes"] == []

            # Eve leaves and her DELETE is pushed; the edits below never reach us.
            deleted = await client.delete(f"/Users/{ids['eve']}")
            assert deleted.status_code == 204
            changed = [
                idp_user("ada", email="ada.lovelace@example.com"),
                idp_user("bob"),
                idp_user("cyd"),
                idp_user("dan", active=False),
                idp_user("eve"),
                idp_user("fay"),
            ]
            # Bob removed, Cyd moved to the admins, Eve back, Fay added.
            directory_file.write_text(
                directory(changed, ["00u1", "00u3", "00u5"], ["00u4", "00u6"])
            )

            preview = await reconcile(database_url, tmp_path, "--dry-run")
            planned = {(c["kind"], c["userName"]) for c in preview["changes"]}
            assert preview["run"]["status"] == "succeeded"
            assert all(c["status"] == "planned" for c in preview["changes"])
            assert all(c["reason"] for c in preview["changes"])
            assert ("deactivate", "bob@example.com") in planned
            assert ("create", "fay@example.com") in planned
            assert ("membership_change", "cyd@example.com") in planned
            assert ("role_change", "cyd@example.com") in planned
            assert ("deactivate", "dan@example.com") in planned
            assert ("reactivate", "eve@example.com") in planned
            assert ("profile_update", "ada@example.com") in planned
            touched = {name.split("@")[0] for _kind, name in planned}
            assert touched == {"ada", "bob", "cyd", "dan", "eve", "fay"}

            applied = await reconcile(database_url, tmp_path)
            assert applied["run"]["status"] == "succeeded"
            assert {(c["kind"], c["userName"]) for c in applied["changes"]} == planned
            assert all(c["status"] == "applied" for c in applied["changes"])
            assert applied["run"]["drift"] > 0

            assert (await user_named(client, "bob"))["active"] is False
            assert (await user_named(client, "dan"))["active"] is False
            eve = await user_named(client, "eve")
            assert eve["id"] == ids["eve"]
            assert eve["active"] is True
            fay = await user_named(client, "fay")
            assert fay["externalId"] == "00u6"
            assert role_slugs(fay) == {"analytics_admin"}
            assert role_slugs(await user_named(client, "cyd")) == {"global_admin"}
            ada = await user_named(client, "ada")
            assert ada["emails"][0]["value"] == "ada.lovelace@example.com"

            names = ("ada", "cyd", "fay")
            versions = {
                n: (await user_named(client, n))["meta"]["version"] for n in names
            }
            again = await reconcile(database_url, tmp_path)
            assert again["changes"] == []
            assert again["run"]["drift"] == 0
            after = {n: (await user_named(client, n))["meta"]["version"] for n in names}
            assert after == versions
