"""Fixtures of the admin API tests: the whole application with its lifespan
(scheduler off), an operator key, and two organizations with an admin
credential each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from scim_reconciler.admin import credentials
from scim_reconciler.admin.principal import new_operator_key
from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database
from scim_reconciler.reconcile import secrets
from scim_reconciler.settings import Settings
from tests.conftest import PUBLIC_BASE_URL, Tenant, make_settings, make_tenant

API_URL = f"{PUBLIC_BASE_URL}/admin/v1"
PROBLEM_TYPE = "application/problem+json"
# Failed authentications an address may make before it gets 429.
MAX_FAILURES = 3

# Encrypts connector secrets stored by the tests.
SECRET_KEY = secrets.new_key()

Client = Callable[[str | None], httpx.AsyncClient]


@dataclass(frozen=True)
class OrgAdmin:
    tenant: Tenant
    secret: str
    credential_id: str

    @property
    def slug(self) -> str:
        return self.tenant.org.slug


@pytest.fixture
def operator_key() -> tuple[str, str]:
    return new_operator_key()


@pytest.fixture
def api_settings(database_url: str, operator_key: tuple[str, str]) -> Settings:
    return make_settings(
        database_url,
        operator_key_hashes=[operator_key[1]],
        scheduler_enabled=False,
        sign_in_max_failures=MAX_FAILURES,
        sign_in_window_seconds=60,
        secret_key=SECRET_KEY,
    )


@pytest.fixture
async def app(database: Database, api_settings: Settings) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running, as under uvicorn."""
    application = create_app(api_settings, database)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client_for(app: FastAPI) -> AsyncIterator[Client]:
    """Return a function that makes a client sending ``Authorization: Bearer KEY``."""
    opened: list[httpx.AsyncClient] = []

    def make(key: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url=API_URL,
            headers=headers,
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def operator(client_for: Client, operator_key: tuple[str, str]) -> httpx.AsyncClient:
    return client_for(operator_key[0])


async def make_org_admin(database: Database, slug: str) -> OrgAdmin:
    tenant = await make_tenant(database, slug)
    async with database.write() as session:
        new = await credentials.create_credential(
            session, tenant.org, name=f"{slug} admin"
        )
    return OrgAdmin(tenant, new.secret, new.credential.id)


@pytest.fixture
async def acme(database: Database) -> OrgAdmin:
    return await make_org_admin(database, "acme")


@pytest.fixture
async def globex(database: Database) -> OrgAdmin:
    return await make_org_admin(database, "globex")


@pytest.fixture
def acme_admin(client_for: Client, acme: OrgAdmin) -> httpx.AsyncClient:
    return client_for(acme.secret)


def assert_problem(
    response: httpx.Response, status: int, *words: str
) -> dict[str, Any]:
    """Check a problem details response and that its detail names ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_TYPE)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:scim-reconciler:problem:")
    assert body["title"]
    for word in words:
        assert word in body["detail"], body["detail"]
    assert "Traceback" not in response.text
    return body
