"""Health endpoints: /healthz (alive) and /readyz (database, schema, scheduler).

Neither needs a SCIM token, and neither returns a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database, open_database
from scim_reconciler.reconcile import secrets
from scim_reconciler.settings import Settings
from tests.conftest import PUBLIC_BASE_URL, make_settings
from tests.ops.support import get_status, wait_until
from tests.support.databases import (
    POSTGRES_ENV,
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)
from tests.support.server import serve

# How long the service may take to notice the database went away or came back.
DATABASE_CHANGE_TIMEOUT_SECONDS = 20


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the application's lifespan (scheduler included) around a client."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC_BASE_URL
        ) as client,
    ):
        yield client


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_readyz_ready_with_scheduler_running(
    database: Database, settings: Settings
) -> None:
    async with running(create_app(settings, database)) as client:
        status, body = await readiness(client)

    assert status == 200
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "at head"
    assert body["checks"]["scheduler"] == "running"


async def test_readyz_not_ready_when_scheduler_stopped(
    database: Database, settings: Settings
) -> None:
    app = create_app(settings, database)
    async with running(app) as client:
        app.state.scheduler.stop_scheduling()
        status, body = await readiness(client)

    assert status == 503
    assert body["checks"]["scheduler"] == "stopped"


async def test_readyz_scheduler_disabled_is_ready(
    database: Database, database_url: str
) -> None:
    settings = make_settings(database_url, scheduler_enabled=False)

    async with running(create_app(settings, database)) as client:
        status, body = await readiness(client)

    assert status == 200
    assert body["checks"]["scheduler"] == "disabled"


async def test_readyz_not_ready_while_shutting_down(
    database: Database, settings: Settings
) -> None:
    app = create_app(settings, database)
    async with running(app) as client:
        app.state.shutdown.request()
        status, body = await readiness(client)
        healthz = await client.get("/healthz")

    assert status == 503
    assert body["checks"]["shutdown"] == "requested"
    assert healthz.status_code == 200


async def test_readyz_migrations_pending(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    database = open_database(url)
    settings = make_settings(url, scheduler_enabled=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, database)),
            base_url=PUBLIC_BASE_URL,
        ) as client:
            status, body = await readiness(client)
    finally:
        await database.dispose()

    assert status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "pending"


async def test_health_endpoints_need_no_token_and_show_no_secret(
    database: Database, database_url: str
) -> None:
    secret_key = secrets.new_key()
    settings = make_settings(database_url, secret_key=secret_key)

    async with running(create_app(settings, database)) as client:
        responses = [await client.get(path) for path in ("/healthz", "/readyz")]
        responses.append(await client.get("/metrics"))

    database_name = make_url(database_url).database
    assert database_name is not None
    for response in responses:
        assert response.status_code == 200, response.url
        assert secret_key not in response.text
        assert database_name not in response.text


async def test_metrics_disabled_answers_404(
    database: Database, database_url: str
) -> None:
    settings = make_settings(database_url, metrics_enabled=False)

    async with running(create_app(settings, database)) as client:
        response = await client.get("/metrics")

    assert response.status_code == 404


async def _admin(server_url: str, *statements: str) -> None:
    """Run statements on the PostgreSQL server's maintenance database."""
    libpq = make_url(server_url).set(drivername="postgresql")
    connection = await asyncpg.connect(
        libpq.render_as_string(hide_password=False), timeout=10
    )
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.mark.slow
@pytest.mark.postgres
async def test_readyz_follows_postgres_going_down_and_back(tmp_path: Path) -> None:
    """/readyz answers 503 while the database refuses connections, then 200."""
    server_url = postgres_server_url()
    if server_url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    database_url = await asyncio.to_thread(create_postgres_database, server_url)
    name = make_url(database_url).database
    try:
        with serve(database_url, tmp_path) as server:
            readyz = f"{server.base_url}/readyz"
            assert await get_status(readyz) == 200

            # Refuse new connections and close the service's open ones.
            await _admin(
                server_url,
                f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}'",
            )
            await wait_until(
                lambda: _status_is(readyz, 503),
                DATABASE_CHANGE_TIMEOUT_SECONDS,
                "for /readyz to fail with the database down",
            )
            async with httpx.AsyncClient(timeout=5.0) as client:
                down = (await client.get(readyz)).json()
            assert down["checks"]["database"] == "unreachable"
            healthz = await get_status(f"{server.base_url}/healthz")

            await _admin(server_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await wait_until(
                lambda: _status_is(readyz, 200),
                DATABASE_CHANGE_TIMEOUT_SECONDS,
                "for /readyz to recover with the database back",
            )
    finally:
        await _admin(server_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await asyncio.to_thread(drop_postgres_database, server_url, database_url)

    assert healthz == 200


async def _status_is(url: str, expected: int) -> bool:
    return await get_status(url) == expected
