"""Reconciliation end to end against the IdP simulator.

SCIM pushes go to a real ``serve`` process. A ``simulate`` process serves a
directory file as the Okta, Microsoft Graph or OneLogin API, and editing that
file mimics missed pushes. Dry run, apply and re-apply go through the command
line.

The simulator reads its directory file only when it starts, so after each edit
the test starts a new one and sets the connector again from that process's
first output line, which carries a new port and new credentials.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from scim_reconciler.db.engine import Database
from scim_reconciler.reconcile import secrets
from scim_reconciler.services.mappings import add_mapping
from tests.conftest import Tenant
from tests.support.cli import run_cli
from tests.support.idp import idp_group_id, idp_user_id, simulator_process
from tests.support.runs import accounts
from tests.support.server import serve

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

# Person to (number in the IdP ids, givenName, familyName).
PEOPLE = {
    "ada": (1, "Ada", "Lovelace"),
    "bob": (2, "Bob", "Babbage"),
    "cyd": (3, "Cyd", "Charisse"),
    "dan": (4, "Dan", "Dennett"),
    "eve": (5, "Eve", "Easley"),
    "fay": (6, "Fay", "Newcomer"),
}
PUSHED = ("ada", "bob", "cyd", "dan", "eve")
ADMINS_NAME = "Dashboard Admins"
ANALYSTS_NAME = "Analysts"
# Pages of two members, so the admins' listing (three members) takes two requests.
PAGE_SIZE = "2"


@dataclass(frozen=True)
class IdpIds:
    """User and group ids shaped the way one IdP shapes them."""

    users: dict[str, str]
    admins: str
    analysts: str


def ids_for(idp: str) -> IdpIds:
    users = {name: idp_user_id(idp, number) for name, (number, *_) in PEOPLE.items()}
    return IdpIds(users, admins=idp_group_id(idp, 1), analysts=idp_group_id(idp, 2))


def idp_user(
    ids: IdpIds, name: str, *, email: str | None = None, active: bool = True
) -> dict[str, Any]:
    _number, given, family = PEOPLE[name]
    return {
        "id": ids.users[name],
        "userName": f"{name}@example.com",
        "email": email or f"{name}@example.com",
        "givenName": given,
        "familyName": family,
        "active": active,
    }


def directory(
    ids: IdpIds, users: list[dict[str, Any]], admins: list[str], analysts: list[str]
) -> str:
    return json.dumps(
        {
            "users": users,
            "groups": [
                {
                    "id": ids.admins,
                    "name": ADMINS_NAME,
                    "members": [ids.users[name] for name in admins],
                },
                {
                    "id": ids.analysts,
                    "name": ANALYSTS_NAME,
                    "members": [ids.users[name] for name in analysts],
                },
            ],
        }
    )


async def push_user(client: httpx.AsyncClient, ids: IdpIds, name: str) -> str:
    _number, given, family = PEOPLE[name]
    response = await client.post(
        "/Users",
        json={
            "schemas": [USER_SCHEMA],
            "userName": f"{name}@example.com",
            "externalId": ids.users[name],
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
) -> None:
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


@dataclass(frozen=True)
class Cli:
    """The command line against one database, with a key to seal connector secrets."""

    database_url: str
    work_dir: Path
    secret_key: str

    async def run(self, *arguments: str, expected_status: int = 0) -> str:
        result = await asyncio.to_thread(
            run_cli,
            self.database_url,
            self.work_dir,
            *arguments,
            extra_env={"SCIM_RECONCILER_SECRET_KEY": self.secret_key},
        )
        assert result.returncode == expected_status, result.stderr + result.stdout
        return result.stdout

    async def reconcile(
        self, *options: str, expected_status: int = 0
    ) -> dict[str, Any]:
        output = await self.run(
            "reconcile", "acme", "--json", *options, expected_status=expected_status
        )
        report: dict[str, Any] = json.loads(output)
        return report

    async def set_connector(
        self, announced: dict[str, Any], name: str, **settings: Any
    ) -> None:
        """Save the simulator's first line and make it the connector of acme.

        ``settings`` are added to the printed configuration, as an operator
        would edit the saved line.
        """
        config_file = self.work_dir / f"{name}.json"
        connector = {**announced["connector"], **settings}
        config_file.write_text(json.dumps({**announced, "connector": connector}))
        await self.run(
            "connector", "set", "acme", "--config", str(config_file),
            "--max-deactivation-percent", "100",
        )  # fmt: skip


async def user_named(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    found = await client.get(
        "/Users", params={"filter": f'userName eq "{name}@example.com"'}
    )
    resources: list[dict[str, Any]] = found.json()["Resources"]
    assert len(resources) == 1, found.text
    return resources[0]


def role_slugs(user: dict[str, Any]) -> set[str]:
    return {role["value"] for role in user.get("roles", [])}


async def add_mappings(database: Database, tenant: Tenant, ids: IdpIds) -> None:
    """Map the admins by name and the analysts by IdP id, as admins do both."""
    async with database.write() as session:
        org = await session.merge(tenant.org)
        await add_mapping(session, org, group=ADMINS_NAME, role_slug="global_admin")
        await add_mapping(session, org, group=ids.analysts, role_slug="analytics_admin")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("idp", "database_url"),
    [
        ("okta", "sqlite"),
        ("okta", "postgres"),
        ("entra", "sqlite"),
        ("onelogin", "sqlite"),
    ],
    indirect=["database_url"],
)
async def test_simulated_idp_drift_planned_applied_settled(
    idp: str, database: Database, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """Every kind of missed push is read from the IdP's API, fixed, and fixed once.

    Only Okta also runs on PostgreSQL, because the store's part does not depend
    on the IdP.
    """
    ids = ids_for(idp)
    cli = Cli(database_url, tmp_path, secrets.new_key())
    directory_file = tmp_path / "directory.json"
    everyone = [idp_user(ids, name) for name in PUSHED]
    directory_file.write_text(
        directory(ids, everyone, ["ada", "bob", "eve"], ["cyd", "dan"])
    )
    await add_mappings(database, tenant, ids)
    log = tmp_path / "simulate.log"

    with serve(database_url, tmp_path) as server:
        async with httpx.AsyncClient(
            base_url=server.scim_url,
            headers={"Authorization": f"Bearer {tenant.token}"},
            timeout=10,
        ) as client:
            pushed = {name: await push_user(client, ids, name) for name in PUSHED}
            admins = [pushed["ada"], pushed["bob"], pushed["eve"]]
            await push_group(client, ADMINS_NAME, ids.admins, admins)
            analysts = [pushed["cyd"], pushed["dan"]]
            await push_group(client, ANALYSTS_NAME, ids.analysts, analysts)
            async with simulator_process(
                idp, directory_file, log, "--page-size", PAGE_SIZE
            ) as announced:
                await cli.set_connector(announced, "before")
                in_line = await cli.reconcile("--dry-run")
            assert in_line["run"]["status"] == "succeeded", in_line["run"]["error"]
            assert in_line["changes"] == []

            # Eve leaves and her DELETE is pushed; the edits below never reach us.
            deleted = await client.delete(f"/Users/{pushed['eve']}")
            assert deleted.status_code == 204
            changed = [
                idp_user(ids, "ada", email="ada.lovelace@example.com"),
                idp_user(ids, "bob"),
                idp_user(ids, "cyd"),
                idp_user(ids, "dan", active=False),
                idp_user(ids, "eve"),
                idp_user(ids, "fay"),
            ]
            # Bob removed, Cyd moved to the admins, Eve back, Fay added.
            directory_file.write_text(
                directory(ids, changed, ["ada", "cyd", "eve"], ["dan", "fay"])
            )

            async with simulator_process(
                idp, directory_file, log, "--page-size", PAGE_SIZE
            ) as announced:
                await cli.set_connector(announced, "after")
                preview = await cli.reconcile("--dry-run")
                applied = await cli.reconcile()
                names = ("ada", "cyd", "fay")
                versions = {
                    n: (await user_named(client, n))["meta"]["version"] for n in names
                }
                again = await cli.reconcile()

            planned = {(c["kind"], c["userName"]) for c in preview["changes"]}
            assert preview["run"]["status"] == "succeeded", preview["run"]["error"]
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

            assert applied["run"]["status"] == "succeeded", applied["run"]["error"]
            assert {(c["kind"], c["userName"]) for c in applied["changes"]} == planned
            assert all(c["status"] == "applied" for c in applied["changes"])
            assert applied["run"]["drift"] > 0

            assert (await user_named(client, "bob"))["active"] is False
            assert (await user_named(client, "dan"))["active"] is False
            eve = await user_named(client, "eve")
            assert eve["id"] == pushed["eve"]
            assert eve["active"] is True
            fay = await user_named(client, "fay")
            assert fay["externalId"] == ids.users["fay"]
            assert role_slugs(fay) == {"analytics_admin"}
            assert role_slugs(await user_named(client, "cyd")) == {"global_admin"}
            ada = await user_named(client, "ada")
            assert ada["emails"][0]["value"] == "ada.lovelace@example.com"

            assert again["run"]["status"] == "succeeded", again["run"]["error"]
            assert again["changes"] == []
            assert again["run"]["drift"] == 0
            after = {n: (await user_named(client, n))["meta"]["version"] for n in names}
            assert after == versions


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_simulated_fault_fails_cli_run(
    database: Database, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """``simulate --fault`` fails every read of page 2: ``reconcile`` exits 1
    with the IdP's error, and the run creates nobody from page 1."""
    ids = ids_for("okta")
    cli = Cli(database_url, tmp_path, secrets.new_key())
    directory_file = tmp_path / "directory.json"
    everyone = [idp_user(ids, name) for name in PUSHED]
    directory_file.write_text(
        directory(ids, everyone, ["ada", "bob", "eve"], ["cyd", "dan"])
    )
    await add_mappings(database, tenant, ids)

    async with simulator_process(
        "okta", directory_file, tmp_path / "simulate.log",
        "--page-size", PAGE_SIZE, "--fault", "503@members,page=2",
    ) as announced:  # fmt: skip
        # Two attempts keep the real backoff between them to one second.
        await cli.set_connector(announced, "faulty", max_attempts=2)
        failed = await cli.reconcile(expected_status=1)

    assert failed["run"]["status"] == "failed"
    assert "HTTP 503" in failed["run"]["error"]
    assert "after 2 attempts" in failed["run"]["error"]
    assert failed["changes"] == []
    assert await accounts(database, tenant.org.id) == {}
