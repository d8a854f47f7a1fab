"""Scheduled reconciliation inside ``serve``, with APScheduler 3.x.

Each organization with an enabled connector gets one interval job with its own
interval and jitter. Jobs are coalesced, so missed runs collapse into one, and
never overlap in a process (``max_instances=1``). Across processes and replicas
the organization's run lock keeps runs exclusive. A refresh job picks up
organizations added or changed while the service runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import ConnectorConfig, Organization, RunTrigger
from scim_reconciler.errors import ReconcilerError, RunInProgressError
from scim_reconciler.reconcile.runs import Reconciler, RunRequest

logger = logging.getLogger(__name__)

REFRESH_JOB_ID = "refresh-organizations"


@dataclass(frozen=True)
class Schedule:
    slug: str
    interval_seconds: int
    jitter_seconds: int


def job_id(org_id: int) -> str:
    return f"reconcile-org-{org_id}"


async def load_schedules(database: Database) -> dict[int, Schedule]:
    """Return the schedule of every organization that should be reconciled."""
    async with database.read() as session:
        rows = await session.execute(
            select(Organization, ConnectorConfig)
            .join(ConnectorConfig, ConnectorConfig.org_id == Organization.id)
            .where(ConnectorConfig.enabled.is_(True))
        )
        return {
            org.id: Schedule(org.slug, config.interval_seconds, config.jitter_seconds)
            for org, config in rows
            if org.plan.allows_scim
        }


class ReconcileScheduler:
    def __init__(
        self,
        database: Database,
        reconciler: Reconciler,
        refresh_seconds: int,
        scheduler: AsyncIOScheduler | None = None,
    ) -> None:
        self.database = database
        self.reconciler = reconciler
        self.refresh_seconds = refresh_seconds
        self.scheduler = scheduler or AsyncIOScheduler(timezone="UTC")
        self.schedules: dict[int, Schedule] = {}

    async def start(self) -> None:
        await self.refresh()
        self.scheduler.add_job(
            self.refresh,
            IntervalTrigger(seconds=self.refresh_seconds, timezone="UTC"),
            id=REFRESH_JOB_ID,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )
        self.scheduler.start()
        logger.info("Scheduler started with %d organizations", len(self.schedules))

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            logger.info("Scheduler stopped")

    async def refresh(self) -> None:
        """Add, reschedule and remove jobs to match the stored schedules."""
        try:
            wanted = await load_schedules(self.database)
        except Exception:
            logger.exception("Could not read the schedules; keeping the current ones")
            return
        for org_id in set(self.schedules) - set(wanted):
            if self.scheduler.get_job(job_id(org_id)):
                self.scheduler.remove_job(job_id(org_id))
            logger.info("Stopped scheduling org %s", self.schedules[org_id].slug)
        for org_id, schedule in wanted.items():
            if self.schedules.get(org_id) == schedule:
                continue
            self.scheduler.add_job(
                self.reconcile,
                IntervalTrigger(
                    seconds=schedule.interval_seconds,
                    jitter=schedule.jitter_seconds or None,
                    timezone="UTC",
                ),
                args=[schedule.slug],
                id=job_id(org_id),
                coalesce=True,
                max_instances=1,
                misfire_grace_time=schedule.interval_seconds,
                replace_existing=True,
            )
            logger.info(
                "Scheduling org %s every %d s with up to %d s jitter",
                schedule.slug,
                schedule.interval_seconds,
                schedule.jitter_seconds,
            )
        self.schedules = wanted

    async def reconcile(self, slug: str) -> None:
        try:
            report = await self.reconciler.run(
                slug, RunRequest(trigger=RunTrigger.schedule)
            )
        except RunInProgressError:
            logger.info(
                "Skipped the scheduled run of org %s: a run is in progress", slug
            )
        except ReconcilerError as exc:
            logger.error("Scheduled run of org %s could not start: %s", slug, exc)
        except Exception:
            logger.exception("Scheduled run of org %s failed unexpectedly", slug)
        else:
            logger.info(
                "Scheduled run %s of org %s: %s",
                report.run.id,
                slug,
                report.run.status.value,
            )
