"""Test databases: a SQLite file per test, and PostgreSQL when configured.

PostgreSQL is used when ``SCIM_RECONCILER_TEST_POSTGRES_URL`` names a server
(for example ``postgresql://postgres@127.0.0.1:5432/test``). Each test session
creates its own database on that server, migrates it once, and empties its
tables after each test. Under ``CI=true`` a missing PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
from sqlalchemy.engine import make_url

POSTGRES_ENV = "SCIM_RECONCILER_TEST_POSTGRES_URL"


def postgres_server_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    return url or None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _libpq(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_libpq(url), timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_postgres_database(server_url: str) -> str:
    """Create a fresh database on the server and return its SQLAlchemy URL."""
    name = f"scimr_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
