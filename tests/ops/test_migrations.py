"""Migrations on start with several replicas: they take turns on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from scim_reconciler.db.engine import open_database
from scim_reconciler.db.migrate import is_at_head, migrate
from tests.support.databases import (
    POSTGRES_ENV,
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)

REPLICAS = 3
# Without the lock, concurrent migrations deadlock instead of failing.
MIGRATE_TIMEOUT_SECONDS = 60


@pytest.mark.postgres
async def test_replicas_migrating_at_once_all_succeed() -> None:
    server_url = postgres_server_url()
    if server_url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url = await asyncio.to_thread(create_postgres_database, server_url)
    databases = [open_database(url) for _ in range(REPLICAS)]
    try:
        async with asyncio.timeout(MIGRATE_TIMEOUT_SECONDS):
            results = await asyncio.gather(
                *(migrate(database) for database in databases),
                return_exceptions=True,
            )
        at_head = await is_at_head(databases[0])
    finally:
        for database in databases:
            await database.dispose()
        await asyncio.to_thread(drop_postgres_database, server_url, url)

    assert [result for result in results if result is not None] == []
    assert at_head
