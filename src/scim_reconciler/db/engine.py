"""Database engines and sessions.

On SQLite, write transactions start with ``BEGIN IMMEDIATE`` so that a
read-modify-write (a group PATCH, say) holds the write lock from its first read,
and two of them cannot interleave. PostgreSQL gets the same guarantee from row
locks taken with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _prepare_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


@dataclass
class Database:
    """The engines of one database: one for reads and one for writes."""

    url: str
    read_engine: AsyncEngine
    write_engine: AsyncEngine

    @property
    def is_sqlite(self) -> bool:
        return self.read_engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.read_engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """Open a session in a transaction that commits on success."""
        async with (
            AsyncSession(self.write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(self.write_engine, expire_on_commit=False)

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """Create the engines for ``url`` without connecting yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        read_engine = create_async_engine(url)
        write_engine = create_async_engine(url)
        _prepare_sqlite(read_engine, immediate=False)
        _prepare_sqlite(write_engine, immediate=True)
        return Database(url, read_engine, write_engine)
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    return Database(url, engine, engine)
