"""Builders of snapshots and stored states for the reconciliation tests.

``in_sync`` builds the stored state that a finished run leaves behind, so a
test can start from "nothing to do" and change exactly the one thing it checks.
Stored ids are the IdP ids with a prefix: ``u-00u1`` for user 00u1 and
``g-00g1`` for group 00g1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from scim_reconciler.reconcile.model import (
    Change,
    ChangeKind,
    GroupSnapshot,
    IdpGroup,
    IdpUser,
    MappingRule,
    Plan,
    Snapshot,
    StoredGroup,
    StoredState,
    StoredUser,
)
from scim_reconciler.services.roles import Grant
from scim_reconciler.text import comparison_key

TAKEN_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

ROLE_NAMES = {
    "global_admin": "Global Administrator",
    "analytics_admin": "Analytics Admin",
    "course_management_admin": "Course Management Admin",
}

ADMINS = IdpGroup("00g1", "Dashboard Admins")
ANALYSTS = IdpGroup("00g2", "Analysts")
AUTHORS = IdpGroup("00g3", "Course Authors")


def idp_user(
    number: int,
    user_name: str | None = None,
    *,
    active: bool = True,
    status: str | None = None,
) -> IdpUser:
    """Return IdP user ``00u<number>`` with a full profile."""
    name = user_name or f"user{number}@example.com"
    return IdpUser(
        id=f"00u{number}",
        user_name=name,
        email=name,
        given_name="Given",
        family_name=f"Family{number}",
        display_name=f"Given Family{number}",
        active=active,
        status=status,
    )


def mapping(
    mapping_id: int,
    group: str,
    role: str = "global_admin",
    *,
    limited_to: Sequence[str] | None = None,
) -> MappingRule:
    if limited_to is None:
        return MappingRule(mapping_id, group, role, Grant.full)
    return MappingRule(mapping_id, group, role, Grant.limited, frozenset(limited_to))


def snapshot(
    members: dict[IdpGroup, Sequence[IdpUser]],
    *,
    references: dict[IdpGroup, str] | None = None,
    skipped_member_types: dict[str, int] | None = None,
    flattened: bool = True,
) -> Snapshot:
    """Return a snapshot of the groups, each referenced by its name by default."""
    references = references or {}
    users = {user.id: user for listed in members.values() for user in listed}
    groups = tuple(
        GroupSnapshot(
            references.get(group, group.name),
            group,
            frozenset(user.id for user in listed),
        )
        for group, listed in members.items()
    )
    skipped = skipped_member_types or {}
    return Snapshot(
        taken_at=TAKEN_AT,
        groups=groups,
        users=users,
        nested_groups_flattened=flattened,
        skipped_members=sum(skipped.values()),
        skipped_member_types=skipped,
    )


def stored_user(user: IdpUser, **changes: object) -> StoredUser:
    """Return the stored account of an IdP user as a past run left it."""
    account = StoredUser(
        id=f"u-{user.id}",
        user_name=user.user_name,
        external_id=user.id,
        email=comparison_key(user.email) if user.email else None,
        given_name=user.given_name,
        family_name=user.family_name,
        display_name=user.display_name,
        active=user.active,
        deleted=False,
        managed_by_idp=True,
        version=3,
    )
    return replace(account, **changes)  # type: ignore[arg-type]


def person_user(user_id: str, user_name: str) -> StoredUser:
    """Return an account created by hand in the dashboard."""
    return StoredUser(
        id=user_id,
        user_name=user_name,
        external_id=None,
        email=user_name,
        given_name=None,
        family_name=None,
        display_name=None,
        active=True,
        deleted=False,
        managed_by_idp=False,
        version=1,
    )


def stored_group(
    group: IdpGroup, members: Iterable[str] = (), **changes: object
) -> StoredGroup:
    """Return the stored group mirroring an IdP group, with account ids."""
    mirror = StoredGroup(
        id=f"g-{group.id}",
        display_name=group.name,
        external_id=group.id,
        member_ids=frozenset(members),
        version=7,
    )
    return replace(mirror, **changes)  # type: ignore[arg-type]


def in_sync(taken: Snapshot, mappings: Sequence[MappingRule]) -> StoredState:
    """Return the stored state that matches the snapshot: nothing to plan."""
    users = tuple(stored_user(user) for user in taken.users.values())
    groups = tuple(
        stored_group(group.group, (f"u-{user_id}" for user_id in group.member_ids))
        for group in taken.groups
    )
    return StoredState(users, groups, tuple(mappings), dict(ROLE_NAMES))


def with_users(state: StoredState, *users: StoredUser) -> StoredState:
    """Return the state with these accounts added, or replacing those of equal id."""
    replaced = {user.id: user for user in users}
    kept = tuple(replaced.pop(user.id, user) for user in state.users)
    return replace(state, users=kept + tuple(replaced.values()))


def with_groups(state: StoredState, *groups: StoredGroup) -> StoredState:
    """Return the state with these groups added, or replacing those of equal id."""
    replaced = {group.id: group for group in groups}
    kept = tuple(replaced.pop(group.id, group) for group in state.groups)
    return replace(state, groups=kept + tuple(replaced.values()))


def kinds(plan: Plan) -> list[tuple[ChangeKind, str]]:
    """Return (kind, userName) of each change, in plan order."""
    return [(change.kind, change.user_name) for change in plan.changes]


def only(plan: Plan, kind: ChangeKind, user_name: str | None = None) -> Change:
    """Return the one change of that kind (and user), failing if not exactly one."""
    found = [
        change
        for change in plan.changes
        if change.kind is kind and user_name in (None, change.user_name)
    ]
    assert len(found) == 1, f"{len(found)} {kind.value} changes in {kinds(plan)}"
    return found[0]
