"""Logging: JSON lines with request and run ids, and no secret at any level."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from scim_reconciler.app import create_app
from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import ConnectorConfig, Organization, RunStatus
from scim_reconciler.observability.logging import (
    REDACTED,
    configure_logging,
    redact_secrets,
    resolve_format,
)
from scim_reconciler.reconcile import secrets
from scim_reconciler.reconcile.connectors.registry import parse_config
from scim_reconciler.reconcile.runs import Reconciler, RunRequest
from scim_reconciler.services.mappings import add_mapping
from scim_reconciler.settings import Settings
from tests.conftest import Tenant, scim_client
from tests.ops.support import runs_of, wait_until
from tests.support.idp import idp_group_id, idp_user_id, simulator_process
from tests.support.resources import patch_body, user_body
from tests.support.runs import configure, write_directory
from tests.support.server import serve

RUN_TIMEOUT_SECONDS = 60


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Configure JSON logging into a buffer, and restore logging afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    names = (
        "httpx",
        "httpcore",
        "apscheduler",
        "alembic.runtime.migration",
        "uvicorn",
        "uvicorn.access",
        "aiosqlite",
    )
    saved = {name: logging.getLogger(name).level for name in names}
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("event", "hidden"),
    [
        ({"authorization": "Bearer abc123"}, "abc123"),
        ({"api_token": "00abcdefghij"}, "00abcdefghij"),
        ({"client_secret": "s3cr3t-value"}, "s3cr3t-value"),
        ({"password": "hunter2"}, "hunter2"),
        ({"headers": {"Authorization": "SSWS 00okta"}}, "00okta"),
        ({"event": "sent Authorization: Bearer tok.en-1"}, "tok.en-1"),
        ({"event": "token scimr_0123456789abcdef was used"}, "0123456789abcdef"),
        ({"event": "connect postgresql://scim:pw-9@db/scim"}, "pw-9"),
        ({"event": "GET /x?client_secret=zz99&a=1"}, "zz99"),
        ({"event": "assertion eyJhbGciOiJSUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJl"}, "eyJ"),
        (
            {"event": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"},
            "MIIE",
        ),
    ],
)
def test_redact_secrets_hides_value(event: dict[str, Any], hidden: str) -> None:
    redacted = redact_secrets(None, "info", dict(event))

    assert hidden not in json.dumps(redacted)
    assert REDACTED in json.dumps(redacted)


def test_redact_secrets_keeps_ids_and_counts() -> None:
    event = {"event": "Token revoked", "token_id": "t-1", "count": 3, "run": "r-1"}

    assert redact_secrets(None, "info", dict(event)) == event


def test_debug_level_keeps_bind_values_out(log_stream: io.StringIO) -> None:
    configure_logging("DEBUG", "json", log_stream)

    logging.getLogger("aiosqlite").debug("executing %s", "secret-hash")

    assert logging.getLogger().level == logging.DEBUG
    assert "secret-hash" not in log_stream.getvalue()


def test_auto_format_is_json_off_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("auto", Terminal()) == "console"
    assert resolve_format("console", io.StringIO()) == "console"


def test_console_format_escapes_control_characters(log_stream: io.StringIO) -> None:
    """A newline in a logged value, such as a request path with %0A, stays on
    its line instead of starting one that reads like another event."""
    configure_logging("INFO", "console", log_stream)
    log = logging.getLogger("scim_reconciler.test")

    log.info("GET %s", "/scim/v2/Users\n2026-12-04 [error] forged\x1b[31m")
    try:
        raise ValueError("first line\nsecond line")
    except ValueError:
        log.exception("Request failed")

    lines = log_stream.getvalue().splitlines()
    assert "/scim/v2/Users\\n2026-12-04 [error] forged\\x1b[31m" in lines[0]
    assert not any(line.startswith("2026-12-04 [error]") for line in lines)
    # A traceback keeps its lines.
    assert "Request failed" in lines[1]
    assert any(line.startswith("Traceback") for line in lines[2:])
    assert "ValueError: first line" in log_stream.getvalue()


async def test_scim_request_lines_carry_request_id(
    log_stream: io.StringIO, database: Database, settings: Settings, tenant: Tenant
) -> None:
    app = create_app(settings, database)

    async with scim_client(app, tenant.token) as client:
        created = await client.post("/Users", json=user_body("ada@example.com"))
        patched = await client.patch(
            f"/Users/{created.json()['id']}",
            json=patch_body({"op": "replace", "path": "active", "value": False}),
            headers={"X-Request-ID": "req-from-idp-1"},
        )

    lines = json_lines(log_stream.getvalue())
    request_lines = [line for line in lines if line["logger"].endswith(".requests")]
    assert [line["request_id"] for line in request_lines] == [
        created.headers["X-Request-ID"],
        "req-from-idp-1",
    ]
    assert patched.headers["X-Request-ID"] == "req-from-idp-1"
    assert request_lines[0]["route"] == "/scim/v2/Users"
    assert request_lines[1]["route"] == "/scim/v2/Users/{user_id}"
    assert request_lines[1]["status"] == 200
    assert tenant.token not in log_stream.getvalue()


async def test_run_lines_carry_run_and_org(
    log_stream: io.StringIO, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    directory = write_directory(tmp_path / "directory.json", [1, 2])
    await configure(database, tenant.org, directory)

    report = await Reconciler(database, None).run(tenant.org.slug, RunRequest())

    lines = json_lines(log_stream.getvalue())
    run_lines = [
        line for line in lines if line["logger"].startswith("scim_reconciler.reconcile")
    ]
    assert len(run_lines) >= 2  # started and finished
    for line in run_lines:
        assert line.get("run") == report.run.id, line
        assert line.get("org") == tenant.org.slug, line


async def _configure_okta(
    database: Database, org: Organization, announced: dict[str, Any], secret_key: str
) -> None:
    """Make the simulator the organization's connector, its token sealed by the key."""
    raw = {
        **announced["connector"],
        "interval_seconds": 1,
        "jitter_seconds": 0,
        "max_deactivation_percent": 100.0,
    }
    parsed = parse_config(raw, secret_key)
    async with database.write() as session:
        row = ConnectorConfig(
            org_id=org.id,
            kind=parsed.kind,
            config=parsed.config,
            enabled=parsed.run.enabled,
            interval_seconds=parsed.run.interval_seconds,
            jitter_seconds=parsed.run.jitter_seconds,
            max_deactivations=parsed.run.max_deactivations,
            max_deactivation_percent=parsed.run.max_deactivation_percent,
            updated_at=utcnow(),
        )
        session.add(row)
        stored = await session.get(Organization, org.id)
        assert stored is not None
        await add_mapping(
            session, stored, group=idp_group_id("okta", 1), role_slug="global_admin"
        )


def _okta_directory(path: Path) -> Path:
    users = [
        {
            "id": idp_user_id("okta", number),
            "userName": f"user{number}@example.com",
            "email": f"user{number}@example.com",
            "active": True,
        }
        for number in (1, 2, 3)
    ]
    groups = [
        {
            "id": idp_group_id("okta", 1),
            "name": "Dashboard Admins",
            "members": [user["id"] for user in users],
        }
    ]
    path.write_text(json.dumps({"users": users, "groups": groups}))
    return path


@pytest.mark.slow
async def test_full_run_logs_no_token_or_secret(
    database: Database, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """At DEBUG, a served process logs SCIM pushes and an Okta run without secrets.

    The Okta simulator fails the first member request with 503, so the log
    also has a retry.
    """
    secret_key = secrets.new_key()
    directory = _okta_directory(tmp_path / "okta.json")
    simulator_log = tmp_path / "simulator.log"

    async with simulator_process(
        "okta", directory, simulator_log, "--fault", "503,times=1"
    ) as announced:
        api_token = announced["connector"]["api_token"]
        await _configure_okta(database, tenant.org, announced, secret_key)
        extra_env = {
            "SCIM_RECONCILER_LOG_LEVEL": "DEBUG",
            "SCIM_RECONCILER_LOG_FORMAT": "json",
            "SCIM_RECONCILER_SECRET_KEY": secret_key,
        }
        with serve(database_url, tmp_path, extra_env) as server:
            headers = {"Authorization": f"Bearer {tenant.token}"}
            async with httpx.AsyncClient(
                base_url=server.scim_url, headers=headers, timeout=10.0
            ) as client:
                created = await client.post(
                    "/Users", json=user_body("pushed@example.com")
                )
                await client.get("/Users", params={"filter": 'userName eq "x"'})
                await client.get("/Users", params={"access_token": tenant.token})
                await client.get(
                    "/Users", headers={"Authorization": f"Bearer {tenant.token}x"}
                )
            finished = await wait_until(
                lambda: _finished_run(database, tenant.org.id),
                RUN_TIMEOUT_SECONDS,
                "for a scheduled Okta run to finish",
            )
    log = server.log()

    assert created.status_code == 201
    assert finished.status is RunStatus.succeeded, finished.error
    assert tenant.token not in log
    assert tenant.token.removeprefix("scimr_") not in log
    assert api_token not in log
    assert secret_key not in log
    lines = json_lines(log)
    assert any("retry" in line["message"] for line in lines), "no retry was logged"
    scim_lines = [line for line in lines if line["logger"].endswith(".requests")]
    assert len(scim_lines) >= 4
    assert all(line.get("request_id") for line in scim_lines)
    run_lines = [line for line in lines if line.get("run") == finished.id]
    assert any("started" in line["message"] for line in run_lines)
    assert all(line.get("org") == tenant.org.slug for line in run_lines)


async def _finished_run(database: Database, org_id: int) -> Any:
    for run in await runs_of(database, org_id):
        if run.status is not RunStatus.running:
            return run
    return None
