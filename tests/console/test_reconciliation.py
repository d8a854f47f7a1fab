"""The reconciliation pages over plain HTTP, with runs of a real reconciler."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AuditEvent, Run, RunMode, RunStatus
from scim_reconciler.settings import Settings
from tests.conftest import PUBLIC_BASE_URL
from tests.console.forms import ConsoleClient
from tests.support.console_demo import (
    LEAVER_USER_NAME,
    DemoSeed,
    remove_member,
    seed_demo,
)

ORG = "/console/orgs/northwind"
RUN_PAGE = re.compile(r"^/console/orgs/northwind/runs/([0-9a-f-]{36})$")


@dataclass(frozen=True)
class Served:
    http: ConsoleClient
    seed: DemoSeed
    database: Database


@pytest.fixture
async def served(
    database: Database, database_url: str, tmp_path: Path
) -> AsyncIterator[Served]:
    seed = await seed_demo(database_url, tmp_path)
    settings = Settings(
        database_url=database_url,
        public_base_url=PUBLIC_BASE_URL,
        operator_key_hashes=[seed.operator_key_hash],
        scheduler_enabled=False,
    )
    app = create_app(settings, database)
    # The lifespan makes the reconciler that Preview and Reconcile now use.
    async with (
        app.router.lifespan_context(app),
        ConsoleClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC_BASE_URL
        ) as http,
    ):
        await http.sign_in(seed.operator_key)
        yield Served(http, seed, database)


def run_id_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    found = RUN_PAGE.match(response.headers["location"])
    assert found is not None, response.headers["location"]
    return found.group(1)


async def test_preview_records_dry_run_with_reasons(served: Served) -> None:
    remove_member(served.seed.directory)
    response = await served.http.submit(
        f"{ORG}/reconciliation", f"{ORG}/reconciliation/preview"
    )
    run_id = run_id_of(response)
    page = await served.http.get(response.headers["location"])
    assert page.status_code == 200
    assert "Preview (dry run)" in page.text
    assert "no mapped group of the IdP lists this user" in page.text
    assert LEAVER_USER_NAME in page.text
    async with served.database.read() as session:
        run = await session.get(Run, run_id)
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "run_requested")
        )
    assert run is not None
    assert run.mode is RunMode.dry_run
    assert event is not None
    assert event.resource_id == run_id
    assert event.actor is not None
    assert event.actor.startswith("operator:")


async def test_reconcile_then_approve_held(served: Served) -> None:
    remove_member(served.seed.directory)
    started = await served.http.submit(
        f"{ORG}/reconciliation", f"{ORG}/reconciliation/run"
    )
    run_id = run_id_of(started)
    overview = await served.http.get(f"{ORG}/reconciliation")
    assert "Held changes" in overview.text
    assert f"{ORG}/runs/{run_id}/approve" in overview.text
    assert "Approve 3 held changes" in overview.text
    # The seed's first run and this one.
    assert '<p class="count">2 runs</p>' in overview.text

    approved = await served.http.submit(
        f"{ORG}/runs/{run_id}", f"{ORG}/runs/{run_id}/approve"
    )
    assert approved.status_code == 303
    assert approved.headers["location"] == f"{ORG}/runs/{run_id}?notice=approved"
    async with served.database.read() as session:
        run = await session.get(Run, run_id)
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "run_approved")
        )
    assert run is not None
    assert run.status is RunStatus.succeeded
    assert event is not None
    assert event.resource_id == run_id

    again = await served.http.submit(
        f"{ORG}/runs/{run_id}", f"{ORG}/runs/{run_id}/approve"
    )
    assert again.status_code == 409
    assert "no held changes to approve" in again.text


async def test_check_records_connector_problems(served: Served) -> None:
    served.seed.directory.unlink()
    response = await served.http.submit(
        f"{ORG}/reconciliation", f"{ORG}/reconciliation/check"
    )
    assert response.status_code == 303
    page = await served.http.get(f"{ORG}/reconciliation")
    # The file itself, then each of the three mapped groups.
    assert '<strong class="bad">4 problems</strong>' in page.text
    assert served.seed.directory.name in page.text


async def test_run_page_of_other_org_is_404(served: Served) -> None:
    response = await served.http.get(
        "/console/orgs/contoso/runs/00000000-0000-0000-0000-000000000000"
    )
    assert response.status_code == 404


async def test_users_page_searches_and_pages(served: Served) -> None:
    listing = await served.http.get(f"{ORG}/users")
    assert listing.status_code == 200
    assert "ada.lovelace@example.com" in listing.text
    searched = await served.http.get(f"{ORG}/users?q=HOPPER")
    assert "grace.hopper@example.com" in searched.text
    assert "ada.lovelace@example.com" not in searched.text
    beyond = await served.http.get(f"{ORG}/users?page=9")
    assert beyond.status_code == 200
    assert "ada.lovelace@example.com" not in beyond.text


async def test_user_page_lists_groups_and_history(served: Served) -> None:
    searched = await served.http.get(f"{ORG}/users?q=grace")
    found = re.search(
        r'href="(/console/orgs/northwind/users/[0-9a-f-]{36})"', searched.text
    )
    assert found is not None
    page = await served.http.get(found.group(1))
    assert page.status_code == 200
    assert "Dashboard Admins" in page.text
    assert "Global Administrator (full), mapping 1" in page.text
    assert "Reconciliation" in page.text
    # Each event of a run links to it with the run's start time as its text.
    run_link = re.compile(
        r'<a href="/console/orgs/northwind/runs/[0-9a-f-]{36}">'
        r'run of <span class="nowrap">\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC</span></a>'
    )
    assert run_link.search(page.text)
    assert ">run</a>" not in page.text
    missing = await served.http.get(f"{ORG}/users/not-a-user")
    assert missing.status_code == 404
