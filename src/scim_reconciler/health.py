"""Health and metrics endpoints for orchestrators and Prometheus.

None of them needs a SCIM token, and none returns a secret, a URL or an error
message: only the state of each check.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.responses import JSONResponse, Response

from scim_reconciler.db.migrate import is_at_head

logger = logging.getLogger(__name__)

# A readiness probe must respond before the orchestrator's own timeout (one
# second by default in Kubernetes). So an unreachable database is reported as
# such instead of hanging until the driver's connect timeout.
DATABASE_CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Report that the process is alive and serving."""
    return JSONResponse({"status": "ok"})


async def _database_checks(request: Request) -> tuple[dict[str, str], str | None]:
    """Check the database; return the check states and the failure's type name."""
    try:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_SECONDS):
            at_head = await is_at_head(request.app.state.database)
    except Exception as exc:  # any failure to reach the database means not ready
        logger.debug("Readiness database check failed: %r", exc)
        return {"database": "unreachable", "migrations": "unknown"}, type(exc).__name__
    migrations = "at head" if at_head else "pending"
    return {"database": "ok", "migrations": migrations}, None


def _scheduler_check(request: Request) -> str:
    if not request.app.state.settings.scheduler_enabled:
        return "disabled"
    scheduler = getattr(request.app.state, "scheduler", None)
    return "running" if scheduler is not None and scheduler.is_scheduling else "stopped"


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Report whether this process should get traffic.

    Ready means: not shutting down, the database responds, its schema is at
    the newest migration, and the scheduler runs unless it is disabled.
    """
    checks: dict[str, Any] = {}
    shutdown = getattr(request.app.state, "shutdown", None)
    checks["shutdown"] = "requested" if shutdown and shutdown.is_requested() else "no"
    database_checks, failure = await _database_checks(request)
    checks.update(database_checks)
    checks["scheduler"] = _scheduler_check(request)
    ready = (
        checks["shutdown"] == "no"
        and checks["database"] == "ok"
        and checks["migrations"] == "at head"
        and checks["scheduler"] in ("running", "disabled")
    )
    _log_change(request, ready, checks, failure)
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def _log_change(
    request: Request, ready: bool, checks: dict[str, Any], failure: str | None
) -> None:
    """Log readiness when it changes, not at every probe."""
    state = request.app.state
    if getattr(state, "was_ready", None) == ready:
        return
    state.was_ready = ready
    if ready:
        logger.info("Ready to serve")
    else:
        logger.warning(
            "Not ready: %s%s", checks, f" (database error {failure})" if failure else ""
        )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Expose this process's Prometheus metrics in the text format."""
    if not request.app.state.settings.metrics_enabled:
        return JSONResponse({"status": "metrics are disabled"}, status_code=404)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
