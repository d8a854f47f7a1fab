"""Scheduled runs with APScheduler 3.x under a controlled clock.

APScheduler reads ``datetime.now`` in its scheduler, executor and interval
trigger modules. The clock fixture replaces that name there, and the tests
process due jobs themselves with ``_process_jobs()``. Intervals are minutes,
so the scheduler's own wake-up timer (real seconds) never fires during a test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors import base as executor_base
from apscheduler.schedulers import base as scheduler_base
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers import interval as interval_trigger

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    ConnectorConfig,
    Organization,
    Plan,
    Run,
    RunStatus,
)
from scim_reconciler.reconcile.runs import Progress, Reconciler, RunReport, RunRequest
from scim_reconciler.reconcile.scheduler import (
    REFRESH_JOB_ID,
    ReconcileScheduler,
    job_id,
)
from tests.conftest import Tenant, make_tenant
from tests.support.runs import configure, write_directory

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Upper bound of any wait on a scheduled run, in seconds.
RUN_WAIT_S = 10.0


class Clock:
    """The time APScheduler reads, which moves only when a test advances it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def datetime_class(self) -> type[datetime]:
        clock = self

        class ClockDatetime(datetime):
            @classmethod
            def now(cls, tz: tzinfo | None = None) -> ClockDatetime:
                now = clock.now.astimezone(tz) if tz else clock.now
                return cls.fromtimestamp(now.timestamp(), tz)

        return ClockDatetime


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(START)
    for module in (scheduler_base, executor_base, interval_trigger):
        monkeypatch.setattr(module, "datetime", clock.datetime_class())
    return clock


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Use SQLite only: the scheduler reads schedules with one plain query."""
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


class RecordingReconciler(Reconciler):
    """Records when each scheduled run starts; a run lasts until ``gate`` opens."""

    def __init__(self, database: Database, clock: Clock) -> None:
        super().__init__(database, None, owner="test")
        self.clock = clock
        self.started: list[tuple[str, datetime]] = []
        self.running = 0
        self.most_running = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def run(
        self,
        slug: str,
        request: RunRequest,
        progress: Progress | None = None,
        on_plan: object = None,
    ) -> RunReport:
        self.started.append((slug, self.clock.now))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        run = Run(id=f"run-{len(self.started)}", status=RunStatus.succeeded)
        return RunReport(run, ())


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Let the event loop run until ``condition`` holds, for at most RUN_WAIT_S."""
    deadline = time.monotonic() + RUN_WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {RUN_WAIT_S} s waiting for {what}")
        await asyncio.sleep(0.001)


class Scheduling:
    """A started ReconcileScheduler and the runs its jobs finished."""

    def __init__(self, scheduler: ReconcileScheduler, clock: Clock) -> None:
        self.scheduler = scheduler
        self.clock = clock
        self.finished = 0
        scheduler.scheduler.add_listener(self._count, EVENT_JOB_EXECUTED)

    def _count(self, event: JobExecutionEvent) -> None:
        if event.job_id != REFRESH_JOB_ID:
            self.finished += 1

    async def process_at(self, seconds: float) -> None:
        """Move the clock, then process the jobs due at that time."""
        self.clock.advance(seconds)
        self.scheduler.scheduler._process_jobs()
        await asyncio.sleep(0)

    async def wait_finished(self, count: int) -> None:
        """Wait until ``count`` jobs finished and freed their instance slot."""
        await wait_until(lambda: self.finished >= count, f"{count} finished runs")


@asynccontextmanager
async def scheduling(
    database: Database, reconciler: Reconciler, clock: Clock
) -> AsyncIterator[Scheduling]:
    scheduler = ReconcileScheduler(
        database,
        reconciler,
        refresh_seconds=3600,
        scheduler=AsyncIOScheduler(timezone=UTC),
    )
    await scheduler.start()
    # Let the wake-ups that start() and add_job() queued run at the start time.
    await asyncio.sleep(0)
    try:
        yield Scheduling(scheduler, clock)
    finally:
        scheduler.shutdown()
        await asyncio.sleep(0)


async def schedule_acme(
    database: Database, tenant: Tenant, tmp_path: Path, interval: int, jitter: int
) -> None:
    directory = write_directory(tmp_path / "directory.json", admins=[1])
    await configure(
        database,
        tenant.org,
        directory,
        interval_seconds=interval,
        jitter_seconds=jitter,
    )


async def test_interval_fires_each_interval(
    database: Database, tenant: Tenant, tmp_path: Path, clock: Clock
) -> None:
    """A run starts once per interval, first one interval after scheduling."""
    await schedule_acme(database, tenant, tmp_path, interval=600, jitter=0)
    reconciler = RecordingReconciler(database, clock)
    async with scheduling(database, reconciler, clock) as jobs:
        await jobs.process_at(599)
        assert reconciler.started == []
        await jobs.process_at(1)
        await jobs.wait_finished(1)
        await jobs.process_at(600)
        await jobs.wait_finished(2)
        await jobs.process_at(300)

    assert reconciler.started == [
        ("acme", START + timedelta(seconds=600)),
        ("acme", START + timedelta(seconds=1200)),
    ]


async def test_jitter_delays_within_bounds(
    database: Database, tenant: Tenant, tmp_path: Path, clock: Clock
) -> None:
    """Each run starts between one interval and interval plus jitter after the last.

    APScheduler 3.x adds a random delay of 0 to ``jitter`` seconds to each fire
    time and counts the next interval from the delayed time.
    """
    await schedule_acme(database, tenant, tmp_path, interval=600, jitter=120)
    reconciler = RecordingReconciler(database, clock)
    fire_times = []
    async with scheduling(database, reconciler, clock) as jobs:
        previous = START
        for fired in range(1, 41):
            job = jobs.scheduler.scheduler.get_job(job_id(tenant.org.id))
            assert job is not None
            next_run: datetime = job.next_run_time
            delay = (next_run - previous).total_seconds()
            assert 600 <= delay <= 720
            fire_times.append(next_run)
            await jobs.process_at((next_run - clock.now).total_seconds())
            await jobs.wait_finished(fired)
            previous = next_run

    assert [at for _slug, at in reconciler.started] == fire_times
    delays = {
        (later - earlier).total_seconds()
        for earlier, later in zip([START, *fire_times], fire_times, strict=False)
    }
    assert len(delays) > 1


async def test_no_second_run_while_one_runs(
    database: Database, tenant: Tenant, tmp_path: Path, clock: Clock
) -> None:
    """A fire time that comes while the organization's run lasts starts nothing."""
    await schedule_acme(database, tenant, tmp_path, interval=600, jitter=0)
    reconciler = RecordingReconciler(database, clock)
    reconciler.gate.clear()
    async with scheduling(database, reconciler, clock) as jobs:
        await jobs.process_at(600)
        await wait_until(lambda: reconciler.running == 1, "the first run")
        for _ in range(3):
            await jobs.process_at(600)
        assert len(reconciler.started) == 1

        reconciler.gate.set()
        await jobs.wait_finished(1)
        await jobs.process_at(600)
        await jobs.wait_finished(2)

    assert reconciler.most_running == 1
    assert [at for _slug, at in reconciler.started] == [
        START + timedelta(seconds=600),
        START + timedelta(seconds=3000),
    ]


async def test_missed_fire_times_coalesce(
    database: Database, tenant: Tenant, tmp_path: Path, clock: Clock
) -> None:
    """Five fire times missed (a blocked event loop, say) produce one run."""
    await schedule_acme(database, tenant, tmp_path, interval=600, jitter=0)
    reconciler = RecordingReconciler(database, clock)
    async with scheduling(database, reconciler, clock) as jobs:
        await jobs.process_at(5 * 600 + 30)
        await jobs.wait_finished(1)
        job = jobs.scheduler.scheduler.get_job(job_id(tenant.org.id))
        assert job is not None
        assert job.next_run_time == START + timedelta(seconds=6 * 600)
        await jobs.process_at(600)
        await jobs.wait_finished(2)

    assert [at for _slug, at in reconciler.started] == [
        START + timedelta(seconds=5 * 600 + 30),
        START + timedelta(seconds=6 * 600 + 30),
    ]


async def test_refresh_follows_stored_schedules(
    database: Database, tenant: Tenant, tmp_path: Path, clock: Clock
) -> None:
    """Refresh adds new organizations, reschedules changed ones, and drops
    those whose connector is disabled or whose plan no longer includes SCIM."""
    await schedule_acme(database, tenant, tmp_path, interval=600, jitter=30)
    reconciler = RecordingReconciler(database, clock)
    async with scheduling(database, reconciler, clock) as started:
        scheduler = started.scheduler
        jobs = scheduler.scheduler
        acme = job_id(tenant.org.id)
        assert jobs.get_job(acme) is not None

        beta = await make_tenant(database, "beta")
        gamma = await make_tenant(database, "gamma")
        directory = tmp_path / "directory.json"
        await configure(database, beta.org, directory, interval_seconds=900)
        await configure(database, gamma.org, directory, interval_seconds=900)
        async with database.write() as session:
            row = await session.get(ConnectorConfig, tenant.org.id)
            assert row is not None
            row.interval_seconds = 1200
        await scheduler.refresh()

        acme_job = jobs.get_job(acme)
        beta_job = jobs.get_job(job_id(beta.org.id))
        assert acme_job is not None
        assert beta_job is not None
        assert jobs.get_job(job_id(gamma.org.id)) is not None
        assert acme_job.trigger.interval == timedelta(seconds=1200)
        assert acme_job.trigger.jitter == 30
        assert acme_job.next_run_time >= clock.now + timedelta(seconds=1200)
        assert beta_job.trigger.interval == timedelta(seconds=900)
        assert beta_job.args == ("beta",)

        async with database.write() as session:
            row = await session.get(ConnectorConfig, beta.org.id)
            assert row is not None
            row.enabled = False
            gamma_org = await session.get(Organization, gamma.org.id)
            assert gamma_org is not None
            gamma_org.plan = Plan.starter
        await scheduler.refresh()

        assert jobs.get_job(job_id(beta.org.id)) is None
        assert jobs.get_job(job_id(gamma.org.id)) is None
        assert jobs.get_job(acme) is not None
        assert set(scheduler.schedules) == {tenant.org.id}

    assert reconciler.started == []
