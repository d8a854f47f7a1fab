"""Database engines and sessions.

On SQLite, write transactions start with ``BEGIN IMMEDIATE`` so that a
read-modify-write (a group PATCH, say) holds the write lock from its first read,
and two of them cannot interleave. PostgreSQL gets the same guarantee from row
locks taken with ``SELECT ... FOR UPDATE``.

``Database.fetch`` runs one SELECT on the driver connection itself, for the
hottest read (the SCIM userName lookup): SQLAlchemy compiles the statement and
converts the result values, but neither a session nor a transaction wraps it.
On a SQLite file it runs in the calling thread (``SqliteReader``).

On SQLite the write transactions of one process take turns in arrival order
(``SqliteWriteQueue``) instead of polling for the write lock.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, event, exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000

# Pre-ping tests only a connection that sat in the pool longer than this. Under
# steady traffic a connection comes back within milliseconds, and a test on
# every use costs three round trips (the asyncpg ping of SQLAlchemy 2.1 is
# BEGIN, an empty statement and ROLLBACK). Drops by a restart, a failover, a firewall or
# a connection pooler build up while connections sit idle.
PRE_PING_IDLE_SECONDS = 1.0


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

    # Replaces the pool's rollback on return (the engines are created with
    # pool_reset_on_return=None). A rollback is a hand-off to the driver's
    # thread, and a connection that ``Database.fetch`` used is in no
    # transaction, so the listener rolls back only one that is.
    @event.listens_for(engine.sync_engine.pool, "reset")
    def _on_reset(
        dbapi_connection: Any, _record: ConnectionPoolEntry, state: PoolResetState
    ) -> None:
        if state.transaction_was_reset or not state.asyncio_safe:
            return
        if dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()


def _pre_ping_idle(engine: AsyncEngine) -> None:
    """Test a connection at checkout if it sat idle for PRE_PING_IDLE_SECONDS.

    This is SQLAlchemy's ``pool_pre_ping`` with a time condition: a connection
    that the database dropped makes the pool discard it and every connection
    opened before it, and the checkout gets a new one.
    """
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _on_checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any
    ) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None:
            return  # a new connection
        if time.monotonic() - checked_in_at < PRE_PING_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError() from error
            raise


@dataclass(frozen=True)
class DriverStatement:
    """A SELECT compiled for one dialect, with what turns driver values into
    the values that SQLAlchemy would return."""

    sql: str
    parameter_names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def compile(cls, statement: Select[Any], dialect: Dialect) -> DriverStatement:
        compiled = statement.compile(dialect=dialect)
        # Both drivers take positional parameters: "?" on SQLite, "$1" on asyncpg.
        assert compiled.positiontup is not None
        processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        return cls(str(compiled), tuple(compiled.positiontup), processors)

    def convert(self, row: Any) -> tuple[Any, ...]:
        return tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(self.processors, row, strict=True)
        )


class SqliteReader:
    """Run a SELECT on a SQLite file in the calling thread.

    aiosqlite runs every statement in a thread of its own and wakes the event
    loop with the result. The two thread switches and the wake-up cost more
    CPU time than an indexed read of a few rows. In WAL mode readers and the
    writer do not block each other, so this reader runs the statement in the
    event loop's thread, on a read-only connection of that thread. SQLite's
    documentation of WAL mode (sqlite.org/wal.html) lists the rare cases in
    which a reader still gets SQLITE_BUSY, such as recovery of the WAL after a
    crash. The reader does not wait then: ``fetch`` returns None, and the
    caller reads through the driver's thread, which waits.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._connections: dict[int, sqlite3.Connection] = {}
        self._lock = threading.Lock()

    def fetch(self, sql: str, values: list[Any]) -> list[Any] | None:
        connection = self._connection()
        try:
            cursor = connection.execute(sql, values)
            try:
                return cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF in (
                sqlite3.SQLITE_BUSY,
                sqlite3.SQLITE_LOCKED,
            ):
                logger.debug(
                    "SQLite reported %s to a read of %s; reading through the "
                    "driver's thread instead",
                    error.sqlite_errorname,
                    self.path,
                )
                return None
            self._discard(connection)
            raise
        except BaseException:
            self._discard(connection)
            raise

    def _connection(self) -> sqlite3.Connection:
        thread = threading.get_ident()
        connection = self._connections.get(thread)
        if connection is None:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA query_only=ON")
            connection.execute("PRAGMA busy_timeout=0")
            with self._lock:
                self._connections[thread] = connection
        return connection

    def _discard(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            for thread, known in list(self._connections.items()):
                if known is connection:
                    del self._connections[thread]
        connection.close()

    def close(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for connection in connections:
            connection.close()


class SqliteWriteQueue:
    """Let the write transactions of one process take SQLite's write lock in turn.

    A SQLite file has one write lock. A transaction that finds it taken waits
    in SQLite's busy handler, which sleeps 1, 2, 5, 10 ms and so on up to
    100 ms between tries (``sqliteDefaultBusyCallback`` in SQLite's main.c).
    In the SCIM benchmark, 8 concurrent writers gave creates a p50 of 33 ms
    and a p99 of 1.9 s. The writers of this process queue on an asyncio lock
    instead, in arrival order. The busy handler still decides between
    processes.
    """

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        # One lock per event loop, because an asyncio lock serves one loop.
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Lock
        ] = weakref.WeakKeyDictionary()

    def is_busy(self) -> bool:
        """Tell whether a write transaction of this process has its turn now."""
        try:
            lock = self._locks.get(asyncio.get_running_loop())
        except RuntimeError:
            return False
        return lock is not None and lock.locked()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for this transaction's turn, at most ``timeout_seconds``."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await lock.acquire()
        except TimeoutError:
            raise TimeoutError(
                f"a write transaction waited {self.timeout_seconds:g} s for its "
                "turn at the SQLite database; another write transaction of this "
                "process held it"
            ) from None
        try:
            yield
        finally:
            lock.release()


@dataclass
class Database:
    """The engines of one database: one for reads and one for writes."""

    url: str
    read_engine: AsyncEngine
    write_engine: AsyncEngine
    sqlite_reader: SqliteReader | None = None
    sqlite_writers: SqliteWriteQueue | None = None
    _driver_statements: dict[int, tuple[Select[Any], DriverStatement]] = field(
        default_factory=dict, repr=False
    )

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
        turn = self.sqlite_writers.turn() if self.sqlite_writers else nullcontext()
        async with (
            turn,
            AsyncSession(self.write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @asynccontextmanager
    async def write_unless_busy(self) -> AsyncIterator[AsyncSession | None]:
        """Open a write session as ``write`` does, or yield None at once when
        this process's SQLite write transactions are queued.

        For writes that may be skipped, such as a token's last-used time,
        which a read should not wait for.
        """
        if self.sqlite_writers is not None and self.sqlite_writers.is_busy():
            yield None
            return
        async with self.write() as session:
            yield session

    async def fetch(
        self, statement: Select[Any], parameters: Mapping[str, str]
    ) -> list[tuple[Any, ...]]:
        """Run a SELECT on the driver connection in one round trip, outside a
        transaction, and return its rows.

        Every bound parameter must be a string named in ``parameters``, because
        the values go to the driver without SQLAlchemy's bind processing. A
        single statement needs no transaction: it reads one consistent snapshot
        on both databases. On a SQLite file it runs in the calling thread
        (``SqliteReader``), and takes one hand-off to the driver's thread only
        when the database is busy.
        """
        compiled = self._driver_statement(statement)
        values = [parameters[name] for name in compiled.parameter_names]
        if self.sqlite_reader is not None:
            found = self.sqlite_reader.fetch(compiled.sql, values)
            if found is not None:
                return [compiled.convert(row) for row in found]
        async with self.read_engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            try:
                if self.is_sqlite:
                    rows = await driver.execute_fetchall(compiled.sql, values)
                else:
                    rows = await driver.fetch(compiled.sql, *values)
            except BaseException:
                # SQLAlchemy did not see this failure and cannot tell a broken
                # connection from a bad statement, so drop the connection.
                await connection.invalidate()
                raise
        return [compiled.convert(row) for row in rows]

    def _driver_statement(self, statement: Select[Any]) -> DriverStatement:
        # Keyed by identity, because callers pass statements built once at import.
        cached = self._driver_statements.get(id(statement))
        if cached is None or cached[0] is not statement:
            compiled = DriverStatement.compile(statement, self.read_engine.dialect)
            cached = (statement, compiled)
            self._driver_statements[id(statement)] = cached
        return cached[1]

    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(self.write_engine, expire_on_commit=False)

    async def dispose(self) -> None:
        if self.sqlite_reader is not None:
            self.sqlite_reader.close()
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()


def open_database(
    url: str, *, pool_size: int = 10, pool_pre_ping: bool = True
) -> Database:
    """Create the engines for ``url`` without connecting yet.

    ``pool_pre_ping`` applies to PostgreSQL only, because a SQLite connection
    has no server connection to lose. It tests a connection only after it sat
    idle (``PRE_PING_IDLE_SECONDS``).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        pool: dict[str, Any] = {}
        reader = None
        if database and database != ":memory:":
            from pathlib import Path

            path = Path(database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            if not parsed.query:
                reader = SqliteReader(str(path))
            # A file database gets a queue pool. A connection beyond pool_size
            # is closed when returned, and each new one starts a driver thread
            # and sets the pragmas, so the pool keeps as many as on PostgreSQL.
            pool = {"pool_size": pool_size, "max_overflow": pool_size}
        read_engine = create_async_engine(url, pool_reset_on_return=None, **pool)
        write_engine = create_async_engine(url, pool_reset_on_return=None, **pool)
        _prepare_sqlite(read_engine, immediate=False)
        _prepare_sqlite(write_engine, immediate=True)
        writers = SqliteWriteQueue(SQLITE_BUSY_TIMEOUT_MS / 1000)
        return Database(url, read_engine, write_engine, reader, writers)
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    if pool_pre_ping:
        _pre_ping_idle(engine)
    return Database(url, engine, engine)
