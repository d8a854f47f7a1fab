"""Fixtures: a migrated database (SQLite, and PostgreSQL when configured),
an enterprise organization with a SCIM token, and SCIM clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database
from scim_reconciler.db.migrate import prepare_database
from scim_reconciler.db.models import Base, Organization, Plan
from scim_reconciler.services import organizations, tokens
from scim_reconciler.settings import Settings
from tests.support.databases import (
    POSTGRES_ENV,
    create_postgres_database,
    drop_postgres_database,
    in_ci,
    postgres_server_url,
)

PUBLIC_BASE_URL = "http://scim.test"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    server = postgres_server_url()
    if server is None:
        if in_ci():
            pytest.fail(f"CI=true needs PostgreSQL: set {POSTGRES_ENV}")
        yield None
        return
    url = create_postgres_database(server)
    try:
        yield url
    finally:
        drop_postgres_database(server, url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    url: str | None = request.getfixturevalue("postgres_url")
    if url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    return url


def make_settings(database_url: str, **overrides: object) -> Settings:
    return Settings(
        database_url=database_url, public_base_url=PUBLIC_BASE_URL, **overrides
    )  # type: ignore[arg-type]


async def _empty_tables(database: Database) -> None:
    if database.is_sqlite:
        return
    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with database.write() as session:
        await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    settings = make_settings(database_url)
    database = await prepare_database(settings, run_migrations=True)
    await _empty_tables(database)
    from scim_reconciler.db.migrate import sync_role_catalog

    await sync_role_catalog(database, settings.roles)
    try:
        yield database
    finally:
        await database.dispose()


@dataclass
class Tenant:
    org: Organization
    token: str
    token_id: str


async def make_tenant(
    database: Database, slug: str = "acme", plan: Plan = Plan.enterprise
) -> Tenant:
    async with database.write() as session:
        org = await organizations.create_organization(
            session, slug, slug.title(), Plan.enterprise
        )
        new = await tokens.create_token(
            session, org, name="Test token", expires_in_days=30
        )
        org.plan = plan
        return Tenant(org, new.secret, new.token.id)


@pytest.fixture
async def tenant(database: Database) -> Tenant:
    return await make_tenant(database)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


def scim_client(app: object, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url=f"{PUBLIC_BASE_URL}/scim/v2",
        headers=headers,
    )


@pytest.fixture
async def client(
    database: Database, settings: Settings, tenant: Tenant
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database)
    async with scim_client(app, tenant.token) as http:
        yield http
