"""make_plan and apply_guards on 100,000 users in 1,000 groups (correctness only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest

from scim_reconciler.reconcile.guards import apply_guards
from scim_reconciler.reconcile.model import (
    ChangeKind,
    ChangeStatus,
    GroupSnapshot,
    IdpGroup,
    IdpUser,
    MappingRule,
    Policy,
    Snapshot,
    StoredGroup,
    StoredState,
    StoredUser,
)
from scim_reconciler.reconcile.plan import make_plan
from scim_reconciler.services.roles import Grant
from tests.reconcile.factories import TAKEN_AT

USERS = 100_000
GROUPS = 1_000


@dataclass(frozen=True)
class World:
    users: list[IdpUser]
    groups: list[IdpGroup]
    mappings: tuple[MappingRule, ...]

    def member_ids(self, group_number: int) -> frozenset[str]:
        """Return the members of group n: every user whose number is n mod 1000."""
        return frozenset(
            self.users[number].id for number in range(group_number, USERS, GROUPS)
        )


@pytest.fixture(scope="module")
def world() -> World:
    users = [
        IdpUser(
            id=f"00u{number}",
            user_name=f"user{number}@example.com",
            email=f"user{number}@example.com",
            given_name="Given",
            family_name=f"Family{number}",
        )
        for number in range(USERS)
    ]
    groups = [IdpGroup(f"00g{number}", f"Group {number}") for number in range(GROUPS)]
    mappings = tuple(
        MappingRule(number + 1, group.name, "analytics_admin", Grant.full)
        for number, group in enumerate(groups)
    )
    return World(users, groups, mappings)


def take(
    world: World, users: list[IdpUser], newcomers: Sequence[IdpUser] = ()
) -> Snapshot:
    """Return the snapshot of the world's groups listing only ``users``.

    ``newcomers`` are users outside the world, listed in group 0.
    """
    listed = {user.id for user in users}
    groups = [
        GroupSnapshot(group.name, group, world.member_ids(number) & listed)
        for number, group in enumerate(world.groups)
    ]
    groups[0] = replace(
        groups[0], member_ids=groups[0].member_ids | {user.id for user in newcomers}
    )
    return Snapshot(
        taken_at=TAKEN_AT,
        groups=tuple(groups),
        users={user.id: user for user in [*users, *newcomers]},
        nested_groups_flattened=True,
    )


@pytest.fixture(scope="module")
def stored(world: World) -> StoredState:
    """Return the store in sync with the whole world."""
    users = tuple(
        StoredUser(
            id=f"u-{user.id}",
            user_name=user.user_name,
            external_id=user.id,
            email=user.email,
            given_name=user.given_name,
            family_name=user.family_name,
            display_name=None,
            active=True,
            deleted=False,
            managed_by_idp=True,
            version=1,
        )
        for user in world.users
    )
    groups = tuple(
        StoredGroup(
            id=f"g-{group.id}",
            display_name=group.name,
            external_id=group.id,
            member_ids=frozenset(f"u-{user_id}" for user_id in world.member_ids(n)),
            version=1,
        )
        for n, group in enumerate(world.groups)
    )
    return StoredState(users, groups, world.mappings)


def test_scale_in_sync_plans_nothing(world: World, stored: StoredState) -> None:
    taken = take(world, world.users)

    plan = make_plan(taken, stored)
    guarded = apply_guards(plan, taken, stored, Policy(), can_apply=True)

    assert plan.changes == ()
    assert plan.warnings == ()
    assert guarded.changes == ()


def test_scale_finds_each_drift(world: World, stored: StoredState) -> None:
    """Ten of each kind of drift among 100k users are planned, and only they."""
    users = list(world.users)
    left = users[100:110]
    renamed = users[200:210]
    for number in range(200, 210):
        users[number] = replace(users[number], user_name=f"new{number}@example.com")
    del users[100:110]
    newcomers = [
        IdpUser(id=f"00n{number}", user_name=f"newcomer{number}@example.com")
        for number in range(10)
    ]
    taken = take(world, users, newcomers)

    plan = apply_guards(
        make_plan(taken, stored), taken, stored, Policy(), can_apply=True
    )

    counts = plan.count_by_kind()
    assert counts[ChangeKind.deactivate] == 10
    assert counts[ChangeKind.profile_update] == 10
    assert counts[ChangeKind.create] == 10
    assert counts[ChangeKind.membership_change] == 20
    assert counts[ChangeKind.role_change] == 20
    assert counts[ChangeKind.reactivate] == 0
    deactivated = {c.user_id for c in plan.changes if c.kind is ChangeKind.deactivate}
    assert deactivated == {f"u-{user.id}" for user in left}
    updated = {c.user_id for c in plan.changes if c.kind is ChangeKind.profile_update}
    assert updated == {f"u-{user.id}" for user in renamed}
    assert {change.status for change in plan.changes} == {ChangeStatus.planned}
