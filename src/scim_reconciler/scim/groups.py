"""SCIM Groups, scoped to one organization.

Membership is stored one row per member, and every write that reads the member
list first locks the group (``SELECT ... FOR UPDATE`` on PostgreSQL, the
immediate write transaction on SQLite). Concurrent PATCHes therefore apply one
after the other on the current members, and none is lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidValueException,
    NotFoundException,
    PatchOp,
    UniquenessException,
)
from scim2_models import (
    GroupMember as ScimGroupMember,
)
from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import Group, GroupMember, ManagedBy, Source, User
from scim_reconciler.scim import documents, tolerant
from scim_reconciler.scim.context import ScimContext
from scim_reconciler.scim.documents import Projection
from scim_reconciler.scim.errors import validation_error
from scim_reconciler.scim.filters import group_filter
from scim_reconciler.scim.limits import (
    check_required_text,
    check_text,
    is_storable,
)
from scim_reconciler.scim.paging import Page, sort_column, sort_terms
from scim_reconciler.scim.schemas import GROUP_COMPUTED, TOLERANT_POLICY, GroupResource
from scim_reconciler.scim.users import check_version
from scim_reconciler.services import audit
from scim_reconciler.text import comparison_key

_CHUNK = 900


def _validate(body: dict[str, Any], context: Context) -> Any:
    try:
        return GroupResource.model_validate(
            body, scim_ctx=context, scim_policy=TOLERANT_POLICY
        )
    except ValidationError as exc:
        raise validation_error(exc) from None


def _document(resource: Any) -> dict[str, Any]:
    document: dict[str, Any] = resource.model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    for key in GROUP_COMPUTED:
        document.pop(key, None)
    return document


def _members(resource: Any) -> dict[str, str | None]:
    """Return the members a resource lists: user id to the display sent with it."""
    members: dict[str, str | None] = {}
    for member in resource.members or []:
        value = member.value
        if not value:
            raise InvalidValueException(
                detail="every member needs a value: the User's id"
            )
        check_text("members.display", member.display)
        if value not in members or member.display:
            members[value] = member.display
    return members


async def _check_members(
    session: AsyncSession, ctx: ScimContext, ids: Iterable[str]
) -> None:
    """Reject member ids that are not visible Users of the organization."""
    wanted = list(ids)
    found: set[str] = set()
    queried = [item for item in wanted if is_storable(item)]
    for start in range(0, len(queried), _CHUNK):
        chunk = queried[start : start + _CHUNK]
        query = select(User.id).where(
            User.org_id == ctx.org.id,
            User.id.in_(chunk),
            User.managed_by == ManagedBy.idp,
            User.deleted.is_(False),
        )
        found.update((await session.scalars(query)).all())
    missing = [item for item in wanted if item not in found]
    if missing:
        shown = ", ".join(repr(item) for item in missing[:5])
        raise InvalidValueException(
            detail=f"members {shown} are not Users of this organization; create the "
            "Users first (nested groups are not supported)"
        )


async def _set_members(
    session: AsyncSession,
    group: Group,
    before: dict[str, str | None],
    after: dict[str, str | None],
) -> tuple[list[str], list[str]]:
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    for user_id in sorted(after.keys() & before.keys()):
        if after[user_id] != before[user_id]:
            await session.execute(
                update(GroupMember)
                .where(GroupMember.group_id == group.id, GroupMember.user_id == user_id)
                .values(display=after[user_id])
            )
    for start in range(0, len(removed), _CHUNK):
        await session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group.id,
                GroupMember.user_id.in_(removed[start : start + _CHUNK]),
            )
        )
    if added:
        await session.execute(
            insert(GroupMember),
            [
                {"group_id": group.id, "user_id": uid, "display": after[uid]}
                for uid in added
            ],
        )
    return added, removed


def _record(
    session: AsyncSession,
    ctx: ScimContext,
    group: Group,
    action: str,
    added: list[str] | None = None,
    removed: list[str] | None = None,
) -> None:
    details: dict[str, Any] = {"displayName": group.display_name}
    if added:
        details["members_added"] = added
    if removed:
        details["members_removed"] = removed
    audit.record(
        session,
        org_id=ctx.org.id,
        source=Source.scim,
        action=action,
        resource_type="Group",
        resource_id=group.id,
        actor=ctx.actor,
        details=details,
    )


async def _check_unique(
    session: AsyncSession,
    ctx: ScimContext,
    display_name: str,
    external_id: str | None,
    own_id: str | None,
) -> None:
    query = select(Group.id).where(
        Group.org_id == ctx.org.id,
        Group.display_name_key == comparison_key(display_name),
    )
    other = await session.scalar(query)
    if other is not None and other != own_id:
        raise UniquenessException(
            detail=f"displayName {display_name!r} is already taken by Group {other}"
        )
    if external_id:
        query = select(Group.id).where(
            Group.org_id == ctx.org.id, Group.external_id == external_id
        )
        other = await session.scalar(query)
        if other is not None and other != own_id:
            raise UniquenessException(
                detail=f"externalId {external_id!r} is already taken by Group {other}"
            )


def _apply(group: Group, resource: Any) -> None:
    check_required_text("displayName", resource.display_name)
    check_text("externalId", resource.external_id)
    group.display_name = resource.display_name
    group.display_name_key = comparison_key(resource.display_name)
    group.external_id = resource.external_id or None
    group.attributes = _document(resource)


async def create_group(
    database: Database, ctx: ScimContext, body: Any
) -> dict[str, Any]:
    resource = _validate(
        tolerant.normalize_group(body), Context.RESOURCE_CREATION_REQUEST
    )
    members = _members(resource)
    now = utcnow()
    group = Group(
        id=str(uuid.uuid4()),
        org_id=ctx.org.id,
        version=1,
        created_at=now,
        last_modified=now,
    )
    _apply(group, resource)
    try:
        async with database.write() as session:
            await _check_unique(
                session, ctx, group.display_name, group.external_id, None
            )
            await _check_members(session, ctx, members)
            session.add(group)
            await session.flush()
            added, _ = await _set_members(session, group, {}, members)
            _record(session, ctx, group, "created", added=added)
    except IntegrityError:
        raise UniquenessException(
            detail=f"displayName {group.display_name!r} or externalId is already taken"
        ) from None
    return await _read_document(database, ctx, group.id, None)


def visible_groups(ctx: ScimContext) -> Select[Group]:
    return select(Group).where(Group.org_id == ctx.org.id)


async def _load(
    session: AsyncSession, ctx: ScimContext, group_id: str, lock: bool
) -> Group:
    if not is_storable(group_id):
        raise NotFoundException(detail=f"Group {group_id!r} not found")
    query = visible_groups(ctx).where(Group.id == group_id)
    if lock:
        query = query.with_for_update()
    group = await session.scalar(query)
    if group is None:
        raise NotFoundException(detail=f"Group {group_id!r} not found")
    return group


async def _current_members(
    session: AsyncSession, group_id: str
) -> dict[str, str | None]:
    query = select(GroupMember.user_id, GroupMember.display).where(
        GroupMember.group_id == group_id
    )
    return {
        user_id: display for user_id, display in (await session.execute(query)).all()
    }


async def _members_of(
    session: AsyncSession, group_ids: list[str]
) -> dict[str, list[tuple[str, str | None]]]:
    found: dict[str, list[tuple[str, str | None]]] = {}
    if not group_ids:
        return found
    query = (
        select(GroupMember.group_id, GroupMember.user_id, GroupMember.display)
        .where(GroupMember.group_id.in_(group_ids))
        .order_by(GroupMember.user_id)
    )
    for group_id, user_id, display in (await session.execute(query)).all():
        found.setdefault(group_id, []).append((user_id, display))
    return found


async def render(
    session: AsyncSession,
    ctx: ScimContext,
    rows: list[Group],
    projection: Projection | None,
) -> list[dict[str, Any]]:
    want_members = projection is None or projection.wants("members")
    members = (
        await _members_of(session, [row.id for row in rows]) if want_members else {}
    )
    rendered = []
    for row in rows:
        document = documents.group_document(
            row,
            ctx.users_url,
            ctx.groups_url,
            members.get(row.id, []) if want_members else None,
        )
        rendered.append(projection.apply(document) if projection else document)
    return rendered


async def _read_document(
    database: Database, ctx: ScimContext, group_id: str, projection: Projection | None
) -> dict[str, Any]:
    async with database.read() as session:
        group = await _load(session, ctx, group_id, lock=False)
        return (await render(session, ctx, [group], projection))[0]


async def get_group(
    database: Database, ctx: ScimContext, group_id: str, projection: Projection
) -> dict[str, Any]:
    return await _read_document(database, ctx, group_id, projection)


async def list_groups(
    database: Database,
    ctx: ScimContext,
    filter_text: str | None,
    page: Page,
    projection: Projection,
    sort_by: str | None = None,
    descending: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    condition = group_filter(filter_text)
    order = sort_column(sort_by, "Group")
    async with database.read() as session:
        query = visible_groups(ctx).where(condition)
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        if page.count == 0:
            return total or 0, []
        order_by = sort_terms(order, descending)
        order_by.append(Group.id.asc())
        rows = list(
            (
                await session.scalars(
                    query.order_by(*order_by)
                    .offset(page.start_index - 1)
                    .limit(page.count)
                )
            ).all()
        )
        return total or 0, await render(session, ctx, rows, projection)


async def _save(
    session: AsyncSession,
    ctx: ScimContext,
    group: Group,
    resource: Any,
    before: dict[str, str | None],
    after: dict[str, str | None],
) -> None:
    await _check_unique(
        session, ctx, resource.display_name, resource.external_id, group.id
    )
    await _check_members(session, ctx, after.keys() - before.keys())
    attributes_before = (group.display_name, group.external_id, group.attributes)
    _apply(group, resource)
    added, removed = await _set_members(session, group, before, after)
    attributes_changed = attributes_before != (
        group.display_name,
        group.external_id,
        group.attributes,
    )
    if not (added or removed or attributes_changed):
        return
    group.version += 1
    group.last_modified = utcnow()
    _record(session, ctx, group, "updated", added=added, removed=removed)
    await session.flush()


async def replace_group(
    database: Database, ctx: ScimContext, group_id: str, body: Any, if_match: str | None
) -> dict[str, Any]:
    body = tolerant.normalize_group(body)
    # A PUT that leaves out "members" keeps them: some clients rename a group
    # with PUT, and emptying it by accident would drop every member's roles.
    keeps_members = not any(key.lower() == "members" for key in body)
    resource = _validate(body, Context.RESOURCE_REPLACEMENT_REQUEST)
    members = _members(resource)
    try:
        async with database.write() as session:
            group = await _load(session, ctx, group_id, lock=True)
            check_version(group, if_match)
            before = await _current_members(session, group.id)
            after = before if keeps_members else members
            await _save(session, ctx, group, resource, before, after)
    except IntegrityError:
        raise UniquenessException(
            detail=f"displayName {resource.display_name!r} is already taken"
        ) from None
    return await _read_document(database, ctx, group_id, None)


async def patch_group(
    database: Database,
    ctx: ScimContext,
    group_id: str,
    body: Any,
    if_match: str | None,
    want_body: bool = True,
) -> dict[str, Any] | None:
    body = tolerant.normalize_patch(body, ctx.users_url)
    try:
        patch = PatchOp[GroupResource].model_validate(
            body, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=TOLERANT_POLICY
        )
    except ValidationError as exc:
        raise validation_error(exc) from None
    try:
        async with database.write() as session:
            group = await _load(session, ctx, group_id, lock=True)
            check_version(group, if_match)
            before = await _current_members(session, group.id)
            document = documents.group_document(
                group, ctx.users_url, ctx.groups_url, None
            )
            resource = GroupResource.model_validate(
                document,
                scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
                scim_policy=TOLERANT_POLICY,
            )
            resource.members = [
                ScimGroupMember(value=user_id, display=display)
                for user_id, display in sorted(before.items())
            ]
            try:
                changed = patch.patch(resource, scim_policy=TOLERANT_POLICY)
            except ValidationError as exc:
                raise validation_error(exc) from None
            if changed:
                after = _members(resource)
                await _save(session, ctx, group, resource, before, after)
    except IntegrityError:
        raise UniquenessException(
            detail=f"the patch of Group {group_id!r} would duplicate a displayName"
        ) from None
    if not want_body:
        return None
    return await _read_document(database, ctx, group_id, None)


async def delete_group(
    database: Database, ctx: ScimContext, group_id: str, if_match: str | None
) -> None:
    async with database.write() as session:
        group = await _load(session, ctx, group_id, lock=True)
        check_version(group, if_match)
        removed = sorted((await _current_members(session, group.id)).keys())
        _record(session, ctx, group, "deleted", removed=removed)
        await session.execute(
            delete(GroupMember).where(GroupMember.group_id == group.id)
        )
        await session.delete(group)
