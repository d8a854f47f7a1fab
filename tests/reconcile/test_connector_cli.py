"""The connector commands of the command line: set, show (masked) and check."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AuditEvent, Source
from scim_reconciler.reconcile import secrets
from tests.conftest import Tenant
from tests.support.cli import run_cli
from tests.support.runs import write_directory


async def test_connector_set_show_and_check(
    database: Database, database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    directory = write_directory(tmp_path / "directory.json", [1])

    stored = run_cli(
        database_url, tmp_path, "connector", "set", "acme", "--kind", "file",
        "--path", str(directory), "--interval-seconds", "120", "--json",
    )  # fmt: skip
    shown = run_cli(database_url, tmp_path, "connector", "show", "acme", "--json")
    checked = run_cli(database_url, tmp_path, "connector", "check", "acme", "--json")

    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout)["interval_seconds"] == 120
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["kind"] == "file"
    assert view["config"]["path"] == str(directory)
    # The directory file resolves, but no group is mapped yet.
    assert checked.returncode == 1
    problems = json.loads(checked.stdout)["problems"]
    assert len(problems) == 1
    assert "no group is mapped" in problems[0]
    async with database.read() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "connector_set")
        )
    assert event is not None
    assert event.source is Source.admin
    assert event.actor == "operator"


async def test_connector_set_masks_secret(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    token = "00aOktaTokenThatMustNotShow"
    config = tmp_path / "okta.json"
    config.write_text(
        json.dumps(
            {"kind": "okta", "base_url": "https://acme.okta.com", "api_token": token}
        )
    )
    key = {"SCIM_RECONCILER_SECRET_KEY": secrets.new_key()}

    stored = run_cli(
        database_url, tmp_path, "connector", "set", "acme", "--config", str(config),
        extra_env=key,
    )  # fmt: skip
    shown = run_cli(
        database_url, tmp_path, "connector", "show", "acme", "--json", extra_env=key
    )

    assert stored.returncode == 0, stored.stderr
    assert json.loads(shown.stdout)["config"]["api_token"] == "encrypted:****"
    assert token not in stored.stdout + stored.stderr + shown.stdout


async def test_connector_show_without_connector_fails(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    shown = run_cli(database_url, tmp_path, "connector", "show", "acme")

    assert shown.returncode == 1
    assert "'acme' has no connector" in shown.stderr
