"""Safety of reconciliation runs against a real store.

Other sync tools shipped these failures: mass deprovisioning after a failed or
empty IdP response, overwritten pushes, removed break-glass accounts and
overlapping runs. None of them may happen here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    ConnectorConfig,
    ManagedBy,
    Run,
    RunStatus,
    RunTrigger,
    User,
)
from scim_reconciler.errors import (
    ConnectorUnavailableError,
    NotAllowedError,
    NotFoundError,
    RunInProgressError,
)
from scim_reconciler.reconcile.apply import apply_changes
from scim_reconciler.reconcile.connectors.base import MemberPage
from scim_reconciler.reconcile.connectors.directory import DirectoryConnector
from scim_reconciler.reconcile.guards import NO_TOKEN_WARNING
from scim_reconciler.reconcile.model import ChangeKind, ChangeStatus, IdpGroup
from scim_reconciler.reconcile.runs import (
    ConnectorFactory,
    Reconciler,
    RunReport,
    RunRequest,
    load_run,
)
from scim_reconciler.services import tokens
from tests.conftest import Tenant
from tests.support.resources import patch_body, user_body
from tests.support.runs import (
    accounts,
    configure,
    footprint,
    idp_user,
    members_of,
    user_name,
    write_directory,
)

# Upper bound of any wait on a run in progress, in seconds.
RUN_WAIT_S = 30.0


class FailingConnector(DirectoryConnector):
    """Returns a group's first page of members, then fails like an IdP's 503."""

    async def members(self, group: IdpGroup) -> AsyncIterator[MemberPage]:
        pages = 0
        async for page in super().members(group):
            if pages:
                raise ConnectorUnavailableError(
                    f"the IdP answered 503 Service Unavailable on page 2 of group "
                    f"{group.id}"
                )
            pages += 1
            yield page


class HookedConnector(DirectoryConnector):
    """Calls ``hook`` once, after the first page of the first group read."""

    def __init__(self, path: Path, hook: Callable[[], Awaitable[None]]) -> None:
        super().__init__(path, page_size=2)
        self.hook = hook
        self.called = False

    async def members(self, group: IdpGroup) -> AsyncIterator[MemberPage]:
        async for page in super().members(group):
            yield page
            if not self.called:
                self.called = True
                await self.hook()


def factory(build: Callable[[Path], DirectoryConnector]) -> ConnectorFactory:
    def make(config: ConnectorConfig) -> DirectoryConnector:
        return build(Path(config.config["path"]))

    return make


async def run_once(
    reconciler: Reconciler, trigger: RunTrigger = RunTrigger.manual
) -> RunReport:
    return await reconciler.run("acme", RunRequest(trigger=trigger))


def kinds_with(report: RunReport, status: ChangeStatus) -> list[tuple[str, str]]:
    return [
        (change.kind.value, change.user_name)
        for change in report.changes
        if change.status is status
    ]


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "directory.json"


@pytest.fixture
def reconciler(database: Database) -> Reconciler:
    return Reconciler(database, None, owner="test")


async def test_connector_failure_applies_nothing(
    database: Database, tenant: Tenant, directory: Path, reconciler: Reconciler
) -> None:
    """A 503 on page 2 fails the run before planning, and deactivates no one.

    Other tools deprovisioned everyone the listing missed when an IdP failed
    mid-listing, or stopped after the first page.
    """
    write_directory(directory, admins=range(1, 7), analysts=[5, 6])
    await configure(database, tenant.org, directory)
    assert (await run_once(reconciler)).run.status is RunStatus.succeeded
    before = await footprint(database, tenant.org.id)

    failing = Reconciler(
        database,
        None,
        connector_factory=factory(lambda path: FailingConnector(path, page_size=2)),
    )
    report = await run_once(failing)

    assert report.run.status is RunStatus.failed
    assert report.run.error is not None
    assert "503" in report.run.error
    assert report.changes == ()
    assert report.run.drift == 0
    assert await footprint(database, tenant.org.id) == before
    stored = await accounts(database, tenant.org.id)
    assert all(account.active for account in stored.values())
    recorded = await load_run(database, report.run.id)
    assert recorded.run.status is RunStatus.failed
    assert recorded.changes == ()


async def test_unexpected_error_recorded_as_failed(
    database: Database, tenant: Tenant, directory: Path
) -> None:
    """A bug or lost database connection mid-run leaves no run shown as running."""
    write_directory(directory, admins=[1, 2])
    await configure(database, tenant.org, directory)

    async def crash() -> None:
        raise RuntimeError("connection reset")

    hooked = factory(lambda path: HookedConnector(path, crash))
    with pytest.raises(RuntimeError, match="connection reset"):
        await run_once(Reconciler(database, None, connector_factory=hooked))

    async with database.read() as session:
        runs = (await session.scalars(select(Run))).all()
    assert [run.status for run in runs] == [RunStatus.failed]
    assert "RuntimeError" in (runs[0].error or "")
    assert runs[0].finished_at is not None
    assert await accounts(database, tenant.org.id) == {}


async def test_empty_mapped_group_holds_removals(
    database: Database, tenant: Tenant, directory: Path, reconciler: Reconciler
) -> None:
    """A mapped group that comes back empty while it had members is suspect."""
    write_directory(directory, admins=[1, 2, 3], analysts=[3, 4])
    await configure(database, tenant.org, directory)
    assert (await run_once(reconciler)).run.status is RunStatus.succeeded

    # The admins' group comes back empty; user 5 joins the analysts.
    users = [idp_user(number) for number in range(1, 6)]
    write_directory(directory, admins=[], analysts=[3, 4, 5], users=users)
    report = await run_once(reconciler)

    assert report.run.status is RunStatus.held
    held = kinds_with(report, ChangeStatus.held)
    assert ("deactivate", user_name(1)) in held
    assert ("deactivate", user_name(2)) in held
    assert ("membership_change", user_name(3)) in held
    assert all(
        "came back empty" in (change.hold_reason or "")
        for change in report.changes
        if change.status is ChangeStatus.held
    )
    assert kinds_with(report, ChangeStatus.applied) == [
        ("create", user_name(5)),
        ("membership_change", user_name(5)),
        ("role_change", user_name(5)),
    ]
    assert any("came back empty" in warning for warning in report.warnings)
    stored = await accounts(database, tenant.org.id)
    assert stored[user_name(1)].active
    assert stored[user_name(2)].active
    assert user_name(5) in stored
    admins = await members_of(database, tenant.org.id, "Dashboard Admins")
    assert admins == {user_name(1), user_name(2), user_name(3)}


async def test_deactivations_above_limit_held_until_approved(
    database: Database, tenant: Tenant, directory: Path, reconciler: Reconciler
) -> None:
    """Deactivations above the limit wait for approval while the rest applies."""
    write_directory(directory, admins=range(1, 11))
    await configure(database, tenant.org, directory, max_deactivations=2)
    assert (await run_once(reconciler)).run.status is RunStatus.succeeded

    # Users 1 to 4 leave every mapped group; user 11 joins.
    users = [idp_user(number) for number in range(1, 12)]
    write_directory(directory, admins=range(5, 12), users=users)
    report = await run_once(reconciler)

    assert report.run.status is RunStatus.held
    deactivations = [
        change for change in report.changes if change.kind is ChangeKind.deactivate
    ]
    assert len(deactivations) == 4
    assert all(change.status is ChangeStatus.held for change in deactivations)
    assert all("limit of 2" in (change.hold_reason or "") for change in deactivations)
    assert kinds_with(report, ChangeStatus.applied) == [
        ("create", user_name(11)),
        ("membership_change", user_name(11)),
        ("role_change", user_name(11)),
    ]
    stored = await accounts(database, tenant.org.id)
    assert all(stored[user_name(number)].active for number in range(1, 5))

    approved = await reconciler.approve(report.run.id)

    assert approved.run.status is RunStatus.succeeded
    assert kinds_with(approved, ChangeStatus.held) == []
    assert kinds_with(approved, ChangeStatus.deferred) == []
    stored = await accounts(database, tenant.org.id)
    assert not any(stored[user_name(number)].active for number in range(1, 5))
    admins = await members_of(database, tenant.org.id, "Dashboard Admins")
    assert admins == {user_name(number) for number in range(5, 12)}
    recorded = await load_run(database, report.run.id)
    assert recorded.run.status is RunStatus.succeeded
    assert (await run_once(reconciler)).changes == ()


async def test_approve_rejects_dry_run_and_no_token(
    database: Database, tenant: Tenant, directory: Path, reconciler: Reconciler
) -> None:
    """Held changes of a dry run, or of an organization without a token, stay held."""
    write_directory(directory, admins=range(1, 6))
    await configure(database, tenant.org, directory, max_deactivations=1)
    assert (await run_once(reconciler)).run.status is RunStatus.succeeded
    write_directory(directory, admins=[5], users=[idp_user(5)])
    before = await footprint(database, tenant.org.id)

    preview = await reconciler.run("acme", RunRequest(dry_run=True))
    assert kinds_with(preview, ChangeStatus.held)
    with pytest.raises(NotAllowedError, match="dry run"):
        await reconciler.approve(preview.run.id)

    held = await run_once(reconciler)
    assert held.run.status is RunStatus.held
    async with database.write() as session:
        await tokens.revoke_token(session, tenant.org, tenant.token_id)
    with pytest.raises(NotAllowedError, match="no valid SCIM token"):
        await reconciler.approve(held.run.id)
    assert await footprint(database, tenant.org.id) == before

    async with database.write() as session:
        await tokens.create_token(session, tenant.org, name="New", expires_in_days=1)
    approved = await reconciler.approve(held.run.id)
    assert approved.run.status is RunStatus.succeeded
    with pytest.raises(NotFoundError, match="no held changes"):
        await reconciler.approve(held.run.id)


async def test_no_valid_token_pauses_until_new_token(
    database: Database, tenant: Tenant, directory: Path, reconciler: Reconciler
) -> None:
    """Without a valid SCIM token a run only plans; a new token resumes applying."""
    write_directory(directory, admins=[1, 2, 3])
    await configure(database, tenant.org, directory)
    assert (await run_once(reconciler)).run.status is RunStatus.succeeded
    async with database.write() as session:
        await tokens.revoke_token(session, tenant.org, tenant.token_id)
    users = [idp_user(number) for number in range(1, 5)]
    write_directory(directory, admins=[2, 3, 4], users=users)
    before = await footprint(database, tenant.org.id)

    paused = await run_once(reconciler, RunTrigger.schedule)

    assert paused.run.status is RunStatus.paused
    assert NO_TOKEN_WARNING in paused.warnings
    planned = kinds_with(paused, ChangeStatus.planned)
    assert ("deactivate", user_name(1)) in planned
    assert ("create", user_name(4)) in planned
    assert kinds_with(paused, ChangeStatus.applied) == []
    assert paused.run.drift == 0
    assert await footprint(database, tenant.org.id) == before
    assert (await accounts(database, tenant.org.id))[user_name(1)].active

    async with database.write() as session:
        await tokens.create_token(session, tenant.org, name="New", expires_in_days=1)
    resumed = await run_once(reconciler, RunTrigger.schedule)

    assert resumed.run.status is RunStatus.succeeded
    stored = await accounts(database, tenant.org.id)
    assert not stored[user_name(1)].active
    assert stored[user_name(4)].active


async def test_push_during_run_wins(
    database: Database,
    tenant: Tenant,
    directory: Path,
    client: httpx.AsyncClient,
) -> None:
    """A SCIM push that lands while the run reads the IdP is not overwritten.

    The run read the stored state before the snapshot, so its change of the
    pushed user no longer matches the user's version and is deferred.
    """
    write_directory(directory, admins=[1, 2, 3, 4])
    await configure(database, tenant.org, directory)
    assert (await run_once(Reconciler(database, None))).run.status is (
        RunStatus.succeeded
    )
    users = [
        idp_user(1, givenName="Idp"),
        idp_user(2, givenName="Idp"),
        idp_user(3),
        idp_user(4),
    ]
    write_directory(directory, admins=[1, 2, 3, 4], users=users)
    pushed_id = (await accounts(database, tenant.org.id))[user_name(1)].id

    async def push() -> None:
        operation = {"op": "replace", "path": "name.givenName", "value": "Pushed"}
        response = await client.patch(f"/Users/{pushed_id}", json=patch_body(operation))
        assert response.status_code == 200, response.text

    hooked = factory(lambda path: HookedConnector(path, push))
    report = await run_once(Reconciler(database, None, connector_factory=hooked))

    assert kinds_with(report, ChangeStatus.deferred) == [
        ("profile_update", user_name(1))
    ]
    assert kinds_with(report, ChangeStatus.applied) == [
        ("profile_update", user_name(2))
    ]
    assert report.run.counts["by_status"]["deferred"] == 1
    stored = await accounts(database, tenant.org.id)
    assert stored[user_name(1)].given_name == "Pushed"
    assert stored[user_name(2)].given_name == "Idp"


async def test_push_taking_user_name_defers_rename(
    database: Database,
    tenant: Tenant,
    directory: Path,
    client: httpx.AsyncClient,
) -> None:
    """A push that takes the userName a rename needs defers only that rename.

    The clash surfaces only when the batch writes, after it read the store. So
    the batch is split until the one clashing change is left, and the rest apply.
    """
    write_directory(directory, admins=[1, 2, 3, 4])
    await configure(database, tenant.org, directory)
    assert (await run_once(Reconciler(database, None))).run.status is (
        RunStatus.succeeded
    )
    users = [
        idp_user(1, userName="renamed@example.com"),
        idp_user(2, familyName="Second"),
        idp_user(3, familyName="Third"),
        idp_user(4),
    ]
    write_directory(directory, admins=[1, 2, 3, 4], users=users)

    async def push() -> None:
        created = await client.post(
            "/Users",
            json=user_body("Renamed@example.com", externalId="pushed-1"),
        )
        assert created.status_code == 201, created.text

    hooked = factory(lambda path: HookedConnector(path, push))
    report = await run_once(Reconciler(database, None, connector_factory=hooked))

    assert report.run.status is RunStatus.succeeded
    assert kinds_with(report, ChangeStatus.deferred) == [
        ("profile_update", user_name(1))
    ]
    assert kinds_with(report, ChangeStatus.applied) == [
        ("profile_update", user_name(2)),
        ("profile_update", user_name(3)),
    ]
    stored = await accounts(database, tenant.org.id)
    assert user_name(1) in stored
    assert stored["Renamed@example.com"].id != stored[user_name(1)].id
    assert stored[user_name(2)].family_name == "Second"
    assert stored[user_name(3)].family_name == "Third"
    # The deferred change is recorded on its own, after its batch rolled back.
    recorded = await load_run(database, report.run.id)
    assert kinds_with(recorded, ChangeStatus.deferred) == [
        ("profile_update", user_name(1))
    ]
    assert kinds_with(recorded, ChangeStatus.applied) == [
        ("profile_update", user_name(2)),
        ("profile_update", user_name(3)),
    ]


async def test_person_managed_user_untouched(
    database: Database, tenant: Tenant, directory: Path, reconciler: Reconciler
) -> None:
    """Users created by hand (break-glass admins) are skipped, never changed."""
    write_directory(directory, admins=[1, 2])
    await configure(database, tenant.org, directory)
    now = datetime.now(UTC)
    async with database.write() as session:
        for number, name in ((8, user_name(2)), (9, "breakglass@example.com")):
            session.add(
                User(
                    id=f"person-{number}",
                    org_id=tenant.org.id,
                    user_name=name,
                    user_name_key=name,
                    external_id=None,
                    display_name=None,
                    display_name_key=None,
                    given_name="By",
                    family_name="Hand",
                    email=name,
                    active=True,
                    deleted=False,
                    managed_by=ManagedBy.person,
                    attributes={"userName": name},
                    version=4,
                    created_at=now,
                    last_modified=now,
                )
            )

    report = await run_once(reconciler)

    assert report.run.status is RunStatus.succeeded
    assert [name for name, _reason in report.skipped] == [user_name(2)]
    assert "created by hand" in report.skipped[0][1]
    assert {change.user_name for change in report.changes} == {user_name(1)}
    stored = await accounts(database, tenant.org.id)
    for name in (user_name(2), "breakglass@example.com"):
        assert stored[name].active
        assert stored[name].version == 4
        assert stored[name].given_name == "By"
    admins = await members_of(database, tenant.org.id, "Dashboard Admins")
    assert admins == {user_name(1)}
    recorded = await load_run(database, report.run.id)
    assert recorded.skipped == report.skipped


async def test_second_run_while_locked_rejected(
    database: Database, tenant: Tenant, directory: Path
) -> None:
    """Runs of one organization are exclusive: a second one raises at once."""
    write_directory(directory, admins=[1, 2, 3])
    await configure(database, tenant.org, directory)
    reading = asyncio.Event()
    release = asyncio.Event()

    async def wait_for_release() -> None:
        reading.set()
        await release.wait()

    hooked = factory(lambda path: HookedConnector(path, wait_for_release))
    first = asyncio.create_task(
        run_once(Reconciler(database, None, connector_factory=hooked))
    )
    try:
        await asyncio.wait_for(reading.wait(), RUN_WAIT_S)
        second = Reconciler(database, None, owner="second")
        with pytest.raises(RunInProgressError, match="already in progress"):
            await run_once(second)
        with pytest.raises(RunInProgressError):
            await second.run("acme", RunRequest(dry_run=True))
    finally:
        release.set()
        report = await asyncio.wait_for(first, RUN_WAIT_S)

    assert report.run.status is RunStatus.succeeded
    assert len(await accounts(database, tenant.org.id)) == 3
    again = await run_once(Reconciler(database, None))
    assert again.run.status is RunStatus.succeeded


async def test_reapplied_plan_writes_nothing(
    database: Database, tenant: Tenant, directory: Path, reconciler: Reconciler
) -> None:
    """Applying a plan a second time changes nothing: every change is deferred.

    Re-runs of other tools failed on 409s or created duplicates for users
    that a first, interrupted attempt had already created.
    """
    users = [idp_user(number) for number in range(1, 8)]
    write_directory(directory, admins=[1, 2, 3, 4], analysts=[4, 5, 6], users=users)
    await configure(database, tenant.org, directory)
    first = await run_once(reconciler)
    assert first.run.status is RunStatus.succeeded
    # User 7 joins, 6 leaves, 3 and 4 move and 1 is renamed: every kind appears.
    users[0] = idp_user(1, familyName="Renamed")
    write_directory(directory, admins=[1, 2, 4, 7], analysts=[3, 5], users=users)
    second = await run_once(reconciler)
    assert second.run.status is RunStatus.succeeded
    before = await footprint(database, tenant.org.id)

    for report in (first, second):
        again = [
            replace(change, status=ChangeStatus.planned) for change in report.changes
        ]
        results = await apply_changes(database, tenant.org.id, report.run.id, again)
        assert {change.status for change in results} == {ChangeStatus.deferred}

    assert await footprint(database, tenant.org.id) == before
    assert (await run_once(reconciler)).changes == ()
