"""Graceful shutdown: SIGTERM to ``serve`` while a scheduled run applies.

The directory file lists a few thousand users, so the first run applies many
batches of changes, one transaction each. The process must stop within the
grace period with the run recorded as interrupted. The next run, after a
restart, must converge without duplicates.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import RunStatus
from scim_reconciler.reconcile.apply import BATCH_SIZE
from scim_reconciler.reconcile.model import ChangeStatus
from scim_reconciler.reconcile.runs import Reconciler, RunRequest
from tests.conftest import make_tenant
from tests.ops.support import applying_run, runs_of, wait_until
from tests.support.runs import accounts, configure, members_of, write_directory
from tests.support.server import serve

USERS = 3000
GRACE_SECONDS = 10
# Long enough for a whole first run of USERS users on a slow machine.
CONVERGE_TIMEOUT_SECONDS = 300


async def test_stop_request_ends_apply_between_batches(
    database: Database, tmp_path: Path
) -> None:
    """A stop requested during apply lets the batch finish, then stops the run."""
    tenant = await make_tenant(database)
    # Several changes per new user (create, membership, role), so several batches.
    users = BATCH_SIZE
    directory = write_directory(tmp_path / "directory.json", range(1, users + 1))
    await configure(database, tenant.org, directory)
    stop = False

    def request_stop_after_first_batch(done: int, total: int) -> None:
        nonlocal stop
        stop = stop or done > 0

    reconciler = Reconciler(database, None, should_stop=lambda: stop)
    report = await reconciler.run(
        tenant.org.slug, RunRequest(), progress=request_stop_after_first_batch
    )

    assert report.run.status is RunStatus.interrupted
    assert report.run.error is not None
    assert "next run plans them again" in report.run.error
    by_status = report.run.counts["by_status"]
    assert (
        by_status[ChangeStatus.applied.value] + by_status[ChangeStatus.deferred.value]
        == BATCH_SIZE
    )
    assert by_status[ChangeStatus.planned.value] > 0
    assert 0 < len(await accounts(database, tenant.org.id)) < users

    again = await Reconciler(database, None).run(tenant.org.slug, RunRequest())

    assert again.run.status is RunStatus.succeeded
    assert len(await accounts(database, tenant.org.id)) == users
    assert len(await members_of(database, tenant.org.id, "Dashboard Admins")) == users


@pytest.mark.slow
async def test_sigterm_interrupts_apply_then_next_run_converges(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    tenant = await make_tenant(database)
    directory = write_directory(tmp_path / "directory.json", range(1, USERS + 1))
    await configure(
        database, tenant.org, directory, interval_seconds=1, jitter_seconds=0
    )
    extra_env = {"SCIM_RECONCILER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}

    with serve(database_url, tmp_path, extra_env) as server:
        run = await wait_until(
            lambda: applying_run(database, tenant.org.id),
            CONVERGE_TIMEOUT_SECONDS,
            "for a run to commit its first batch",
        )
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.to_thread(server.process.wait, GRACE_SECONDS + 5)
        elapsed = time.monotonic() - signalled
    log = server.log()

    assert elapsed < GRACE_SECONDS, log
    first = next(r for r in await runs_of(database, tenant.org.id) if r.id == run.id)
    assert first.status is RunStatus.interrupted, log
    assert first.error is not None
    assert "service stopped" in first.error
    by_status = first.counts["by_status"]
    assert by_status[ChangeStatus.applied.value] > 0
    assert by_status[ChangeStatus.planned.value] > 0
    assert len(await accounts(database, tenant.org.id)) < USERS

    with serve(database_url, tmp_path, extra_env):
        await wait_until(
            lambda: _succeeded_after(database, tenant.org.id, first.started_at),
            CONVERGE_TIMEOUT_SECONDS,
            "for a run after the restart to succeed",
        )

    stored = await accounts(database, tenant.org.id)
    assert len(stored) == USERS
    assert all(account.active for account in stored.values())
    assert len(await members_of(database, tenant.org.id, "Dashboard Admins")) == USERS


async def _succeeded_after(database: Database, org_id: int, after: object) -> bool:
    return any(
        run.status is RunStatus.succeeded and run.started_at > after  # type: ignore[operator]
        for run in await runs_of(database, org_id)
    )
