"""One run per organization at a time, across processes and replicas.

On PostgreSQL a session-level advisory lock keyed by the organization is held
on a dedicated connection for the whole run; PostgreSQL releases it when that
connection closes, so a crashed replica never leaves a lock behind. On SQLite
an exclusive ``flock`` on a file beside the database does the same for the
processes of one host, which is all that can share a SQLite file.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from scim_reconciler.db.engine import Database

# First key of the two-key advisory lock (ASCII "scim"). Another application on
# a shared server collides only if it picks the same first key.
ADVISORY_NAMESPACE = 0x7363696D


class RunLock(abc.ABC):
    @abc.abstractmethod
    async def try_acquire(self) -> bool:
        """Take the lock without waiting; False when another run holds it."""

    @abc.abstractmethod
    async def release(self) -> None:
        """Give the lock back; safe to call when it is not held."""


class PostgresRunLock(RunLock):
    def __init__(self, database: Database, org_id: int) -> None:
        self.database = database
        self.org_id = org_id
        self.connection: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        connection = await self.database.write_engine.connect()
        try:
            acquired = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:namespace, :org)"),
                {"namespace": ADVISORY_NAMESPACE, "org": self.org_id},
            )
            await connection.commit()
        except BaseException:
            # The lock may have been granted before the failure; see release().
            await connection.invalidate()
            await connection.close()
            raise
        if not acquired:
            await connection.close()
            return False
        self.connection = connection
        return True

    async def release(self) -> None:
        if self.connection is None:
            return
        connection, self.connection = self.connection, None
        try:
            await connection.execute(
                text("SELECT pg_advisory_unlock(:namespace, :org)"),
                {"namespace": ADVISORY_NAMESPACE, "org": self.org_id},
            )
            await connection.commit()
        except BaseException:
            # The lock belongs to the server session and would stay with the
            # connection in the pool; closing the session is what frees it.
            await connection.invalidate()
            raise
        finally:
            await connection.close()


class FileRunLock(RunLock):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None

    async def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self.handle = handle
        return True

    async def release(self) -> None:
        if self.handle is None:
            return
        handle, self.handle = self.handle, None
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _sqlite_lock_dir(database: Database) -> Path:
    path = make_url(database.url).database or ""
    if not path or path == ":memory:":
        return Path(os.environ.get("TMPDIR", "/tmp")) / "scim-reconciler-locks"
    resolved = Path(path).expanduser().resolve()
    return resolved.parent / f"{resolved.name}.locks"


def run_lock(database: Database, org_id: int) -> RunLock:
    if database.is_sqlite:
        return FileRunLock(_sqlite_lock_dir(database) / f"org-{org_id}.lock")
    return PostgresRunLock(database, org_id)


@contextlib.asynccontextmanager
async def holding(lock: RunLock) -> AsyncIterator[bool]:
    """Try the lock; yield whether it was taken, and release it at the end."""
    acquired = await lock.try_acquire()
    try:
        yield acquired
    finally:
        if acquired:
            await lock.release()
