"""Reads of a SQLite file in the calling thread (``SqliteReader``), and the
fall-back to the driver's thread when the database is busy."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select

from scim_reconciler.db.engine import Database, SqliteReader, open_database
from scim_reconciler.db.migrate import prepare_database
from scim_reconciler.db.models import Organization, ScimToken
from tests.conftest import Tenant, make_settings, make_tenant

TOKEN_QUERY = (
    select(ScimToken.id, ScimToken.expires_at, Organization.slug, Organization.plan)
    .join(Organization, Organization.id == ScimToken.org_id)
    .where(Organization.slug == bindparam("slug"))
)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[tuple[Database, Tenant]]:
    database = await prepare_database(make_settings(store_url), run_migrations=True)
    try:
        yield database, await make_tenant(database)
    finally:
        await database.dispose()


def count_checkouts(database: Database) -> list[int]:
    """Count the connections taken from the read engine's pool."""
    checkouts = [0]

    @event.listens_for(database.read_engine.sync_engine.pool, "checkout")
    def _on_checkout(*_: Any) -> None:
        checkouts[0] += 1

    return checkouts


def lock_exclusively(path: Path) -> sqlite3.Connection:
    """Hold SQLite's exclusive lock on ``path`` until the connection closes.

    In WAL mode only the exclusive locking mode keeps readers out.
    """
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("UPDATE organizations SET name = name")
    locker.execute("COMMIT")
    return locker


def test_file_database_gets_a_reader(store_url: str) -> None:
    assert open_database(store_url).sqlite_reader is not None
    assert open_database("sqlite+aiosqlite://").sqlite_reader is None
    assert open_database("sqlite+aiosqlite:///:memory:").sqlite_reader is None


async def test_fetch_reads_without_the_pool(
    store: tuple[Database, Tenant],
) -> None:
    database, tenant = store
    checkouts = count_checkouts(database)

    rows = await database.fetch(TOKEN_QUERY, {"slug": "acme"})

    assert checkouts == [0]
    through_driver = dataclasses.replace(database, sqlite_reader=None)
    assert rows == await through_driver.fetch(TOKEN_QUERY, {"slug": "acme"})
    assert checkouts == [1]
    [(token_id, expires_at, slug, plan)] = rows
    assert (token_id, slug, plan) == (tenant.token_id, "acme", tenant.org.plan)
    # The value converters ran: an aware datetime, as the ORM returns.
    assert expires_at.tzinfo is not None


async def test_fetch_sees_a_commit_at_once(store: tuple[Database, Tenant]) -> None:
    database, _ = store
    assert await database.fetch(TOKEN_QUERY, {"slug": "globex"}) == []

    await make_tenant(database, "globex")

    assert len(await database.fetch(TOKEN_QUERY, {"slug": "globex"})) == 1


async def test_busy_database_falls_back_to_the_driver_thread(
    store: tuple[Database, Tenant], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reader does not wait on a lock; the driver's thread does, and the
    lookup returns once the lock is released."""
    database, tenant = store
    await database.dispose()
    path = tmp_path / "store.db"
    locker = lock_exclusively(path)
    reader = SqliteReader(str(path))
    try:
        with caplog.at_level(logging.DEBUG, logger="scim_reconciler.db.engine"):
            assert reader.fetch("SELECT slug FROM organizations", []) is None
    finally:
        reader.close()
    assert "SQLite reported SQLITE_BUSY" in caplog.text
    checkouts = count_checkouts(database)

    asyncio.get_running_loop().call_later(0.3, locker.close)
    rows = await database.fetch(TOKEN_QUERY, {"slug": "acme"})

    assert [row[0] for row in rows] == [tenant.token_id]
    assert checkouts == [1]


def test_reader_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x)")
        setup.execute("INSERT INTO t VALUES (1)")
    reader = SqliteReader(str(path))
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.fetch("DELETE FROM t", [])
        assert reader.fetch("SELECT x FROM t", []) == [(1,)]
    finally:
        reader.close()


def test_failed_statement_replaces_the_connection(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x)")
    reader = SqliteReader(str(path))
    try:
        reader.fetch("SELECT x FROM t", [])
        [first] = reader._connections.values()
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            reader.fetch("SELECT x FROM missing", [])
        assert reader._connections == {}
        assert reader.fetch("SELECT count(*) FROM t", []) == [(0,)]
        [second] = reader._connections.values()
    finally:
        reader.close()

    assert second is not first
    assert reader._connections == {}
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        second.execute("SELECT 1")
