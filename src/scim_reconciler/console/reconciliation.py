"""The reconciliation page, run pages, and the actions that start or approve runs.

Preview and Reconcile now start a run in the background and wait a few seconds
for it before they show its run page. A run that is still going shows as
running there, and the page reloads until the run ends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import func, select

from scim_reconciler.console.auth import checked_form, database_of, settings_of
from scim_reconciler.console.charts import NARROW, drift_chart
from scim_reconciler.console.orgs import OrgPage, org_page
from scim_reconciler.console.paging import Pager, page_number
from scim_reconciler.console.rendering import (
    ConsoleRoute,
    PageError,
    not_found,
    render,
    see_other,
)
from scim_reconciler.db.models import (
    ConnectorConfig,
    Run,
    RunChange,
    RunMode,
    RunStatus,
    RunTrigger,
    Source,
)
from scim_reconciler.errors import (
    NotAllowedError,
    NotFoundError,
    RunInProgressError,
)
from scim_reconciler.lifecycle import RequestedRuns
from scim_reconciler.reconcile.runs import RunRequest
from scim_reconciler.services import audit, connectors, reports

router = APIRouter(route_class=ConsoleRoute)

RUNS_PER_PAGE = 20
CHANGES_PER_PAGE = 100
HELD_RUNS_SHOWN = 5
HELD_CHANGES_SHOWN = 20
DRIFT_DAYS = 30
# How long an action waits for its run before showing the run page anyway.
RUN_WAIT_SECONDS = 15.0

NOTICES = {
    "checked": "The connector was checked.",
    "approved": "The held changes were approved. Those that still applied to "
    "the current users were applied, and the rest were deferred.",
}


@dataclass(frozen=True)
class HeldRun:
    run: Run
    changes: list[RunChange]
    total: int


def requested_runs(request: Request) -> RequestedRuns:
    runs: RequestedRuns | None = getattr(request.app.state, "requested_runs", None)
    if runs is None:
        raise PageError(
            503,
            "Runs are not available",
            "This process cannot start reconciliations. Start the service with "
            "`scim-reconciler serve`.",
        )
    return runs


async def _held_runs(request: Request, org_id: int) -> list[HeldRun]:
    async with database_of(request).read() as session:
        runs = (
            await session.scalars(
                select(Run)
                .where(
                    Run.org_id == org_id,
                    Run.status == RunStatus.held,
                    Run.mode == RunMode.apply,
                )
                .order_by(Run.started_at.desc())
                .limit(HELD_RUNS_SHOWN)
            )
        ).all()
        held = []
        for run in runs:
            condition = (RunChange.run_id == run.id) & (RunChange.status == "held")
            total = await session.scalar(
                select(func.count()).select_from(RunChange).where(condition)
            )
            changes = (
                await session.scalars(
                    select(RunChange)
                    .where(condition)
                    .order_by(RunChange.seq)
                    .limit(HELD_CHANGES_SHOWN)
                )
            ).all()
            held.append(HeldRun(run, list(changes), total or 0))
    return held


@router.get("/console/orgs/{slug}/reconciliation")
async def reconciliation_page(
    request: Request,
    page: str = "1",
    notice: str = "",
    context: OrgPage = Depends(org_page),
) -> Response:
    number = page_number(page)
    async with database_of(request).read() as session:
        row = await session.get(ConnectorConfig, context.org.id)
        connector = connectors.view(context.org, row) if row is not None else None
        runs = await reports.list_runs_page(
            session,
            context.org.id,
            offset=(number - 1) * RUNS_PER_PAGE,
            limit=RUNS_PER_PAGE,
        )
        days = await reports.drift_per_day(session, context.org.id, days=DRIFT_DAYS)
    pager = Pager(number, RUNS_PER_PAGE, runs.total)
    values: dict[str, Any] = {
        "title": "Reconciliation",
        "section": "reconciliation",
        "connector": connector,
        "runs": runs.items,
        "pager": pager,
        "page_url": pager.url_builder(f"{context.base_url}/reconciliation"),
        "held_runs": await _held_runs(request, context.org.id),
        "chart": drift_chart(days),
        "narrow_chart": drift_chart(days, NARROW),
        "notice": NOTICES.get(notice),
        "running": any(run.status is RunStatus.running for run in runs.items),
    }
    return render(request, "reconciliation.html", values)


@router.post("/console/orgs/{slug}/reconciliation/check")
async def check_connector(
    request: Request, context: OrgPage = Depends(org_page)
) -> Response:
    await checked_form(request, context.signed)
    settings = settings_of(request)
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    try:
        await connectors.check_connector(database_of(request), context.org, secret_key)
    except NotFoundError as exc:
        raise PageError(409, "No connector", str(exc)) from None
    return see_other(f"{context.base_url}/reconciliation?notice=checked")


async def _start(request: Request, context: OrgPage, *, dry_run: bool) -> Response:
    await checked_form(request, context.signed)
    runs = requested_runs(request)
    try:
        run, task = await runs.start(
            context.org.slug, RunRequest(trigger=RunTrigger.manual, dry_run=dry_run)
        )
    except RunInProgressError as exc:
        raise PageError(409, "A run is in progress", str(exc)) from None
    except NotFoundError as exc:
        raise PageError(409, "No connector", str(exc)) from None
    await _record(
        request,
        context,
        "run_requested",
        run.id,
        {"mode": run.mode.value, "trigger": run.trigger.value},
    )
    # The run goes on if the wait ends first; its page then shows it running.
    await asyncio.wait({task}, timeout=RUN_WAIT_SECONDS)
    return see_other(f"{context.base_url}/runs/{run.id}")


async def _record(
    request: Request,
    context: OrgPage,
    action: str,
    run_id: str,
    details: dict[str, Any],
) -> None:
    """Record in the audit log that an admin started or approved a run."""
    async with database_of(request).write() as session:
        audit.record(
            session,
            org_id=context.org.id,
            source=Source.admin,
            action=action,
            resource_type="Run",
            resource_id=run_id,
            actor=context.actor,
            details=details,
        )


@router.post("/console/orgs/{slug}/reconciliation/preview")
async def preview(request: Request, context: OrgPage = Depends(org_page)) -> Response:
    return await _start(request, context, dry_run=True)


@router.post("/console/orgs/{slug}/reconciliation/run")
async def reconcile_now(
    request: Request, context: OrgPage = Depends(org_page)
) -> Response:
    return await _start(request, context, dry_run=False)


async def _run_of(request: Request, context: OrgPage, run_id: str) -> Run:
    async with database_of(request).read() as session:
        run = await session.get(Run, run_id)
    if run is None or run.org_id != context.org.id:
        raise not_found(f"Run {run_id!r}")
    return run


@router.get("/console/orgs/{slug}/runs/{run_id}")
async def run_page(
    request: Request,
    run_id: str,
    page: str = "1",
    notice: str = "",
    context: OrgPage = Depends(org_page),
) -> Response:
    number = page_number(page)
    run = await _run_of(request, context, run_id)
    async with database_of(request).read() as session:
        total = await session.scalar(
            select(func.count())
            .select_from(RunChange)
            .where(RunChange.run_id == run.id)
        )
        pager = Pager(number, CHANGES_PER_PAGE, total or 0)
        changes = (
            await session.scalars(
                select(RunChange)
                .where(RunChange.run_id == run.id)
                .order_by(RunChange.seq)
                .offset(pager.offset)
                .limit(CHANGES_PER_PAGE)
            )
        ).all()
    summary = run.summary or {}
    return render(
        request,
        "run.html",
        {
            "title": "Dry run" if run.mode is RunMode.dry_run else "Run",
            "section": "reconciliation",
            "run": run,
            "changes": changes,
            "pager": pager,
            "page_url": pager.url_builder(f"{context.base_url}/runs/{run.id}"),
            "warnings": summary.get("warnings") or [],
            "skipped": summary.get("skipped") or [],
            "paused_reason": summary.get("paused_reason"),
            "notice": NOTICES.get(notice),
        },
    )


@router.post("/console/orgs/{slug}/runs/{run_id}/approve")
async def approve_run(
    request: Request, run_id: str, context: OrgPage = Depends(org_page)
) -> Response:
    await checked_form(request, context.signed)
    run = await _run_of(request, context, run_id)
    reconciler = requested_runs(request).reconciler
    try:
        report = await reconciler.approve(run.id, actor=context.actor)
    except NotAllowedError as exc:
        raise PageError(409, "Cannot approve", str(exc)) from None
    except RunInProgressError as exc:
        raise PageError(409, "A run is in progress", str(exc)) from None
    except NotFoundError as exc:
        raise PageError(409, "Nothing to approve", str(exc)) from None
    await _record(
        request,
        context,
        "run_approved",
        run.id,
        {"counts_by_status": report.run.counts.get("by_status", {})},
    )
    return see_other(f"{context.base_url}/runs/{run.id}?notice=approved")
