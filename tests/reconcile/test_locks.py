"""Run locks: one holder per organization, released also when a release fails."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from scim_reconciler.db.engine import Database, open_database
from scim_reconciler.reconcile.locks import PostgresRunLock, holding, run_lock
from tests.conftest import Tenant


async def test_lock_has_one_holder(database: Database, tenant: Tenant) -> None:
    first = run_lock(database, tenant.org.id)
    second = run_lock(database, tenant.org.id)
    other_org = run_lock(database, tenant.org.id + 1)

    assert await first.try_acquire()
    try:
        assert not await second.try_acquire()
        async with holding(other_org) as acquired:
            assert acquired
    finally:
        await first.release()

    async with holding(second) as acquired:
        assert acquired


async def test_failed_unlock_frees_lock(
    database: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release whose unlock fails (a lost connection, a cancelled task) frees
    the lock all the same.

    A PostgreSQL session-level advisory lock belongs to the server session, and
    a connection returned to the pool keeps it, so no process could take the
    organization's lock again while that pooled connection lives.
    """
    if database.is_sqlite:
        pytest.skip("a SQLite file lock has no pooled connection")
    lock = run_lock(database, tenant.org.id)
    assert isinstance(lock, PostgresRunLock)
    assert await lock.try_acquire()

    async def fail(*_args: object, **_kwargs: object) -> None:
        raise ConnectionResetError("connection reset by peer")

    with monkeypatch.context() as patched:
        patched.setattr(AsyncConnection, "execute", fail)
        with pytest.raises(ConnectionResetError):
            await lock.release()

    other = open_database(database.url)
    try:
        async with holding(run_lock(other, tenant.org.id)) as acquired:
            assert acquired
    finally:
        await other.dispose()
