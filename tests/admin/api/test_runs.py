"""Reconciliation runs over the admin API: start (dry run or apply, one user
or one group), list, show with reasons, approve held changes, and the runs'
place in the serving process's lifecycle."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from scim_reconciler.app import create_app
from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    AuditEvent,
    Plan,
    Run,
    RunMode,
    RunStatus,
    RunTrigger,
    Source,
)
from scim_reconciler.lifecycle import RequestedRuns
from scim_reconciler.reconcile.locks import run_lock
from scim_reconciler.services import organizations
from scim_reconciler.settings import Settings
from tests.admin.api.conftest import OrgAdmin, assert_problem
from tests.support.runs import accounts, configure, user_name, write_directory

RUN_TIMEOUT_SECONDS = 60.0


async def finished(app: FastAPI, run_id: str) -> None:
    """Wait, bounded, for a run started over the API to finish."""
    requested: RequestedRuns = app.state.requested_runs
    task = requested.task_of(run_id)
    if task is not None:
        await asyncio.wait_for(asyncio.shield(task), RUN_TIMEOUT_SECONDS)


async def start(
    client: httpx.AsyncClient, slug: str = "acme", **body: Any
) -> httpx.Response:
    return await client.post(f"/organizations/{slug}/runs", json=body)


async def setup_org(
    database: Database, admin: OrgAdmin, tmp_path: Path, **run_settings: Any
) -> Path:
    """Give the organization a directory file with users 1 to 5 as admins."""
    directory = write_directory(tmp_path / "directory.json", range(1, 6), [1])
    await configure(database, admin.tenant.org, directory, **run_settings)
    return directory


async def test_dry_run_with_wait_returns_plan_with_reasons(
    acme_admin: httpx.AsyncClient, acme: OrgAdmin, database: Database, tmp_path: Path
) -> None:
    await setup_org(database, acme, tmp_path)

    response = await start(acme_admin, dry_run=True, wait_seconds=20)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (
        response.headers["location"]
        == f"/admin/v1/organizations/acme/runs/{body['id']}"
    )
    assert body["mode"] == "dry_run"
    assert body["trigger"] == "api"
    assert body["status"] == "succeeded"
    assert body["counts"]["create"] == 5
    creates = [c for c in body["changes"]["items"] if c["kind"] == "create"]
    assert len(creates) == 5
    assert all(change["status"] == "planned" for change in creates)
    assert "Dashboard Admins" in creates[0]["reason"]
    assert await accounts(database, acme.tenant.org.id) == {}
    async with database.read() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "run_started")
        )
    assert event is not None
    assert event.source is Source.admin
    assert event.actor == "admin:acme admin"
    assert event.run_id == body["id"]


async def test_apply_returns_202_then_finishes(
    app: FastAPI,
    acme_admin: httpx.AsyncClient,
    acme: OrgAdmin,
    database: Database,
    tmp_path: Path,
) -> None:
    await setup_org(database, acme, tmp_path)

    response = await start(acme_admin)
    run_id = response.json()["id"]
    await finished(app, run_id)
    shown = await acme_admin.get(response.headers["location"].removeprefix("/admin/v1"))

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running"
    assert response.json()["mode"] == "apply"
    assert shown.status_code == 200
    assert shown.json()["status"] == "succeeded"
    assert shown.json()["drift"] > 0
    stored = await accounts(database, acme.tenant.org.id)
    assert set(stored) == {user_name(n) for n in range(1, 6)}


async def test_held_changes_are_shown_and_approved(
    app: FastAPI,
    acme_admin: httpx.AsyncClient,
    acme: OrgAdmin,
    database: Database,
    tmp_path: Path,
) -> None:
    """Deactivations above max_deactivations are held until approved."""
    await setup_org(database, acme, tmp_path, max_deactivations=1)
    first = await start(acme_admin, wait_seconds=20)
    assert first.json()["status"] == "succeeded"
    write_directory(tmp_path / "directory.json", [1], [1])

    held_run = await start(acme_admin, wait_seconds=20)
    run_id = held_run.json()["id"]
    held = await acme_admin.get(
        f"/organizations/acme/runs/{run_id}", params={"status": "held"}
    )
    approved = await acme_admin.post(f"/organizations/acme/runs/{run_id}/approve")
    again = await acme_admin.post(f"/organizations/acme/runs/{run_id}/approve")

    assert held_run.json()["status"] == "held"
    held_changes = held.json()["changes"]
    assert held_changes["total"] == held.json()["counts_by_status"]["held"]
    deactivations = [c for c in held_changes["items"] if c["kind"] == "deactivate"]
    assert len(deactivations) == 4
    assert all(change["hold_reason"] for change in held_changes["items"])
    assert all("no mapped group" in change["reason"] for change in deactivations)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "succeeded"
    assert approved.json()["counts_by_status"]["held"] == 0
    stored = await accounts(database, acme.tenant.org.id)
    assert [name for name, account in stored.items() if account.active] == [
        user_name(1)
    ]
    assert_problem(again, 409, "no held changes")
    async with database.read() as session:
        approval = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "run_approved")
        )
        applied_by = set(
            (
                await session.scalars(
                    select(AuditEvent.actor).where(
                        AuditEvent.run_id == run_id,
                        AuditEvent.source == Source.reconcile,
                        AuditEvent.action == "deactivate",
                    )
                )
            ).all()
        )
    assert approval is not None
    assert approval.actor == "admin:acme admin"
    assert approval.source is Source.admin
    assert applied_by == {"admin:acme admin"}


async def test_dry_run_cannot_be_approved(
    acme_admin: httpx.AsyncClient, acme: OrgAdmin, database: Database, tmp_path: Path
) -> None:
    await setup_org(database, acme, tmp_path)
    preview = await start(acme_admin, dry_run=True, wait_seconds=20)

    response = await acme_admin.post(
        f"/organizations/acme/runs/{preview.json()['id']}/approve"
    )

    assert_problem(response, 403, "dry run")


async def test_second_start_names_the_running_run(
    acme_admin: httpx.AsyncClient, acme: OrgAdmin, database: Database, tmp_path: Path
) -> None:
    """The organization's run lock is held, as by a run of another replica."""
    await setup_org(database, acme, tmp_path)
    running = Run(
        id=str(uuid.uuid4()),
        org_id=acme.tenant.org.id,
        trigger=RunTrigger.schedule,
        mode=RunMode.apply,
        status=RunStatus.running,
        scope={},
        started_at=utcnow(),
        finished_at=None,
        counts={},
        drift=0,
        error=None,
        summary={},
        owner="another-replica",
    )
    async with database.write() as session:
        session.add(running)
    lock = run_lock(database, acme.tenant.org.id)
    assert await lock.try_acquire()
    try:
        response = await start(acme_admin, dry_run=True)
        approve = await acme_admin.post(
            f"/organizations/acme/runs/{running.id}/approve"
        )
    finally:
        await lock.release()

    body = assert_problem(response, 409, running.id, "in progress")
    assert body["run_id"] == running.id
    assert body["type"].endswith(":run-in-progress")
    assert_problem(approve, 409, running.id)
    async with database.read() as session:
        runs = (await session.scalars(select(Run))).all()
    assert [run.id for run in runs] == [running.id]


async def test_one_user_and_one_group(
    acme_admin: httpx.AsyncClient, acme: OrgAdmin, database: Database, tmp_path: Path
) -> None:
    await setup_org(database, acme, tmp_path)

    one_user = await start(acme_admin, dry_run=True, user=user_name(3), wait_seconds=20)
    one_group = await start(acme_admin, dry_run=True, group="Analysts", wait_seconds=20)
    nobody = await start(acme_admin, dry_run=True, user="nobody", wait_seconds=20)

    assert one_user.json()["scope"] == {"user": user_name(3), "group": None}
    assert {c["user_name"] for c in one_user.json()["changes"]["items"]} == {
        user_name(3)
    }
    assert {c["user_name"] for c in one_group.json()["changes"]["items"]} == {
        user_name(1)
    }
    assert nobody.json()["status"] == "failed"
    assert "nobody" in nobody.json()["error"]


async def test_start_rejects_bad_requests(
    acme_admin: httpx.AsyncClient, acme: OrgAdmin, database: Database, tmp_path: Path
) -> None:
    no_connector = await start(acme_admin, dry_run=True)
    await setup_org(database, acme, tmp_path)
    both = await start(acme_admin, user="a", group="b")
    long_wait = await start(acme_admin, dry_run=True, wait_seconds=3600)
    not_bool = await start(acme_admin, dry_run="perhaps")
    async with database.write() as session:
        await organizations.change_plan(session, "acme", Plan.free)
    free_plan = await start(acme_admin, dry_run=True)

    assert_problem(no_connector, 409, "has no connector", "PUT")
    assert_problem(both, 422, "user or group, not both")
    assert_problem(long_wait, 422, "body.wait_seconds", "3600")
    assert_problem(not_bool, 422, "body.dry_run", '"perhaps"')
    assert_problem(free_plan, 403, "free plan")
    async with database.read() as session:
        assert (await session.scalars(select(Run))).all() == []


async def test_list_and_page_runs(
    acme_admin: httpx.AsyncClient, acme: OrgAdmin, database: Database, tmp_path: Path
) -> None:
    await setup_org(database, acme, tmp_path)
    started = []
    for _ in range(3):
        response = await start(acme_admin, dry_run=True, wait_seconds=20)
        started.append(response.json()["id"])

    first = await acme_admin.get("/organizations/acme/runs", params={"limit": 2})
    rest = await acme_admin.get(
        "/organizations/acme/runs", params={"offset": first.json()["next_offset"]}
    )

    assert first.json()["total"] == 3
    listed = [run["id"] for run in first.json()["items"] + rest.json()["items"]]
    assert listed == list(reversed(started))
    assert rest.json()["next_offset"] is None


async def test_show_run_filters_and_pages_changes(
    acme_admin: httpx.AsyncClient, acme: OrgAdmin, database: Database, tmp_path: Path
) -> None:
    await setup_org(database, acme, tmp_path)
    run_id = (await start(acme_admin, dry_run=True, wait_seconds=20)).json()["id"]
    path = f"/organizations/acme/runs/{run_id}"

    creates = await acme_admin.get(path, params={"kind": "create", "limit": 2})
    second_page = await acme_admin.get(
        path, params={"kind": "create", "limit": 2, "offset": 2}
    )
    bad_kind = await acme_admin.get(path, params={"kind": "delete"})
    bad_status = await acme_admin.get(path, params={"status": "done"})
    missing = await acme_admin.get("/organizations/acme/runs/no-such-run")

    page = creates.json()["changes"]
    assert page["total"] == 5
    assert [change["kind"] for change in page["items"]] == ["create", "create"]
    assert page["next_offset"] == 2
    assert second_page.json()["changes"]["items"][0]["seq"] > page["items"][1]["seq"]
    assert_problem(bad_kind, 422, "query.kind", '"delete"', "create")
    assert_problem(bad_status, 422, "query.status", '"done"', "held")
    assert_problem(missing, 404, "'no-such-run'")


async def test_run_of_other_org_is_not_found(
    acme_admin: httpx.AsyncClient,
    operator: httpx.AsyncClient,
    acme: OrgAdmin,
    globex: OrgAdmin,
    database: Database,
    tmp_path: Path,
) -> None:
    await setup_org(database, globex, tmp_path)
    other = await start(operator, "globex", dry_run=True, wait_seconds=20)
    run_id = other.json()["id"]

    shown = await acme_admin.get(f"/organizations/acme/runs/{run_id}")
    approve = await acme_admin.post(f"/organizations/acme/runs/{run_id}/approve")

    assert_problem(shown, 404, run_id)
    assert_problem(approve, 404, run_id)


async def test_shutdown_waits_for_requested_run(
    database: Database, api_settings: Settings, acme: OrgAdmin, tmp_path: Path
) -> None:
    """Shutdown waits for a run started over the API to record its outcome.

    Apply stops between batches once the stop is requested, so the run ends
    succeeded or interrupted, never left 'running'.
    """
    await setup_org(database, acme, tmp_path)
    app = create_app(api_settings, database)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://scim.test/admin/v1",
            headers={"Authorization": f"Bearer {acme.secret}"},
        )
        async with client:
            response = await start(client)
        assert response.status_code == 202

    async with database.read() as session:
        run = await session.get(Run, response.json()["id"])
    assert run is not None
    assert run.status in (RunStatus.succeeded, RunStatus.interrupted)
    assert run.finished_at is not None


async def test_start_recovers_interrupted_runs_without_scheduler(
    database: Database, api_settings: Settings, acme: OrgAdmin
) -> None:
    """A run left 'running' by a stopped process is marked at start."""
    assert api_settings.scheduler_enabled is False
    left = Run(
        id=str(uuid.uuid4()),
        org_id=acme.tenant.org.id,
        trigger=RunTrigger.api,
        mode=RunMode.apply,
        status=RunStatus.running,
        scope={},
        started_at=utcnow(),
        finished_at=None,
        counts={},
        drift=0,
        error=None,
        summary={},
        owner="gone",
    )
    async with database.write() as session:
        session.add(left)

    app = create_app(api_settings, database)
    async with app.router.lifespan_context(app):
        assert app.state.reconciler is not None
        async with database.read() as session:
            run = await session.get(Run, left.id)

    assert run is not None
    assert run.status is RunStatus.interrupted
