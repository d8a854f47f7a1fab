"""Fixtures of the console's HTTP tests: an application on a real database, an
operator key, and an organization admin credential."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI

from scim_reconciler.admin import credentials
from scim_reconciler.admin.principal import new_operator_key
from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database
from scim_reconciler.settings import Settings
from tests.conftest import PUBLIC_BASE_URL, Tenant, make_tenant
from tests.console.forms import ConsoleClient


@dataclass(frozen=True)
class Keys:
    # Kept out of repr, so a failing test's traceback does not print them.
    operator: str = field(repr=False)
    operator_hash: str
    acme_admin: str = field(repr=False)
    other_admin: str = field(repr=False)


@dataclass(frozen=True)
class Console:
    app: FastAPI
    database: Database
    settings: Settings
    keys: Keys
    acme: Tenant
    other: Tenant

    def client(self, base_url: str = PUBLIC_BASE_URL) -> ConsoleClient:
        return ConsoleClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=base_url,
        )


async def make_console(
    database: Database, database_url: str, **overrides: object
) -> Console:
    operator, operator_hash = new_operator_key()
    acme = await make_tenant(database, "acme")
    other = await make_tenant(database, "other")
    async with database.write() as session:
        acme_admin = await credentials.create_credential(
            session, acme.org, name="Ada Lovelace"
        )
        other_admin = await credentials.create_credential(
            session, other.org, name="Grace Hopper"
        )
    values: dict[str, object] = {
        "public_base_url": PUBLIC_BASE_URL,
        "operator_key_hashes": [operator_hash],
        "scheduler_enabled": False,
        **overrides,
    }
    settings = Settings(database_url=database_url, **values)  # type: ignore[arg-type]
    return Console(
        app=create_app(settings, database),
        database=database,
        settings=settings,
        keys=Keys(operator, operator_hash, acme_admin.secret, other_admin.secret),
        acme=acme,
        other=other,
    )


@pytest.fixture
async def console(database: Database, database_url: str) -> Console:
    return await make_console(database, database_url)


@pytest.fixture
async def http(console: Console) -> AsyncIterator[ConsoleClient]:
    async with console.client() as client:
        yield client
