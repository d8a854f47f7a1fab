"""Two ``serve`` replicas on one PostgreSQL database schedule the same
organizations every second. The advisory lock keeps each organization's runs
apart, and between them the replicas reconcile every organization."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import Run, RunStatus
from tests.conftest import make_tenant
from tests.support.databases import POSTGRES_ENV
from tests.support.runs import configure, write_directory
from tests.support.server import serve

SLUGS = ("acme", "beta", "gamma", "delta")
# How long both replicas schedule runs, in seconds.
WINDOW_S = 12.0
SCHEDULER_ENV = {
    "SCIM_RECONCILER_SCHEDULER_ENABLED": "true",
    "SCIM_RECONCILER_SCHEDULER_REFRESH_SECONDS": "1",
}


@pytest.fixture
def database_url(postgres_url: str | None) -> str:
    """Use PostgreSQL only: SQLite serves one host, so it has no replicas."""
    if postgres_url is None:
        pytest.skip(f"replica tests need PostgreSQL: set {POSTGRES_ENV}")
    return postgres_url


def write_members(path: Path, count: int) -> None:
    write_directory(path, admins=range(1, count + 1), analysts=range(1, count, 3))


@pytest.mark.slow
@pytest.mark.postgres
async def test_replicas_never_overlap_runs(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    """No organization ever has two runs at once, and every one is reconciled."""
    directories = {}
    for slug in SLUGS:
        tenant = await make_tenant(database, slug)
        directories[slug] = tmp_path / f"{slug}.json"
        write_members(directories[slug], 300)
        await configure(
            database,
            tenant.org,
            directories[slug],
            interval_seconds=1,
            jitter_seconds=1,
        )

    with ExitStack() as replicas:
        servers = [
            replicas.enter_context(serve(database_url, tmp_path, SCHEDULER_ENV))
            for _ in range(2)
        ]
        # The IdP keeps changing, so that runs apply changes and take a while.
        deadline = time.monotonic() + WINDOW_S
        size = 300
        while time.monotonic() < deadline:
            size = 150 if size == 300 else 300
            for path in directories.values():
                await asyncio.to_thread(write_members, path, size)
            await asyncio.sleep(1.0)
        async with database.read() as session:
            runs = (await session.scalars(select(Run).order_by(Run.started_at))).all()
        logs = [server.log() for server in servers]

    owners = {f"{socket.gethostname()}:{server.process.pid}" for server in servers}
    assert {run.owner for run in runs} <= owners
    assert {run.owner for run in runs} == owners, "one replica ran nothing"
    assert [run.id for run in runs if run.status is RunStatus.failed] == [], logs
    by_org: dict[int, list[Run]] = {}
    for run in runs:
        by_org.setdefault(run.org_id, []).append(run)
    assert len(by_org) == len(SLUGS)
    for org_runs in by_org.values():
        succeeded = [run for run in org_runs if run.status is RunStatus.succeeded]
        assert succeeded, f"org {org_runs[0].org_id} was never reconciled"
        assert any(run.drift > 0 for run in succeeded)
        for earlier, later in itertools.pairwise(org_runs):
            assert earlier.finished_at is not None, f"run {earlier.id} overlaps"
            assert later.started_at > earlier.finished_at, (
                f"runs {earlier.id} ({earlier.owner}) and {later.id} "
                f"({later.owner}) of org {later.org_id} overlap"
            )
