"""What `scim-reconciler reconcile` prints for people, not for --json."""

from __future__ import annotations

from pathlib import Path

from scim_reconciler.db.engine import Database
from tests.conftest import make_tenant
from tests.support.cli import run_cli
from tests.support.runs import configure, write_directory


async def test_plan_before_apply_says_to_apply(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    tenant = await make_tenant(database, "acme")
    directory = write_directory(tmp_path / "directory.json", admins=[1, 2])
    await configure(database, tenant.org, directory)

    applied = run_cli(database_url, tmp_path, "reconcile", "acme")

    assert applied.returncode == 0, applied.stderr
    assert "to apply" in applied.stdout
    assert "planned" not in applied.stdout


async def test_dry_run_plan_says_planned(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    tenant = await make_tenant(database, "acme")
    directory = write_directory(tmp_path / "directory.json", admins=[1, 2])
    await configure(database, tenant.org, directory)

    previewed = run_cli(database_url, tmp_path, "reconcile", "acme", "--dry-run")

    assert previewed.returncode == 0, previewed.stderr
    assert "planned" in previewed.stdout
    assert "to apply" not in previewed.stdout
