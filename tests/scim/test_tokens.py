"""SCIM bearer tokens: shown once, stored as a hash, revocable, scoped to one
organization and only for the professional and enterprise plans."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import Plan, ScimToken, User
from scim_reconciler.services import tokens
from scim_reconciler.settings import Settings
from tests.conftest import Tenant, make_tenant, scim_client
from tests.support.cli import run_cli
from tests.support.resources import (
    assert_scim_error,
    create_group,
    create_user,
    group_body,
    patch_body,
    user_body,
)

SECRET_PATTERN = re.compile(r"scimr_[A-Za-z0-9_-]{43}")


class Clock:
    """A settable stand-in for ``scim_reconciler.clock.utcnow``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Control the time that token creation and authentication read."""
    controlled = Clock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    monkeypatch.setattr("scim_reconciler.services.tokens.utcnow", controlled)
    monkeypatch.setattr("scim_reconciler.scim.auth.utcnow", controlled)
    return controlled


@pytest.fixture
async def other_tenant(database: Database) -> Tenant:
    return await make_tenant(database, "globex")


@pytest.fixture
async def other_client(
    database: Database, settings: Settings, other_tenant: Tenant
) -> AsyncIterator[httpx.AsyncClient]:
    async with scim_client(create_app(settings, database), other_tenant.token) as http:
        yield http


async def database_text(database: Database) -> str:
    """Return every row of every table in the database as one string."""

    def table_names(session: Session) -> list[str]:
        return inspect(session.connection()).get_table_names()

    chunks = []
    async with database.read() as session:
        names = await session.run_sync(table_names)
        for name in names:
            rows = (await session.execute(text(f'SELECT * FROM "{name}"'))).all()
            chunks.append(f"{name}: {rows!r}")
    return "\n".join(chunks)


async def request_with(
    database: Database, settings: Settings, secret: str, path: str = "/Users"
) -> httpx.Response:
    async with scim_client(create_app(settings, database), secret) as http:
        return await http.get(path)


def cli_json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# The secret


async def test_token_create_prints_secret_once(
    database: Database,
    database_url: str,
    settings: Settings,
    tenant: Tenant,
    tmp_path: Path,
) -> None:
    """The secret is shown exactly once, when it is created, and only its
    SHA-256 digest is stored: no table of the database contains it."""
    result = run_cli(
        database_url,
        tmp_path,
        "token",
        "create",
        "acme",
        "--name",
        "Okta Production",
        "--expires-in-days",
        "30",
    )

    assert result.returncode == 0, result.stderr
    secrets = SECRET_PATTERN.findall(result.stdout)
    assert len(secrets) == 1, result.stdout
    secret = secrets[0]
    assert result.stdout.count(secret) == 1
    assert secret not in result.stderr
    stored = await database_text(database)
    assert tokens.hash_secret(secret) in stored
    assert secret not in stored
    assert (await request_with(database, settings, secret)).status_code == 200


async def test_token_list_never_shows_secret(
    database: Database, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """``token list`` shows name, creator, dates and status, never a secret or
    its digest, in the table and in ``--json``."""
    created = cli_json(
        run_cli(
            database_url,
            tmp_path,
            "token",
            "create",
            "acme",
            "--name",
            "Okta Production",
            "--expires-in-days",
            "90",
            "--json",
        )
    )
    secret = created["secret"]

    table = run_cli(database_url, tmp_path, "token", "list", "acme")
    listed = cli_json(
        run_cli(database_url, tmp_path, "token", "list", "acme", "--json")
    )

    assert table.returncode == 0, table.stderr
    assert "Okta Production" in table.stdout
    for output in (table.stdout, json.dumps(listed)):
        assert secret not in output
        assert tokens.hash_secret(secret) not in output
        assert SECRET_PATTERN.search(output) is None
    by_name = {entry["name"]: entry for entry in listed}
    assert set(by_name) == {"Test token", "Okta Production"}
    entry = by_name["Okta Production"]
    assert "secret" not in entry
    assert entry["id"] == created["id"]
    assert entry["status"] == "active"
    assert entry["created_by"] == "operator"
    assert entry["expires_at"]
    assert entry["last_used_at"] is None


async def test_token_records_last_use(
    database: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A request records when the token was last used, for ``token list``."""
    assert (await client.get("/Users")).status_code == 200

    async with database.read() as session:
        token = await session.get(ScimToken, tenant.token_id)

    assert token is not None
    assert token.last_used_at is not None


# Revocation and expiry


async def test_revoked_token_is_401_on_next_request(
    database: Database,
    database_url: str,
    client: httpx.AsyncClient,
    tenant: Tenant,
    tmp_path: Path,
) -> None:
    """Revocation takes effect on the very next request, with a 401 Error;
    users already provisioned stay active."""
    created = await create_user(client, "ada@example.com")
    assert (await client.get("/Users")).status_code == 200

    revoked = run_cli(
        database_url, tmp_path, "token", "revoke", "acme", tenant.token_id
    )
    response = await client.get("/Users")

    assert revoked.returncode == 0, revoked.stderr
    body = assert_scim_error(response, 401)
    assert "revoked" in body["detail"]
    async with database.read() as session:
        user = await session.get(User, created["id"])
    assert user is not None
    assert user.active is True


async def test_new_token_resumes_after_revocation(
    database: Database,
    settings: Settings,
    client: httpx.AsyncClient,
    tenant: Tenant,
) -> None:
    """A new token works at once after the old one was revoked, and reads the
    users provisioned before."""
    created = await create_user(client, "ada@example.com")
    async with database.write() as session:
        await tokens.revoke_token(session, tenant.org, tenant.token_id)
        new = await tokens.create_token(
            session, tenant.org, name="Okta Production", expires_in_days=30
        )

    old = await client.get(f"/Users/{created['id']}")
    fresh = await request_with(
        database, settings, new.secret, f"/Users/{created['id']}"
    )

    assert_scim_error(old, 401)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["active"] is True


async def test_expired_token_is_401_at_expiry(
    database: Database, settings: Settings, tenant: Tenant, clock: Clock
) -> None:
    """A token works until its expiry instant and is rejected from then on.
    The test sets the clock instead of sleeping."""
    created_at = clock.now
    async with database.write() as session:
        new = await tokens.create_token(
            session, tenant.org, name="Entra", expires_in_days=1
        )

    clock.now = created_at + timedelta(days=1) - timedelta(seconds=1)
    before = await request_with(database, settings, new.secret)
    clock.now = created_at + timedelta(days=1)
    at_expiry = await request_with(database, settings, new.secret)

    assert before.status_code == 200, before.text
    body = assert_scim_error(at_expiry, 401)
    assert "expired" in body["detail"]


async def test_token_status_follows_clock(
    database: Database, tenant: Tenant, clock: Clock
) -> None:
    """``token list`` reports active, expired and revoked from the stored times."""
    async with database.write() as session:
        new = await tokens.create_token(
            session, tenant.org, name="Entra", expires_in_days=1
        )
    token = new.token

    active = tokens.token_status(token, clock.now)
    expired = tokens.token_status(token, clock.now + timedelta(days=1))
    async with database.write() as session:
        revoked_token = await tokens.revoke_token(session, tenant.org, token.id)

    assert active is tokens.TokenStatus.active
    assert expired is tokens.TokenStatus.expired
    assert tokens.token_status(revoked_token, clock.now) is tokens.TokenStatus.revoked


# Organizations


async def test_other_organization_lists_are_empty(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    """A token authenticates one organization; lists, filters and searches of
    another organization never show its users and groups."""
    user = await create_user(client, "ada@example.com", externalId="00u1")
    await create_group(client, "Engineering", [user["id"]])

    responses = [
        await other_client.get("/Users"),
        await other_client.get("/Groups"),
        await other_client.get(
            "/Users", params={"filter": 'userName eq "ada@example.com"'}
        ),
        await other_client.get("/Users", params={"filter": 'externalId eq "00u1"'}),
        await other_client.get(
            "/Groups", params={"filter": 'displayName eq "Engineering"'}
        ),
        await other_client.post("/Users/.search", json={"filter": "userName pr"}),
        await other_client.post("/.search", json={}),
    ]

    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json()["totalResults"] == 0
        assert response.json()["Resources"] == []


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("resource_type", ["Users", "Groups"])
async def test_other_organization_resource_is_404(
    client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    method: str,
    resource_type: str,
) -> None:
    """Another organization's user or group is 404 to every method, and a
    failed write leaves it unchanged."""
    user = await create_user(client, "ada@example.com")
    group = await create_group(client, "Engineering", [user["id"]])
    target = user if resource_type == "Users" else group
    location = f"/{resource_type}/{target['id']}"
    before = (await client.get(location)).json()
    bodies: dict[str, Any] = {
        "PUT": user_body("taken@example.com")
        if resource_type == "Users"
        else group_body("Taken"),
        "PATCH": patch_body({"op": "replace", "path": "displayName", "value": "x"}),
    }

    response = await other_client.request(method, location, json=bodies.get(method))

    assert_scim_error(response, 404)
    unchanged = await client.get(location)
    assert unchanged.status_code == 200
    assert unchanged.json() == before


async def test_other_organization_user_cannot_be_member(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    """A group cannot take a user of another organization as a member."""
    user = await create_user(client, "ada@example.com")

    created = await other_client.post(
        "/Groups", json=group_body("Sales", members=[{"value": user["id"]}])
    )
    group = await create_group(other_client, "Support")
    patched = await other_client.patch(
        f"/Groups/{group['id']}",
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
        ),
    )

    assert_scim_error(created, 400, "invalidValue")
    assert_scim_error(patched, 400, "invalidValue")


async def test_user_name_is_unique_per_organization(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    """userName is unique within an organization, not across organizations."""
    first = await create_user(client, "ada@example.com", externalId="00u1")

    second = await create_user(other_client, "ada@example.com", externalId="00u1")

    assert second["id"] != first["id"]


# Plans


@pytest.mark.parametrize("plan", [Plan.free, Plan.starter])
async def test_plan_without_scim_is_403(
    database: Database, settings: Settings, plan: Plan
) -> None:
    """SCIM is for the professional and enterprise plans; others get a 403
    SCIM Error that names the plan and the fix."""
    small = await make_tenant(database, "smallco", plan)

    async with scim_client(create_app(settings, database), small.token) as http:
        listed = await http.get("/Users")
        created = await http.post("/Users", json=user_body("ada@example.com"))

    for response in (listed, created):
        body = assert_scim_error(response, 403)
        assert plan.value in body["detail"]
        assert "professional or enterprise" in body["detail"]


async def test_professional_plan_has_scim(
    database: Database, settings: Settings
) -> None:
    """The professional plan includes SCIM provisioning."""
    professional = await make_tenant(database, "midco", Plan.professional)

    response = await request_with(database, settings, professional.token)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("plan", [Plan.free, Plan.starter])
async def test_token_create_rejects_plan_without_scim(
    database: Database, database_url: str, tmp_path: Path, plan: Plan
) -> None:
    """``token create`` for a free or starter organization fails with a message
    that names the plan and the plans that include SCIM, and stores nothing."""
    small = await make_tenant(database, "smallco", plan)

    result = run_cli(
        database_url,
        tmp_path,
        "token",
        "create",
        "smallco",
        "--name",
        "Okta Production",
        "--expires-in-days",
        "30",
    )

    assert result.returncode == 1
    assert f"{plan.value} plan" in result.stderr
    assert "professional or enterprise" in result.stderr
    assert SECRET_PATTERN.search(result.stdout + result.stderr) is None
    async with database.read() as session:
        stored = (
            await session.scalars(
                select(ScimToken.name).where(ScimToken.org_id == small.org.id)
            )
        ).all()
    assert list(stored) == ["Test token"]
