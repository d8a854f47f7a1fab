"""Group-to-role mappings of an organization."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import Organization, Role, RoleMapping, Source
from scim_reconciler.errors import ConflictError, InvalidInputError, NotFoundError
from scim_reconciler.services import audit
from scim_reconciler.services.roles import Grant
from scim_reconciler.text import comparison_key


async def add_mapping(
    session: AsyncSession,
    organization: Organization,
    *,
    group: str,
    role_slug: str,
    limited_to: list[str] | None = None,
    actor: str = "operator",
) -> RoleMapping:
    """Map an IdP group, named by externalId or displayName, to a role.

    ``limited_to`` makes the grant limited to those object ids (courses, assets
    or learner groups); without it the grant is full.
    """
    group = group.strip()
    if not group:
        raise InvalidInputError("group is empty: give the IdP group's id or name")
    role = await session.get(Role, role_slug)
    if role is None:
        known = ", ".join(sorted((await session.scalars(select(Role.slug))).all()))
        raise InvalidInputError(
            f"role {role_slug!r} is not in the catalog: choose one of {known}"
        )
    object_ids = sorted({item.strip() for item in limited_to or [] if item.strip()})
    if limited_to is not None and not object_ids:
        raise InvalidInputError(
            "a limited grant needs at least one object id: give --object ID"
        )
    group_key = comparison_key(group)
    existing = await session.scalar(
        select(RoleMapping).where(
            RoleMapping.org_id == organization.id,
            RoleMapping.group_key == group_key,
            RoleMapping.role_slug == role_slug,
        )
    )
    if existing is not None:
        raise ConflictError(
            f"group {group!r} is mapped to role {role_slug!r} already "
            f"(mapping {existing.id}): remove it first to change the grant"
        )
    mapping = RoleMapping(
        org_id=organization.id,
        group=group,
        group_key=group_key,
        role_slug=role_slug,
        grant=Grant.limited if limited_to is not None else Grant.full,
        object_ids=object_ids,
        created_at=utcnow().astimezone(UTC),
    )
    session.add(mapping)
    try:
        await session.flush()
    except IntegrityError:
        # A concurrent request added the same mapping after the check above.
        raise ConflictError(
            f"group {group!r} is mapped to role {role_slug!r} already: list the "
            "mappings, and remove that one first to change the grant"
        ) from None
    audit.record(
        session,
        org_id=organization.id,
        source=Source.admin,
        action="mapping_added",
        resource_type="RoleMapping",
        resource_id=str(mapping.id),
        actor=actor,
        details={
            "group": group,
            "role": role_slug,
            "grant": mapping.grant.value,
            "object_ids": object_ids,
        },
    )
    return mapping


async def list_mappings(
    session: AsyncSession, organization: Organization
) -> list[RoleMapping]:
    query = (
        select(RoleMapping)
        .where(RoleMapping.org_id == organization.id)
        .order_by(RoleMapping.id)
    )
    return list((await session.scalars(query)).all())


async def remove_mapping(
    session: AsyncSession,
    organization: Organization,
    mapping_id: int,
    *,
    actor: str = "operator",
) -> RoleMapping:
    mapping = await session.scalar(
        select(RoleMapping).where(
            RoleMapping.org_id == organization.id, RoleMapping.id == mapping_id
        )
    )
    if mapping is None:
        raise NotFoundError(
            f"mapping {mapping_id} not found in organization {organization.slug!r}: "
            "`scim-reconciler mapping list` shows the mapping ids"
        )
    await session.delete(mapping)
    audit.record(
        session,
        org_id=organization.id,
        source=Source.admin,
        action="mapping_removed",
        resource_type="RoleMapping",
        resource_id=str(mapping_id),
        actor=actor,
        details={"group": mapping.group, "role": mapping.role_slug},
    )
    return mapping
