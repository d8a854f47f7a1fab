"""The ASGI application: SCIM under /scim/v2, the admin API under /admin/v1,
health checks and metrics."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from scim_reconciler import __version__
from scim_reconciler.admin.api import install_problem_handlers
from scim_reconciler.admin.api import router as admin_api_router
from scim_reconciler.admin.throttle import SignInThrottle
from scim_reconciler.console.routes import router as console_router
from scim_reconciler.db.engine import Database
from scim_reconciler.db.migrate import prepare_database
from scim_reconciler.health import router as health_router
from scim_reconciler.lifecycle import DrainingScheduler, RequestedRuns, Shutdown
from scim_reconciler.observability.requests import RequestObservabilityMiddleware
from scim_reconciler.reconcile.runs import Reconciler
from scim_reconciler.scim.errors import install_handlers
from scim_reconciler.scim.lookup_middleware import USERS_PATH, UserNameLookupMiddleware
from scim_reconciler.scim.routes import router as scim_router
from scim_reconciler.settings import Settings

logger = logging.getLogger(__name__)


def process_owner() -> str:
    """Name this process in run records: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def start_reconciler(
    settings: Settings, database: Database, shutdown: Shutdown
) -> Reconciler:
    """Make the process's reconciler and mark runs an earlier stop interrupted."""
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    reconciler = Reconciler(
        database,
        secret_key,
        owner=process_owner(),
        should_stop=shutdown.is_requested,
    )
    recovered = await reconciler.recover()
    if recovered:
        logger.warning("Marked %d runs interrupted by an earlier stop", recovered)
    return reconciler


async def start_scheduler(
    settings: Settings, database: Database, reconciler: Reconciler
) -> DrainingScheduler:
    scheduler = DrainingScheduler(
        database, reconciler, settings.scheduler_refresh_seconds
    )
    await scheduler.start()
    return scheduler


def create_app(
    settings: Settings,
    database: Database | None = None,
    *,
    shutdown: Shutdown | None = None,
) -> FastAPI:
    """Build the application; without ``database`` it opens one at startup.

    ``shutdown`` is the stop request that the server sets on SIGTERM; without
    one, the application makes its own, requested when the lifespan ends.
    """
    stop = shutdown or Shutdown(settings.shutdown_grace_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop.attach(asyncio.get_running_loop())
        owned = database is None
        app.state.database = database or await prepare_database(
            settings, run_migrations=settings.migrate_on_start
        )
        reconciler = await start_reconciler(settings, app.state.database, stop)
        app.state.reconciler = reconciler
        requested_runs = app.state.requested_runs = RequestedRuns(reconciler)
        scheduler = None
        if settings.scheduler_enabled:
            scheduler = await start_scheduler(settings, app.state.database, reconciler)
            stop.on_request(scheduler.stop_scheduling)
        app.state.scheduler = scheduler
        logger.info(
            "Service started (version %s); SCIM base URL %s",
            __version__,
            settings.scim_base_url,
        )
        try:
            yield
        finally:
            stop.request()
            logger.info("Service stopping")
            draining = [requested_runs.drain(stop.remaining_seconds())]
            if scheduler is not None:
                draining.append(scheduler.drain(stop.remaining_seconds()))
            await asyncio.gather(*draining)
            if owned:
                await app.state.database.dispose()
            logger.info("Service stopped")

    app = FastAPI(
        title="scim-reconciler",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.sign_in_throttle = SignInThrottle(
        settings.sign_in_max_failures, settings.sign_in_window_seconds
    )
    app.state.shutdown = stop
    if database is not None:
        app.state.database = database
    install_handlers(app)
    install_problem_handlers(app)
    app.include_router(scim_router)
    app.include_router(health_router)
    app.include_router(admin_api_router)
    app.include_router(console_router)
    # Added first, so that it runs inside the observability middleware.
    app.add_middleware(UserNameLookupMiddleware, route=_users_route())
    app.add_middleware(RequestObservabilityMiddleware)
    return app


def _users_route() -> APIRoute:
    """Return the route of ``GET /scim/v2/Users``."""
    for route in scim_router.routes:
        if (
            isinstance(route, APIRoute)
            and route.path == USERS_PATH
            and "GET" in (route.methods or ())
        ):
            return route
    raise LookupError(f"the application has no GET {USERS_PATH} route")
