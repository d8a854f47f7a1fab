"""A run killed during apply: the next ``serve`` marks it interrupted, and the
next run converges without duplicates, because every change is idempotent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import Run, RunStatus, User
from tests.conftest import Tenant
from tests.support.cli import run_cli
from tests.support.runs import configure, write_directory
from tests.support.server import cli_command, serve

USERS = 4000
# Upper bound of the wait for the killed run to be part way through apply.
APPLY_WAIT_S = 60.0


def start_cli(
    database_url: str, work_dir: Path, *arguments: str
) -> subprocess.Popen[bytes]:
    """Start one command with its output in ``cli.log`` of ``work_dir``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SCIM_RECONCILER_")
    }
    env["SCIM_RECONCILER_DATABASE_URL"] = database_url
    with (work_dir / "cli.log").open("wb") as log:
        return subprocess.Popen(
            [*cli_command(), *arguments],
            env=env,
            cwd=work_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def run_progress(database: Database, org_id: int) -> tuple[list[str], int]:
    """Return the statuses of the organization's runs and its number of users."""
    async with database.read() as session:
        statuses = (
            await session.scalars(select(Run.status).where(Run.org_id == org_id))
        ).all()
        users = await session.scalar(
            select(func.count()).select_from(User).where(User.org_id == org_id)
        )
    return [status.value for status in statuses], users or 0


async def kill_during_apply(
    database: Database, org_id: int, process: subprocess.Popen[bytes], log: Path
) -> int:
    """Kill the process with SIGKILL once its run has applied some changes."""
    deadline = time.monotonic() + APPLY_WAIT_S
    while time.monotonic() < deadline:
        statuses, users = await run_progress(database, org_id)
        if process.poll() is not None:
            output = await asyncio.to_thread(log.read_text)
            pytest.fail(f"reconcile exited before it could be killed:\n{output}")
        if statuses == ["running"] and users > 0:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            return users
        await asyncio.sleep(0.02)
    process.kill()
    process.wait(timeout=10)
    pytest.fail(f"no run was applying changes after {APPLY_WAIT_S} s")


async def cli_json(database_url: str, work_dir: Path, *arguments: str) -> Any:
    result = await asyncio.to_thread(
        run_cli, database_url, work_dir, *arguments, "--json"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


@pytest.mark.slow
async def test_killed_run_interrupted_then_converges(
    database: Database, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """SIGKILL during apply leaves a partial apply that the next run completes."""
    directory = write_directory(tmp_path / "directory.json", admins=range(1, USERS + 1))
    await configure(database, tenant.org, directory)

    process = start_cli(database_url, tmp_path, "reconcile", "acme", "--json")
    applied_before_kill = await kill_during_apply(
        database, tenant.org.id, process, tmp_path / "cli.log"
    )
    assert process.returncode == -signal.SIGKILL
    statuses, users = await run_progress(database, tenant.org.id)
    assert statuses == ["running"]
    assert applied_before_kill <= users < USERS

    async with database.read() as session:
        killed_id = await session.scalar(select(Run.id))
    assert killed_id is not None
    with serve(database_url, tmp_path):
        shown = await cli_json(database_url, tmp_path, "runs", "show", killed_id)
    assert shown["run"]["status"] == RunStatus.interrupted.value
    assert shown["run"]["finished_at"] is not None
    # The batches committed before the kill are recorded and counted.
    recorded = [c for c in shown["changes"] if c["status"] == "applied"]
    assert len(recorded) == shown["run"]["counts_by_status"]["applied"]
    assert len([c for c in recorded if c["kind"] == "create"]) == users

    converged = await cli_json(database_url, tmp_path, "reconcile", "acme")
    assert converged["run"]["status"] == RunStatus.succeeded.value
    kinds = {change["kind"] for change in converged["changes"]}
    assert "create" in kinds
    async with database.read() as session:
        counts = (
            await session.execute(
                select(User.user_name_key, func.count())
                .where(User.org_id == tenant.org.id)
                .group_by(User.user_name_key)
            )
        ).all()
        inactive = await session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.org_id == tenant.org.id, User.active.is_(False))
        )
    assert len(counts) == USERS
    assert [name for name, count in counts if count > 1] == []
    assert inactive == 0

    settled = await cli_json(database_url, tmp_path, "reconcile", "acme")
    assert settled["run"]["status"] == RunStatus.succeeded.value
    assert settled["changes"] == []
