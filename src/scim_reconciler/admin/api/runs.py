"""Reconciliation runs: start, list, show with the plan, approve held changes.

A started run goes on in a task of the serving process after the request
returns, so a long run never keeps a request open. The response is 202 with
the run's id and its Location, or, when ``wait_seconds`` allows and the run
finishes in time, 200 with the finished run.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    ConnectorConfig,
    Organization,
    Run,
    RunStatus,
    RunTrigger,
    Source,
)
from scim_reconciler.errors import NotFoundError, RunInProgressError
from scim_reconciler.lifecycle import RequestedRuns, Shutdown
from scim_reconciler.reconcile.model import ChangeKind, ChangeStatus
from scim_reconciler.reconcile.runs import RunRequest, change_from_row
from scim_reconciler.services import audit, reports

from .dependencies import (
    DatabaseDep,
    OrganizationDep,
    PageDep,
    PageRequest,
    PrincipalDep,
    get_reconciler,
)
from .organizations import ORG_PATH
from .problems import ApiProblem, problem_responses
from .schemas import (
    ChangeOut,
    Page,
    RunDetailOut,
    RunOut,
    RunScope,
    RunStart,
    SkippedOut,
    page_of,
)

router = APIRouter()

RUNS_PATH = ORG_PATH + "/runs"
RUN_PATH = RUNS_PATH + "/{run_id}"


def run_out(run: Run) -> RunOut:
    counts = run.counts or {}
    scope = run.scope or {}
    return RunOut(
        id=run.id,
        trigger=run.trigger,
        mode=run.mode,
        status=run.status,
        scope=RunScope(user=scope.get("user"), group=scope.get("group")),
        started_at=run.started_at,
        finished_at=run.finished_at,
        counts=counts.get("by_kind", {}),
        counts_by_status=counts.get("by_status", {}),
        drift=run.drift,
        error=run.error,
    )


def run_location(organization: Organization, run_id: str) -> str:
    return f"/admin/v1/organizations/{organization.slug}/runs/{run_id}"


async def _run_detail(
    database: Database,
    run: Run,
    page: PageRequest,
    status: ChangeStatus | None = None,
    kind: ChangeKind | None = None,
) -> RunDetailOut:
    async with database.read() as session:
        changes = await reports.run_changes_page(
            session,
            run.id,
            status=status.value if status else None,
            kind=kind.value if kind else None,
            offset=page.offset,
            limit=page.limit,
        )
    items = []
    for row in changes.items:
        change = change_from_row(row)
        items.append(
            ChangeOut(
                seq=row.seq,
                kind=change.kind,
                status=change.status,
                user_name=change.user_name,
                user_id=change.user_id,
                external_id=change.external_id,
                reason=change.reason,
                hold_reason=change.hold_reason,
                details=change.details,
            )
        )
    summary = run.summary or {}
    return RunDetailOut(
        **run_out(run).model_dump(),
        warnings=list(summary.get("warnings", [])),
        skipped=[
            SkippedOut(user_name=str(name), reason=str(reason))
            for name, reason in summary.get("skipped", [])
        ],
        paused_reason=summary.get("paused_reason"),
        changes=page_of(items, changes.total, changes.offset, changes.limit),
    )


async def _find_run(database: Database, organization: Organization, run_id: str) -> Run:
    async with database.read() as session:
        run = await session.get(Run, run_id)
    if run is None or run.org_id != organization.id:
        raise ApiProblem(
            404,
            "not-found",
            f"run {run_id!r} not found in organization {organization.slug!r}: "
            "list the runs to find its id",
        )
    return run


async def _in_progress(database: Database, organization: Organization) -> ApiProblem:
    """Build the 409 problem, naming the recorded run that has the lock, if any."""
    async with database.read() as session:
        running = await session.scalar(
            select(Run.id)
            .where(Run.org_id == organization.id, Run.status == RunStatus.running)
            .order_by(Run.started_at.desc())
            .limit(1)
        )
    if running is None:
        detail = (
            f"an approval or a run of organization {organization.slug!r} has "
            "its lock: try again when it ends"
        )
    else:
        detail = (
            f"run {running} of organization {organization.slug!r} is in progress: "
            f"wait for it to finish (GET {run_location(organization, running)}), "
            "then try again"
        )
    return ApiProblem(409, "run-in-progress", detail, run_id=running)


async def _check_startable(database: Database, organization: Organization) -> None:
    if not organization.plan.allows_scim:
        raise ApiProblem(
            403,
            "not-allowed",
            f"organization {organization.slug!r} is on the "
            f"{organization.plan.value} plan: reconciliation needs the "
            "professional or enterprise plan",
        )
    async with database.read() as session:
        config = await session.get(ConnectorConfig, organization.id)
    if config is None:
        raise ApiProblem(
            409,
            "conflict",
            f"organization {organization.slug!r} has no connector: set one with "
            f"PUT /admin/v1/organizations/{organization.slug}/connector, then "
            "start the run",
        )


@router.post(
    RUNS_PATH,
    summary="Start a reconciliation, as a dry run or applied",
    status_code=202,
    response_model=RunOut,
    responses={
        200: {
            "model": RunDetailOut,
            "description": "The run finished within wait_seconds.",
        },
        202: {
            "description": "The run started and goes on; Location is its address.",
            "headers": {
                "Location": {
                    "description": "The run's address.",
                    "schema": {"type": "string"},
                }
            },
        },
        **problem_responses(401, 403, 404, 409, 422, 429, 503),
    },
)
async def start_run(
    body: RunStart,
    request: Request,
    organization: OrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> JSONResponse:
    shutdown: Shutdown = request.app.state.shutdown
    if shutdown.is_requested():
        raise ApiProblem(
            503,
            "unavailable",
            "the service is stopping and starts no run: start it again in a moment",
            headers={"Retry-After": "5"},
        )
    await _check_startable(database, organization)
    requested: RequestedRuns = request.app.state.requested_runs
    run_request = RunRequest(
        trigger=RunTrigger.api,
        dry_run=body.dry_run,
        only_user=body.user,
        only_group=body.group,
    )
    try:
        run, task = await requested.start(organization.slug, run_request)
    except RunInProgressError:
        raise await _in_progress(database, organization) from None
    async with database.write() as session:
        audit.record(
            session,
            org_id=organization.id,
            source=Source.admin,
            action="run_started",
            resource_type="Run",
            resource_id=run.id,
            actor=principal.name,
            run_id=run.id,
            details={
                "dry_run": body.dry_run,
                "user": body.user,
                "group": body.group,
            },
        )
    if body.wait_seconds > 0:
        await asyncio.wait({task}, timeout=body.wait_seconds)
    location = {"Location": run_location(organization, run.id)}
    if task.done():
        finished = await _find_run(database, organization, run.id)
        detail = await _run_detail(
            database, finished, PageRequest(0, reports.DEFAULT_PAGE_SIZE)
        )
        return JSONResponse(jsonable_encoder(detail), status_code=200, headers=location)
    return JSONResponse(
        jsonable_encoder(run_out(run)), status_code=202, headers=location
    )


@router.get(
    RUNS_PATH,
    summary="List an organization's runs, newest first",
    response_model=Page[RunOut],
    responses=problem_responses(401, 404, 422, 429),
)
async def list_runs(
    organization: OrganizationDep, database: DatabaseDep, page: PageDep
) -> Page[RunOut]:
    async with database.read() as session:
        found = await reports.list_runs_page(
            session, organization.id, offset=page.offset, limit=page.limit
        )
    items = [run_out(run) for run in found.items]
    return page_of(items, found.total, found.offset, found.limit)


@router.get(
    RUN_PATH,
    summary="Show a run with its plan: each change with its reason",
    response_model=RunDetailOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def show_run(
    run_id: str,
    organization: OrganizationDep,
    database: DatabaseDep,
    page: PageDep,
    status: Annotated[
        ChangeStatus | None, Query(description="Only changes with this status.")
    ] = None,
    kind: Annotated[
        ChangeKind | None, Query(description="Only changes of this kind.")
    ] = None,
) -> RunDetailOut:
    run = await _find_run(database, organization, run_id)
    return await _run_detail(database, run, page, status, kind)


@router.post(
    RUN_PATH + "/approve",
    summary="Approve a run's held changes: apply those that still hold",
    response_model=RunDetailOut,
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
async def approve_run(
    run_id: str,
    request: Request,
    organization: OrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> RunDetailOut:
    await _find_run(database, organization, run_id)
    reconciler = get_reconciler(request)
    try:
        report = await reconciler.approve(run_id, actor=principal.name)
    except RunInProgressError:
        raise await _in_progress(database, organization) from None
    except NotFoundError as exc:
        # The run exists (checked above), so this means it has no held changes.
        raise ApiProblem(409, "conflict", str(exc)) from None
    async with database.write() as session:
        audit.record(
            session,
            org_id=organization.id,
            source=Source.admin,
            action="run_approved",
            resource_type="Run",
            resource_id=run_id,
            actor=principal.name,
            run_id=run_id,
            details={"counts_by_status": report.run.counts.get("by_status", {})},
        )
    return await _run_detail(
        database, report.run, PageRequest(0, reports.DEFAULT_PAGE_SIZE)
    )
