"""The ASGI application: SCIM under /scim/v2 and the health endpoints."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from scim_reconciler import __version__
from scim_reconciler.db.engine import Database, open_database
from scim_reconciler.db.migrate import is_at_head, migrate, sync_role_catalog
from scim_reconciler.scim.errors import install_handlers
from scim_reconciler.scim.routes import router as scim_router
from scim_reconciler.settings import Settings

logger = logging.getLogger(__name__)


async def prepare_database(settings: Settings, *, run_migrations: bool) -> Database:
    database = open_database(
        settings.database_url, pool_size=settings.database_pool_size
    )
    if run_migrations:
        await migrate(database)
    await sync_role_catalog(database, settings.roles)
    return database


def create_app(settings: Settings, database: Database | None = None) -> FastAPI:
    """Build the application; without ``database`` it opens one at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        app.state.database = database or await prepare_database(
            settings, run_migrations=settings.migrate_on_start
        )
        logger.info("Service started; SCIM base URL %s", settings.scim_base_url)
        try:
            yield
        finally:
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
    if database is not None:
        app.state.database = database
    install_handlers(app)
    app.include_router(scim_router)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        supplied = request.headers.get("x-request-id", "")
        # A client-supplied id is kept only if it is short and printable.
        valid = 0 < len(supplied) <= 64 and supplied.isprintable()
        request.state.request_id = supplied if valid else uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        try:
            at_head = await is_at_head(request.app.state.database)
        except Exception as exc:  # any database failure means not ready
            logger.warning("Readiness check failed: %s", type(exc).__name__)
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        if not at_head:
            return JSONResponse({"status": "migrations pending"}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app
