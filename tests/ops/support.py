"""Helpers of the operations tests: bounded waits and the runs table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from sqlalchemy import func, select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AuditEvent, Run, RunStatus

T = TypeVar("T")


async def wait_until(
    check: Callable[[], Awaitable[T | None]],
    timeout_seconds: float,
    what: str,
    interval_seconds: float = 0.2,
) -> T:
    """Poll ``check`` until it returns a value other than None or False."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        result = await check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds} s waiting {what}")
        await asyncio.sleep(interval_seconds)


async def runs_of(database: Database, org_id: int) -> list[Run]:
    """Return the organization's runs, oldest first."""
    async with database.read() as session:
        rows = await session.scalars(
            select(Run).where(Run.org_id == org_id).order_by(Run.started_at)
        )
        return list(rows.all())


async def applying_run(database: Database, org_id: int) -> Run | None:
    """Return a running run that has committed at least one batch, if any."""
    async with database.read() as session:
        run = await session.scalar(
            select(Run).where(Run.org_id == org_id, Run.status == RunStatus.running)
        )
        if run is None:
            return None
        applied = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.run_id == run.id)
        )
    return run if applied else None


async def get_status(url: str) -> int | None:
    """Return the status code of GET ``url``, or None when nothing answers."""
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return (await client.get(url)).status_code
    except httpx.TransportError:
        return None
