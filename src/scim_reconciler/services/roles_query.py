"""Reads of the grants users receive through their mapped groups."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.db.models import Group, GroupMember, Role, RoleMapping
from scim_reconciler.services.roles import EffectiveRole, RoleGrant, merge_grants

# SQLite allows 32766 bound parameters per statement; stay well below it.
_CHUNK = 900


async def user_role_grants(
    session: AsyncSession, org_id: int, user_ids: Sequence[str]
) -> dict[str, list[RoleGrant]]:
    """Return every grant each user receives, keyed by user id."""
    grants: dict[str, list[RoleGrant]] = {}
    for start in range(0, len(user_ids), _CHUNK):
        chunk = user_ids[start : start + _CHUNK]
        query = (
            select(
                GroupMember.user_id,
                RoleMapping.role_slug,
                RoleMapping.grant,
                RoleMapping.object_ids,
            )
            .join(Group, Group.id == GroupMember.group_id)
            .join(
                RoleMapping,
                (RoleMapping.org_id == Group.org_id)
                & or_(
                    RoleMapping.group_key == Group.display_name_key,
                    RoleMapping.group == Group.external_id,
                ),
            )
            .where(Group.org_id == org_id, GroupMember.user_id.in_(chunk))
        )
        for user_id, slug, grant, object_ids in (await session.execute(query)).all():
            grants.setdefault(user_id, []).append(
                RoleGrant(slug, grant, frozenset(object_ids or ()))
            )
    return grants


async def role_names(session: AsyncSession) -> dict[str, str]:
    return {row.slug: row.name for row in (await session.scalars(select(Role))).all()}


async def effective_roles(
    session: AsyncSession, org_id: int, user_ids: Sequence[str]
) -> dict[str, list[EffectiveRole]]:
    grants = await user_role_grants(session, org_id, user_ids)
    if not grants:
        return {}
    names = await role_names(session)
    return {user_id: merge_grants(found, names) for user_id, found in grants.items()}
