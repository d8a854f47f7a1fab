"""Read an organization's stored state in the form the plan works on."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.db.models import (
    Group,
    GroupMember,
    ManagedBy,
    Role,
    RoleMapping,
    User,
)
from scim_reconciler.reconcile.model import (
    MappingRule,
    StoredGroup,
    StoredState,
    StoredUser,
)

# Rows fetched at a time from the database.
PARTITION_ROWS = 5000


async def load_stored_state(session: AsyncSession, org_id: int) -> StoredState:
    """Load users, groups with their members, and mappings of one organization.

    Reads columns, not ORM objects, so that 100k users load in a few seconds,
    and streams them in partitions, so that the rows are never all in memory
    at once.
    """
    user_rows = await session.stream(
        select(
            User.id,
            User.user_name,
            User.external_id,
            User.email,
            User.given_name,
            User.family_name,
            User.display_name,
            User.active,
            User.deleted,
            User.managed_by,
            User.version,
        )
        .where(User.org_id == org_id)
        .execution_options(yield_per=PARTITION_ROWS)
    )
    loaded: list[StoredUser] = []
    async for partition in user_rows.partitions():
        loaded.extend(
            StoredUser(
                id=row.id,
                user_name=row.user_name,
                external_id=row.external_id,
                email=row.email,
                given_name=row.given_name,
                family_name=row.family_name,
                display_name=row.display_name,
                active=row.active,
                deleted=row.deleted,
                managed_by_idp=row.managed_by is ManagedBy.idp,
                version=row.version,
            )
            for row in partition
        )
    users = tuple(loaded)

    # Member sets share the users' id strings rather than keep a copy per row.
    user_ids = {user.id: user.id for user in users}
    members: dict[str, set[str]] = defaultdict(set)
    member_rows = await session.stream(
        select(GroupMember.group_id, GroupMember.user_id)
        .join(Group, Group.id == GroupMember.group_id)
        .where(Group.org_id == org_id)
        .execution_options(yield_per=PARTITION_ROWS)
    )
    async for pairs in member_rows.partitions():
        for group_id, user_id in pairs:
            members[group_id].add(user_ids.get(user_id, user_id))
    del user_ids

    group_rows = await session.execute(
        select(Group.id, Group.display_name, Group.external_id, Group.version).where(
            Group.org_id == org_id
        )
    )
    groups = tuple(
        StoredGroup(
            id=row.id,
            display_name=row.display_name,
            external_id=row.external_id,
            member_ids=frozenset(members.get(row.id, ())),
            version=row.version,
        )
        for row in group_rows
    )

    mapping_rows = await session.scalars(
        select(RoleMapping).where(RoleMapping.org_id == org_id).order_by(RoleMapping.id)
    )
    mappings = tuple(
        MappingRule(
            id=mapping.id,
            group=mapping.group,
            role_slug=mapping.role_slug,
            grant=mapping.grant,
            object_ids=frozenset(mapping.object_ids or ()),
        )
        for mapping in mapping_rows
    )
    role_names = {
        role.slug: role.name for role in (await session.scalars(select(Role))).all()
    }
    return StoredState(
        users=users, groups=groups, mappings=mappings, role_names=role_names
    )
