"""Failure modes other sync tools shipped, run through file, snapshot, plan, guards.

Each test reads a directory file with the directory connector, takes the
snapshot, plans and guards, and checks that the known failure cannot happen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scim_reconciler.errors import ConnectorUnavailableError
from scim_reconciler.reconcile.connectors.base import MemberPage
from scim_reconciler.reconcile.connectors.directory import DirectoryConnector
from scim_reconciler.reconcile.guards import apply_guards
from scim_reconciler.reconcile.model import (
    ChangeKind,
    ChangeStatus,
    IdpGroup,
    Plan,
    Policy,
    Snapshot,
    StoredState,
)
from scim_reconciler.reconcile.plan import make_plan
from scim_reconciler.reconcile.snapshot import take_snapshot
from tests.reconcile.conftest import WriteDirectory
from tests.reconcile.factories import (
    TAKEN_AT,
    in_sync,
    kinds,
    mapping,
    only,
    person_user,
    with_groups,
    with_users,
)

MAPPINGS = (mapping(1, "Dashboard Admins"), mapping(2, "Analysts", "analytics_admin"))
REFERENCES = ["Dashboard Admins", "Analysts"]


def people(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"00u{number}",
            "userName": f"user{number}@example.com",
            "email": f"user{number}@example.com",
            "givenName": "Given",
            "familyName": f"Family{number}",
            "displayName": f"Given Family{number}",
        }
        for number in range(1, count + 1)
    ]


def directory(
    users: list[dict[str, Any]], admins: list[str], analysts: list[str]
) -> dict[str, Any]:
    return {
        "users": users,
        "groups": [
            {"id": "00g1", "name": "Dashboard Admins", "members": admins},
            {"id": "00g2", "name": "Analysts", "members": analysts},
        ],
    }


async def read(path: Path, page_size: int = 500) -> Snapshot:
    connector = DirectoryConnector(path, page_size=page_size)
    async with asyncio.timeout(10):
        return await take_snapshot(connector, REFERENCES, clock=lambda: TAKEN_AT)


def reconcile(taken: Snapshot, stored: StoredState, policy: Policy) -> Plan:
    plan = make_plan(taken, stored)
    return apply_guards(plan, taken, stored, policy, can_apply=True)


async def baseline(write_directory: WriteDirectory) -> tuple[Path, StoredState]:
    """Write 40 users (10 admins, 30 analysts) and the store in sync with them."""
    users = people(40)
    path = write_directory(
        directory(
            users,
            [user["id"] for user in users[:10]],
            [user["id"] for user in users[10:]],
        )
    )
    return path, in_sync(await read(path), MAPPINGS)


async def test_empty_groups_deprovision_nobody(
    write_directory: WriteDirectory,
) -> None:
    """The IdP returned empty groups: nothing is deactivated without approval."""
    path, stored = await baseline(write_directory)
    write_directory(directory(people(40), [], []))

    plan = reconcile(await read(path), stored, Policy())

    assert len(plan.changes) == 120
    assert {change.status for change in plan.changes} == {ChangeStatus.held}
    assert all("came back empty" in str(c.hold_reason) for c in plan.changes)


async def test_failed_page_plans_nothing(write_directory: WriteDirectory) -> None:
    """A 5xx or timeout mid-listing fails the snapshot before any plan exists."""
    path, _stored = await baseline(write_directory)

    class FailingDirectory(DirectoryConnector):
        async def members(self, group: IdpGroup) -> AsyncIterator[MemberPage]:
            async for page in super().members(group):
                yield page
                raise ConnectorUnavailableError("HTTP 503 from the IdP after retries")

    connector = FailingDirectory(path, page_size=5)
    with pytest.raises(ConnectorUnavailableError):
        async with asyncio.timeout(10):
            await take_snapshot(connector, REFERENCES, clock=lambda: TAKEN_AT)


async def test_paged_listing_finds_every_user(
    write_directory: WriteDirectory,
) -> None:
    """With one user per page, no user looks missing or is created again."""
    path, stored = await baseline(write_directory)

    plan = reconcile(await read(path, page_size=1), stored, Policy())

    assert plan.changes == ()


async def test_break_glass_admins_stay(write_directory: WriteDirectory) -> None:
    """Accounts created by hand, absent from the IdP, keep access and groups."""
    path, stored = await baseline(write_directory)
    glass = person_user("p-1", "breakglass@example.com")
    stored = with_users(stored, glass)
    admins = next(group for group in stored.groups if group.id == "g-00g1")
    stored = with_groups(
        stored, replace(admins, member_ids=admins.member_ids | {"p-1"})
    )

    plan = reconcile(await read(path), stored, Policy())

    assert plan.changes == ()


async def test_email_change_keeps_one_account(
    write_directory: WriteDirectory,
) -> None:
    path, stored = await baseline(write_directory)
    users = people(40)
    users[0] = {**users[0], "userName": "ada@example.org", "email": "ada@example.org"}
    write_directory(
        directory(users, [u["id"] for u in users[:10]], [u["id"] for u in users[10:]])
    )

    plan = reconcile(await read(path), stored, Policy())

    assert kinds(plan) == [(ChangeKind.profile_update, "user1@example.com")]
    assert plan.changes[0].user_id == "u-00u1"


async def test_returning_user_keeps_id(write_directory: WriteDirectory) -> None:
    """A user deactivated in the IdP and later reactivated keeps its account."""
    path, stored = await baseline(write_directory)
    users = people(40)
    admins = [u["id"] for u in users[:10]]
    analysts = [u["id"] for u in users[10:]]
    users[0] = {**users[0], "active": False, "status": "SUSPENDED"}
    write_directory(directory(users, admins, analysts))

    first = reconcile(await read(path), stored, Policy())
    deactivated = only(first, ChangeKind.deactivate)
    account = next(user for user in stored.users if user.id == deactivated.user_id)
    after_first = with_users(stored, replace(account, active=False))
    users[0] = {**users[0], "active": True, "status": "ACTIVE"}
    write_directory(directory(users, admins, analysts))
    second = reconcile(await read(path), after_first, Policy())

    assert kinds(second) == [(ChangeKind.reactivate, "user1@example.com")]
    assert second.changes[0].user_id == deactivated.user_id == "u-00u1"
    assert ChangeKind.create not in {change.kind for change in second.changes}


async def test_nested_group_never_a_user(write_directory: WriteDirectory) -> None:
    """A nested group's members count, and the group itself is never a user."""
    users = people(4)
    document = directory(users, ["00u1", "00g3"], [])
    document["groups"].append({"id": "00g3", "name": "Nested", "members": ["00u2"]})
    path = write_directory(document)

    flattened = await read(path)
    plan = make_plan(flattened, StoredState((), (), MAPPINGS))

    created = {c.external_id for c in plan.changes if c.kind is ChangeKind.create}
    assert created == {"00u1", "00u2"}
    assert flattened.skipped_members == 0


async def test_unflattened_nesting_is_reported(
    write_directory: WriteDirectory,
) -> None:
    users = people(4)
    document = directory(users, ["00u1", "00g3"], [])
    document["groups"].append({"id": "00g3", "name": "Nested", "members": ["00u2"]})
    path = write_directory(document)
    connector = DirectoryConnector(path, flatten_nested=False)
    async with asyncio.timeout(10):
        taken = await take_snapshot(connector, REFERENCES, clock=lambda: TAKEN_AT)

    plan = make_plan(taken, StoredState((), (), MAPPINGS))

    created = {c.external_id for c in plan.changes if c.kind is ChangeKind.create}
    assert created == {"00u1"}
    assert "00g3" not in taken.users
    assert taken.skipped_member_types == {"group": 1}
    assert "does not flatten nested groups" in plan.warnings[0]
