"""Prometheus metrics at /metrics after SCIM requests and a reconciliation run.

The registry is the process's, shared by every test, so each check compares a
sample before and after.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import RunStatus, RunTrigger
from scim_reconciler.reconcile.runs import Reconciler, RunRequest
from scim_reconciler.settings import Settings
from tests.conftest import Tenant, scim_client
from tests.support.resources import user_body
from tests.support.runs import configure, idp_user, write_directory

FAMILIES = (
    "scim_reconciler_scim_requests",
    "scim_reconciler_scim_request_duration_seconds",
    "scim_reconciler_token_authentication_failures",
    "scim_reconciler_runs",
    "scim_reconciler_run_duration_seconds",
    "scim_reconciler_changes",
    "scim_reconciler_drift",
    "scim_reconciler_last_run_drift",
    "scim_reconciler_held_deactivations",
    "scim_reconciler_idp_requests",
    "scim_reconciler_idp_request_duration_seconds",
    "scim_reconciler_idp_retries",
    "scim_reconciler_idp_rate_limited",
)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_scim_requests_and_runs(
    database: Database, settings: Settings, tenant: Tenant, tmp_path: Path
) -> None:
    created = {"method": "POST", "resource": "Users", "status": "201"}
    unknown_token = {"reason": "unknown"}
    run_labels = {"organization": tenant.org.slug, "status": "succeeded"}
    applied_creates = {"kind": "create", "status": "applied"}
    before = {
        "created": sample("scim_reconciler_scim_requests_total", **created),
        "unknown": sample(
            "scim_reconciler_token_authentication_failures_total", **unknown_token
        ),
        "runs": sample("scim_reconciler_runs_total", **run_labels),
        "creates": sample("scim_reconciler_changes_total", **applied_creates),
        "drift": sample("scim_reconciler_drift_total", organization=tenant.org.slug),
    }
    app = create_app(settings, database)

    async with scim_client(app, tenant.token) as client:
        pushed = await client.post("/Users", json=user_body("ada@example.com"))
    async with scim_client(app, "scimr_not-a-real-token") as stranger:
        rejected = await stranger.get("/Users")
    directory = write_directory(tmp_path / "directory.json", [1, 2])
    await configure(database, tenant.org, directory)
    report = await Reconciler(database, None).run(
        tenant.org.slug, RunRequest(trigger=RunTrigger.manual)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scim.test"
    ) as plain:
        exposed = await plain.get("/metrics")

    assert pushed.status_code == 201
    assert rejected.status_code == 401
    assert report.run.drift > 0
    assert exposed.status_code == 200
    names = {family.name for family in text_string_to_metric_families(exposed.text)}
    assert sorted(set(FAMILIES) - names) == []
    after_created = sample("scim_reconciler_scim_requests_total", **created)
    assert after_created == before["created"] + 1
    after_unknown = sample(
        "scim_reconciler_token_authentication_failures_total", **unknown_token
    )
    assert after_unknown == before["unknown"] + 1
    assert sample("scim_reconciler_runs_total", **run_labels) == before["runs"] + 1
    after_creates = sample("scim_reconciler_changes_total", **applied_creates)
    assert after_creates == before["creates"] + 2  # IdP users 1 and 2
    after_drift = sample("scim_reconciler_drift_total", organization=tenant.org.slug)
    assert after_drift == before["drift"] + report.run.drift
    last_drift = sample("scim_reconciler_last_run_drift", organization=tenant.org.slug)
    assert last_drift == report.run.drift
    duration_count = sample(
        "scim_reconciler_scim_request_duration_seconds_count",
        method="POST",
        resource="Users",
    )
    assert duration_count >= 1


async def test_approval_lowers_held_deactivations(
    database: Database, tenant: Tenant, tmp_path: Path
) -> None:
    slug = tenant.org.slug
    directory = write_directory(tmp_path / "directory.json", range(1, 6))
    users = [idp_user(number) for number in range(1, 6)]
    await configure(database, tenant.org, directory, max_deactivations=1)
    reconciler = Reconciler(database, None)
    request = RunRequest(trigger=RunTrigger.manual)
    await reconciler.run(slug, request)
    # Users 1 to 4 leave the mapped group: four deactivations over a limit of 1.
    write_directory(directory, [5], users=users)
    held_run = await reconciler.run(slug, request)
    applied = {"kind": "deactivate", "status": "applied"}
    before_applied = sample("scim_reconciler_changes_total", **applied)
    before_drift = sample("scim_reconciler_drift_total", organization=slug)
    held_gauge = sample("scim_reconciler_held_deactivations", organization=slug)

    approved = await reconciler.approve(held_run.run.id)

    assert held_run.run.status is RunStatus.held
    assert held_gauge == 4
    assert approved.run.status is RunStatus.succeeded
    assert sample("scim_reconciler_held_deactivations", organization=slug) == 0
    after_applied = sample("scim_reconciler_changes_total", **applied)
    assert after_applied == before_applied + 4
    after_drift = sample("scim_reconciler_drift_total", organization=slug)
    assert after_drift == before_drift + approved.run.drift - held_run.run.drift
    last_drift = sample("scim_reconciler_last_run_drift", organization=slug)
    assert last_drift == approved.run.drift


async def test_metrics_labels_carry_no_ids_or_paths(
    database: Database, settings: Settings, tenant: Tenant
) -> None:
    """Labels name the SCIM resource, never a user id, userName or raw path."""
    app = create_app(settings, database)

    async with scim_client(app, tenant.token) as client:
        pushed = await client.post("/Users", json=user_body("bea@example.com"))
        user_id = pushed.json()["id"]
        await client.get(f"/Users/{user_id}")
        await client.get("/NoSuchResource/123")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scim.test"
    ) as plain:
        exposed = (await plain.get("/metrics")).text

    assert user_id not in exposed
    assert "bea@example.com" not in exposed
    assert "NoSuchResource" not in exposed
    assert (
        sample(
            "scim_reconciler_scim_requests_total",
            method="GET",
            resource="other",
            status="404",
        )
        >= 1
    )
