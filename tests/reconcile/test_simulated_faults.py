"""Faults that the IdP simulator injects in the middle of a run never deactivate
anyone: a listing that keeps failing fails the run with nothing applied, and a
group that comes back empty has its removals held for an admin's approval.

Each IdP connector reads the simulator over loopback HTTP inside the test's
event loop. Retry waits and the simulator's rate-limit window use a fake clock,
so retries pass without sleeping. Only the timeout case waits for real, for its
short read timeout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import ConnectorConfig
from scim_reconciler.reconcile.connectors.base import Connector
from scim_reconciler.reconcile.model import ChangeKind, ChangeStatus
from scim_reconciler.reconcile.runs import Reconciler, RunReport, RunRequest
from scim_reconciler.simulator.base import IdpSimulator, SimulatorOptions
from scim_reconciler.simulator.server import make_simulator
from tests.conftest import Tenant
from tests.support.idp import (
    FakeClock,
    build_from_announcement,
    idp_group_id,
    idp_user_id,
    served,
    simulator_for,
)
from tests.support.runs import accounts, configure, footprint

# The faults concern the connectors and the guards, not the store, and
# test_simulated_end_to_end.py runs the simulator against PostgreSQL.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

IDPS = ["okta", "entra", "onelogin"]
ADMINS_NAME = "Dashboard Admins"
# Two members per page: every group's listing has a second page to break.
PAGE_SIZE = 2
ADMINS = range(1, 6)
ANALYSTS = range(6, 9)


def write_directory(
    path: Path, idp: str, admins: range | list[int], inactive: tuple[int, ...] = ()
) -> Path:
    """Write users 1 to 8, the admins group and the analysts group (users 6 to 8)."""
    users = [
        {
            "id": idp_user_id(idp, number),
            "userName": f"user{number}@example.com",
            "email": f"user{number}@example.com",
            "givenName": "Given",
            "familyName": f"Family{number}",
            "active": number not in inactive,
        }
        for number in [*ADMINS, *ANALYSTS]
    ]
    groups = [
        {
            "id": idp_group_id(idp, 1),
            "name": ADMINS_NAME,
            "members": [idp_user_id(idp, number) for number in admins],
        },
        {
            "id": idp_group_id(idp, 2),
            "name": "Analysts",
            "members": [idp_user_id(idp, number) for number in ANALYSTS],
        },
    ]
    path.write_text(json.dumps({"users": users, "groups": groups}))
    return path


async def run_against(
    database: Database,
    simulator: IdpSimulator,
    clock: FakeClock,
    **connector_overrides: Any,
) -> RunReport:
    """Run a reconciliation of acme (apply) that reads ``simulator``."""
    async with served(simulator) as announced:

        def connector(_config: ConnectorConfig) -> Connector:
            return build_from_announcement(announced, clock, **connector_overrides)

        reconciler = Reconciler(database, None, connector_factory=connector)
        return await reconciler.run("acme", RunRequest())


async def reconciled_tenant(
    database: Database, tenant: Tenant, idp: str, tmp_path: Path, clock: FakeClock
) -> None:
    """Map both groups and create their eight users with a run that has no fault."""
    directory = write_directory(tmp_path / "before.json", idp, ADMINS)
    mappings = (
        (ADMINS_NAME, "global_admin"),
        (idp_group_id(idp, 2), "analytics_admin"),
    )
    await configure(database, tenant.org, directory, mappings=mappings)
    simulator = simulator_for(idp, directory, clock, page_size=PAGE_SIZE)
    first = await run_against(database, simulator, clock)
    assert first.run.status.value == "succeeded", first.run.error
    assert len(await accounts(database, tenant.org.id)) == 8


def changed_directory(tmp_path: Path, idp: str) -> Path:
    """User 1 leaves the admins and user 8 is deactivated in the IdP."""
    return write_directory(
        tmp_path / "after.json", idp, list(ADMINS)[1:], inactive=(8,)
    )


@pytest.mark.parametrize("idp", IDPS)
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("503@members,page=2", "with HTTP 503"),
        ("truncate@members,page=2", "is not valid JSON"),
        ("empty@members,page=2", "is not valid JSON"),
    ],
)
async def test_failing_page_fails_run_applies_nothing(
    idp: str,
    fault: str,
    expected: str,
    database: Database,
    tenant: Tenant,
    tmp_path: Path,
) -> None:
    """A second page that fails past every retry fails the run, never ends the
    listing early; the run's real changes wait for the next run."""
    clock = FakeClock()
    await reconciled_tenant(database, tenant, idp, tmp_path, clock)
    before = await footprint(database, tenant.org.id)
    simulator = simulator_for(
        idp,
        changed_directory(tmp_path, idp),
        clock,
        page_size=PAGE_SIZE,
        faults=(fault,),
    )

    report = await run_against(database, simulator, clock)

    assert report.run.status.value == "failed"
    assert report.run.error is not None
    assert expected in report.run.error
    assert "after 5 attempts" in report.run.error
    assert report.changes == ()
    assert await footprint(database, tenant.org.id) == before
    stored = await accounts(database, tenant.org.id)
    assert all(account.active for account in stored.values())


@pytest.mark.parametrize("idp", IDPS)
async def test_timeout_mid_run_applies_nothing(
    idp: str, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    """The second page comes after the read timeout on each of two attempts.

    The read timeout is real network time (0.2 s) and the simulator really
    sleeps, while retry waits use the fake clock.
    """
    clock = FakeClock()
    await reconciled_tenant(database, tenant, idp, tmp_path, clock)
    before = await footprint(database, tenant.org.id)
    options = SimulatorOptions(
        page_size=PAGE_SIZE, faults=("timeout@members,page=2,ms=1500",)
    )
    simulator = make_simulator(
        idp, changed_directory(tmp_path, idp), options, clock=clock.time
    )

    report = await run_against(
        database, simulator, clock, read_timeout_seconds=0.2, max_attempts=2
    )

    assert report.run.status.value == "failed"
    assert report.run.error is not None
    assert "the response timed out after 2 attempts" in report.run.error
    assert report.changes == ()
    assert await footprint(database, tenant.org.id) == before


@pytest.mark.parametrize("idp", IDPS)
async def test_empty_first_page_holds_removals(
    idp: str, database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    """Both groups return a valid, empty first page with no next page.

    Every removal and the deactivations it causes are held, so nobody loses
    access until an admin approves.
    """
    clock = FakeClock()
    await reconciled_tenant(database, tenant, idp, tmp_path, clock)
    before = await footprint(database, tenant.org.id)
    simulator = simulator_for(
        idp,
        changed_directory(tmp_path, idp),
        clock,
        page_size=PAGE_SIZE,
        faults=("empty-list@members,page=1",),
    )

    report = await run_against(database, simulator, clock)

    deactivations = [c for c in report.changes if c.kind is ChangeKind.deactivate]
    assert report.run.status.value == "held", report.run.error
    assert len(deactivations) == 8
    assert all(c.status is ChangeStatus.held for c in report.changes)
    assert all("came back empty" in (c.hold_reason or "") for c in report.changes)
    assert any("came back empty" in warning for warning in report.warnings)
    assert await footprint(database, tenant.org.id) == before
    stored = await accounts(database, tenant.org.id)
    assert all(account.active for account in stored.values())
