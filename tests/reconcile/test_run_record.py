"""The run record written batch by batch, and the bulk inserts that write it.

Each batch of a run records its changes in run_changes in its own transaction,
so a run that stops or fails part way still lists every change it applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    AuditEvent,
    ManagedBy,
    Run,
    RunStatus,
    Source,
    User,
)
from scim_reconciler.reconcile.batch import table_of
from scim_reconciler.reconcile.bulk import insert_rows
from scim_reconciler.reconcile.model import Change, ChangeStatus
from scim_reconciler.reconcile.runs import Reconciler, RunRequest, load_run
from tests.conftest import Tenant
from tests.support.runs import configure, write_directory

# Six new users plan 18 changes (create, membership and role change each), so
# batches of 4 make five transactions.
USERS = 6
BATCH = 4


def statuses(changes: Sequence[Change]) -> list[tuple[str, str, str]]:
    return [(c.kind.value, c.user_name, c.status.value) for c in changes]


async def test_stopped_run_records_every_change(
    database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    """A run stopped after its first batch records that batch and the rest."""
    directory = write_directory(tmp_path / "directory.json", range(1, USERS + 1))
    await configure(database, tenant.org, directory)
    stop = False

    def stop_after_first_batch(done: int, total: int) -> None:
        nonlocal stop
        stop = stop or done > 0

    reconciler = Reconciler(database, None, should_stop=lambda: stop, batch_size=BATCH)
    report = await reconciler.run(
        tenant.org.slug, RunRequest(), progress=stop_after_first_batch
    )
    recorded = await load_run(database, report.run.id)

    assert report.run.status is RunStatus.interrupted
    assert len(report.changes) == 3 * USERS
    assert statuses(recorded.changes) == statuses(report.changes)
    assert [c.reason for c in recorded.changes] == [c.reason for c in report.changes]
    assert [c.details for c in recorded.changes] == [c.details for c in report.changes]
    applied = [c for c in recorded.changes if c.status is ChangeStatus.applied]
    assert len(applied) == BATCH
    by_status = report.run.counts["by_status"]
    assert by_status[ChangeStatus.applied.value] == BATCH
    assert by_status[ChangeStatus.planned.value] == 3 * USERS - BATCH


async def test_failed_run_counts_recorded_batches(
    database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    """A run that fails after a batch keeps and counts what that batch applied."""
    directory = write_directory(tmp_path / "directory.json", range(1, USERS + 1))
    await configure(database, tenant.org, directory)

    def fail_after_first_batch(done: int, total: int) -> None:
        if done > 0:
            raise RuntimeError("connection reset")

    reconciler = Reconciler(database, None, batch_size=BATCH)
    with pytest.raises(RuntimeError, match="connection reset"):
        await reconciler.run(
            tenant.org.slug, RunRequest(), progress=fail_after_first_batch
        )

    async with database.read() as session:
        run_id = await session.scalar(select(Run.id))
    assert run_id is not None
    recorded = await load_run(database, run_id)
    assert recorded.run.status is RunStatus.failed
    assert {c.status for c in recorded.changes} == {ChangeStatus.applied}
    assert len(recorded.changes) == BATCH
    assert recorded.run.counts["by_status"][ChangeStatus.applied.value] == BATCH
    # The first batch: two creates, one membership and one role change.
    assert recorded.run.drift == BATCH - 1


def user_row(org_id: int, name: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": str(uuid.uuid4()),
        "org_id": org_id,
        "user_name": name,
        "user_name_key": name,
        "external_id": None,
        "display_name": None,
        "display_name_key": None,
        "given_name": "Ada",
        "family_name": None,
        "email": name,
        "active": True,
        "deleted": False,
        "managed_by": ManagedBy.idp,
        "attributes": {"userName": name, "name": {"givenName": "Ada"}},
        "version": 1,
        "created_at": now,
        "last_modified": now,
    }


async def test_bulk_insert_clash_raises_integrity_error(
    database: Database, tenant: Tenant
) -> None:
    """A unique violation raises SQLAlchemy's IntegrityError and writes nothing.

    apply.py splits a batch only on that exception, so the driver's own must
    not escape.
    """
    table = table_of(User)
    first = user_row(tenant.org.id, "ada@example.com")
    clash = user_row(tenant.org.id, "ada@example.com")

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            await session.execute(select(1))
            await insert_rows(session, table, [first, clash])

    async with database.read() as session:
        count = await session.scalar(select(func.count()).select_from(User))
    assert count == 0


async def test_bulk_insert_reads_back_like_orm(
    database: Database, tenant: Tenant
) -> None:
    """Rows written in bulk read back with the values an ORM insert stores."""
    row = user_row(tenant.org.id, "grace@example.com")
    event = {
        "org_id": tenant.org.id,
        "at": row["created_at"],
        "source": Source.reconcile,
        "action": "create",
        "resource_type": "User",
        "resource_id": row["id"],
        "actor": "reconciler",
        "run_id": None,
        "details": {"userName": "grace@example.com", "groups": ["Analysts"]},
    }
    async with database.write() as session:
        await session.execute(select(1))
        await insert_rows(session, table_of(User), [row])
        await insert_rows(session, table_of(AuditEvent), [event])

    async with database.read() as session:
        user = await session.get(User, row["id"])
        audit = await session.scalar(
            select(AuditEvent).where(AuditEvent.resource_id == row["id"])
        )
    assert user is not None
    assert audit is not None
    assert user.managed_by is ManagedBy.idp
    assert user.active is True
    assert user.deleted is False
    assert user.attributes == row["attributes"]
    assert user.created_at == row["created_at"]
    assert audit.source is Source.reconcile
    assert audit.at == row["created_at"]
    assert audit.details == event["details"]
    assert audit.summary is None
