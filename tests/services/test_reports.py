"""Report queries shared by the admin API and the console."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import Run, RunMode, RunStatus, RunTrigger
from scim_reconciler.errors import InvalidInputError
from scim_reconciler.services import reports
from tests.conftest import make_tenant

TODAY = date(2026, 3, 10)


def finished_run(
    org_id: int, finished_at: datetime | None, drift: int, mode: RunMode
) -> Run:
    return Run(
        id=str(uuid.uuid4()),
        org_id=org_id,
        trigger=RunTrigger.schedule,
        mode=mode,
        status=RunStatus.succeeded if finished_at else RunStatus.running,
        scope={},
        started_at=datetime(2026, 3, 1, tzinfo=UTC),
        finished_at=finished_at,
        counts={},
        drift=drift,
        error=None,
        summary={},
        owner="test",
    )


async def test_drift_sums_apply_runs_per_day(database: Database) -> None:
    tenant = await make_tenant(database)
    other = await make_tenant(database, "other")
    org_id = tenant.org.id
    runs = [
        finished_run(org_id, datetime(2026, 3, 10, 0, 0, tzinfo=UTC), 2, RunMode.apply),
        finished_run(
            org_id, datetime(2026, 3, 10, 23, 59, tzinfo=UTC), 3, RunMode.apply
        ),
        finished_run(org_id, datetime(2026, 3, 8, 12, 0, tzinfo=UTC), 0, RunMode.apply),
        # Left out: a dry run, a running run, a day before the window, another org.
        finished_run(
            org_id, datetime(2026, 3, 9, 12, 0, tzinfo=UTC), 7, RunMode.dry_run
        ),
        finished_run(org_id, None, 9, RunMode.apply),
        finished_run(
            org_id, datetime(2026, 3, 7, 23, 59, tzinfo=UTC), 4, RunMode.apply
        ),
        finished_run(
            other.org.id, datetime(2026, 3, 10, 1, 0, tzinfo=UTC), 5, RunMode.apply
        ),
    ]
    async with database.write() as session:
        session.add_all(runs)

    async with database.read() as session:
        days = await reports.drift_per_day(session, org_id, days=3, today=TODAY)

    assert days == [
        reports.DriftDay(date(2026, 3, 8), 0, 1),
        reports.DriftDay(date(2026, 3, 9), 0, 0),
        reports.DriftDay(date(2026, 3, 10), 5, 2),
    ]


@pytest.mark.parametrize("days", [0, -1, reports.MAX_DRIFT_DAYS + 1])
async def test_drift_per_day_rejects_bad_window(database: Database, days: int) -> None:
    async with database.read() as session:
        with pytest.raises(InvalidInputError, match=f"days {days} is not valid"):
            await reports.drift_per_day(session, 1, days=days)


@pytest.mark.parametrize(
    ("offset", "limit", "message"),
    [(-1, 10, "offset -1"), (0, 0, "limit 0"), (0, reports.MAX_PAGE_SIZE + 1, "limit")],
)
async def test_pages_reject_bad_bounds(
    database: Database, offset: int, limit: int, message: str
) -> None:
    async with database.read() as session:
        with pytest.raises(InvalidInputError, match=message):
            await reports.search_users(session, 1, offset=offset, limit=limit)


async def test_empty_organization_gives_empty_pages(database: Database) -> None:
    tenant = await make_tenant(database)

    async with database.read() as session:
        users = await reports.search_users(session, tenant.org.id, query="ada")
        runs = await reports.list_runs_page(session, tenant.org.id)

    assert users == reports.Page([], 0, 0, reports.DEFAULT_PAGE_SIZE)
    assert users.next_offset is None
    assert runs.total == 0
