"""The trial command: a demo organization reconciled from a directory file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli


def test_demo_reconciles_once_then_settles(tmp_path: Path) -> None:
    """A newcomer sees a real run without an IdP account; a rerun changes nothing."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"

    first = run_cli(database_url, tmp_path, "demo", "--no-serve")
    second = run_cli(database_url, tmp_path, "demo", "--no-serve")

    assert first.returncode == 0, first.stderr
    assert "create 6" in first.stdout
    assert "scimr_" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "no changes" in second.stdout
    directory = json.loads((tmp_path / "scim-reconciler-demo.json").read_text())
    assert len(directory["users"]) == 7
    listed = run_cli(database_url, tmp_path, "users", "list", "demo", "--json")
    users = json.loads(listed.stdout)
    assert len(users) == 6
    assert all(user["active"] for user in users)
    roles = {user["userName"]: {r["role"] for r in user["roles"]} for user in users}
    assert roles["grace.hopper@example.com"] == {
        "global_admin",
        "course_management_admin",
    }
