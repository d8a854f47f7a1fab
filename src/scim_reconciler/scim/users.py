"""SCIM Users: create, read, list, replace, patch and delete, scoped to one org.

Only IdP-managed users are visible over SCIM. A deleted user is hidden but kept
inactive. A later create with its externalId or userName brings back the same
account (same id) rather than making a second one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    NotFoundException,
    PatchOp,
    PreconditionFailedException,
    UniquenessException,
)
from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    Group,
    GroupMember,
    ManagedBy,
    Source,
    User,
    UserEmail,
)
from scim_reconciler.scim import documents, tolerant
from scim_reconciler.scim.context import ScimContext
from scim_reconciler.scim.documents import Projection
from scim_reconciler.scim.errors import validation_error
from scim_reconciler.scim.filters import user_filter
from scim_reconciler.scim.limits import (
    MAX_EMAIL_TYPE_LENGTH,
    check_required_text,
    check_text,
    is_storable,
)
from scim_reconciler.scim.paging import Page, sort_column, sort_terms
from scim_reconciler.scim.schemas import TOLERANT_POLICY, USER_COMPUTED, UserResource
from scim_reconciler.services import audit
from scim_reconciler.services.roles_query import effective_roles
from scim_reconciler.text import comparison_key


@dataclass(frozen=True)
class UserFields:
    """The columns a User document fills."""

    user_name: str
    external_id: str | None
    display_name: str | None
    given_name: str | None
    family_name: str | None
    active: bool | None
    emails: list[tuple[str, str | None, bool]]
    document: dict[str, Any]


def _extract(resource: Any) -> UserFields:
    document = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for key in USER_COMPUTED:
        document.pop(key, None)
    document.pop("active", None)
    emails = []
    for email in resource.emails or []:
        if email.value:
            check_text("emails.value", str(email.value))
            check_text("emails.type", email.type, MAX_EMAIL_TYPE_LENGTH)
            emails.append(
                (comparison_key(str(email.value)), email.type, bool(email.primary))
            )
    name = resource.name
    check_required_text("userName", resource.user_name)
    check_text("externalId", resource.external_id)
    check_text("displayName", resource.display_name)
    check_text("name.givenName", name.given_name if name else None)
    check_text("name.familyName", name.family_name if name else None)
    return UserFields(
        user_name=resource.user_name,
        external_id=resource.external_id or None,
        display_name=resource.display_name,
        given_name=name.given_name if name else None,
        family_name=name.family_name if name else None,
        active=resource.active,
        emails=emails,
        document=document,
    )


def _validate(body: dict[str, Any], context: Context) -> Any:
    try:
        return UserResource.model_validate(
            body, scim_ctx=context, scim_policy=TOLERANT_POLICY
        )
    except ValidationError as exc:
        raise validation_error(exc) from None


def _primary_email(emails: list[tuple[str, str | None, bool]]) -> str | None:
    for value, _type, primary in emails:
        if primary:
            return value
    return emails[0][0] if emails else None


def _apply_fields(row: User, fields: UserFields) -> None:
    row.user_name = fields.user_name
    row.user_name_key = comparison_key(fields.user_name)
    row.external_id = fields.external_id
    row.display_name = fields.display_name
    row.display_name_key = (
        comparison_key(fields.display_name) if fields.display_name else None
    )
    row.given_name = fields.given_name
    row.family_name = fields.family_name
    row.email = _primary_email(fields.emails)
    row.attributes = fields.document


async def _write_emails(session: AsyncSession, row: User, fields: UserFields) -> None:
    await session.execute(delete(UserEmail).where(UserEmail.user_id == row.id))
    for value_key, email_type, primary in fields.emails:
        session.add(
            UserEmail(
                user_id=row.id,
                org_id=row.org_id,
                value_key=value_key,
                type=comparison_key(email_type) if email_type else None,
                primary=primary,
            )
        )


def _uniqueness(detail: str) -> UniquenessException:
    return UniquenessException(detail=detail)


async def _check_unique(
    session: AsyncSession, ctx: ScimContext, fields: UserFields, own_id: str | None
) -> None:
    """Reject a userName or externalId that another account of the org holds."""
    query = select(User).where(
        User.org_id == ctx.org.id,
        User.user_name_key == comparison_key(fields.user_name),
    )
    other = await session.scalar(query)
    if other is not None and other.id != own_id:
        raise _uniqueness(
            f"userName {fields.user_name!r} is already taken in this organization"
        )
    if fields.external_id:
        query = select(User).where(
            User.org_id == ctx.org.id, User.external_id == fields.external_id
        )
        other = await session.scalar(query)
        if other is not None and other.id != own_id:
            raise _uniqueness(
                f"externalId {fields.external_id!r} is already taken in this "
                "organization"
            )


async def _find_returning(
    session: AsyncSession, ctx: ScimContext, fields: UserFields
) -> User | None:
    """Find the account a create refers to: by externalId first, then userName."""
    if fields.external_id:
        found = await session.scalar(
            select(User).where(
                User.org_id == ctx.org.id, User.external_id == fields.external_id
            )
        )
        if found is not None:
            return found
    return await session.scalar(
        select(User).where(
            User.org_id == ctx.org.id,
            User.user_name_key == comparison_key(fields.user_name),
        )
    )


def _record(
    session: AsyncSession, ctx: ScimContext, row: User, action: str, **details: Any
) -> None:
    audit.record(
        session,
        org_id=ctx.org.id,
        source=Source.scim,
        action=action,
        resource_type="User",
        resource_id=row.id,
        actor=ctx.actor,
        details={"userName": row.user_name, **details},
    )


async def create_user(
    database: Database, ctx: ScimContext, body: Any
) -> dict[str, Any]:
    body = tolerant.normalize_user(body, ctx.users_url)
    fields = _extract(_validate(body, Context.RESOURCE_CREATION_REQUEST))
    now = utcnow()
    try:
        async with database.write() as session:
            row = await _find_returning(session, ctx, fields)
            if row is None:
                row = User(
                    id=str(uuid.uuid4()),
                    org_id=ctx.org.id,
                    managed_by=ManagedBy.idp,
                    active=True if fields.active is None else fields.active,
                    deleted=False,
                    version=1,
                    created_at=now,
                    last_modified=now,
                )
                _apply_fields(row, fields)
                session.add(row)
                await session.flush()
                action = "created"
            else:
                _check_return(row, fields)
                await _check_unique(session, ctx, fields, row.id)
                _apply_fields(row, fields)
                row.active = True if fields.active is None else fields.active
                row.deleted = False
                row.version += 1
                row.last_modified = now
                action = "returned"
            await _write_emails(session, row, fields)
            _record(session, ctx, row, action, active=row.active)
            await session.flush()
    except IntegrityError:
        raise _uniqueness(
            f"userName {fields.user_name!r} or externalId {fields.external_id!r} "
            "is already taken in this organization"
        ) from None
    return await _read_document(database, ctx, row.id, None)


def _check_return(row: User, fields: UserFields) -> None:
    """Allow a create to bring back an account only if it is really the same one."""
    if row.managed_by is ManagedBy.person:
        raise _uniqueness(
            f"userName {fields.user_name!r} belongs to a dashboard user created by "
            "hand; an administrator must adopt that user before the IdP can manage it"
        )
    if not row.deleted and row.active:
        if fields.external_id and row.external_id == fields.external_id:
            # The match was by externalId, and the userName may well be free.
            raise _uniqueness(
                f"externalId {fields.external_id!r} already belongs to the active "
                f"User {row.id} (userName {row.user_name!r})"
            )
        raise _uniqueness(
            f"userName {fields.user_name!r} is already taken in this organization"
        )
    if row.external_id and fields.external_id and row.external_id != fields.external_id:
        raise _uniqueness(
            f"userName {fields.user_name!r} belongs to another IdP identity "
            f"(externalId {row.external_id!r})"
        )


def visible_users(ctx: ScimContext) -> Select[User]:
    return select(User).where(
        User.org_id == ctx.org.id,
        User.managed_by == ManagedBy.idp,
        User.deleted.is_(False),
    )


async def _load(
    session: AsyncSession, ctx: ScimContext, user_id: str, lock: bool
) -> User:
    if not is_storable(user_id):
        raise NotFoundException(detail=f"User {user_id!r} not found")
    query = visible_users(ctx).where(User.id == user_id)
    if lock:
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None:
        raise NotFoundException(detail=f"User {user_id!r} not found")
    return row


async def _groups_of(
    session: AsyncSession, user_ids: list[str]
) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    if not user_ids:
        return found
    query = (
        select(GroupMember.user_id, Group.id, Group.display_name)
        .join(Group, Group.id == GroupMember.group_id)
        .where(GroupMember.user_id.in_(user_ids))
        .order_by(Group.display_name_key)
    )
    for user_id, group_id, display in (await session.execute(query)).all():
        found.setdefault(user_id, []).append((group_id, display))
    return found


async def render(
    session: AsyncSession,
    ctx: ScimContext,
    rows: list[User],
    projection: Projection | None,
) -> list[dict[str, Any]]:
    """Build the documents of ``rows``, reading groups and roles only if wanted."""
    ids = [row.id for row in rows]
    want_groups = projection is None or projection.wants("groups")
    want_roles = projection is None or projection.wants("roles")
    groups = await _groups_of(session, ids) if want_groups else {}
    if want_groups:
        # Roles come only from group membership, so a user in no group has none.
        ids = [user_id for user_id in ids if user_id in groups]
    roles = await effective_roles(session, ctx.org.id, ids) if want_roles else {}
    rendered = []
    for row in rows:
        document = documents.user_document(
            row,
            ctx.users_url,
            ctx.groups_url,
            groups.get(row.id, ()),
            roles.get(row.id, ()),
        )
        rendered.append(projection.apply(document) if projection else document)
    return rendered


async def _read_document(
    database: Database, ctx: ScimContext, user_id: str, projection: Projection | None
) -> dict[str, Any]:
    async with database.read() as session:
        row = await _load(session, ctx, user_id, lock=False)
        return (await render(session, ctx, [row], projection))[0]


async def get_user(
    database: Database, ctx: ScimContext, user_id: str, projection: Projection
) -> dict[str, Any]:
    return await _read_document(database, ctx, user_id, projection)


async def list_users(
    database: Database,
    ctx: ScimContext,
    filter_text: str | None,
    page: Page,
    projection: Projection,
    sort_by: str | None = None,
    descending: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    condition = user_filter(filter_text)
    order = sort_column(sort_by, "User")
    async with database.read() as session:
        query = visible_users(ctx).where(condition)
        rows: list[User] = []
        if page.count > 0:
            order_by = sort_terms(order, descending)
            # A stable order keeps pages from overlapping.
            order_by.append(User.id.asc())
            rows = list(
                (
                    await session.scalars(
                        query.order_by(*order_by)
                        .offset(page.start_index - 1)
                        .limit(page.count)
                    )
                ).all()
            )
        if len(rows) < page.count and (rows or page.start_index == 1):
            # A page that is not full is the last one, so it gives the total
            # without a COUNT query, and a userName lookup takes one query.
            total = page.start_index - 1 + len(rows)
        else:
            count = select(func.count()).select_from(query.subquery())
            total = await session.scalar(count) or 0
        return total, await render(session, ctx, rows, projection)


def check_version(row: User | Group, if_match: str | None) -> None:
    """Enforce If-Match (RFC 7644 §3.14): a stale version is a 412."""
    if not if_match:
        return
    tags = [tag.strip() for tag in if_match.split(",")]
    current = documents.etag(row.version)
    if "*" in tags or current in tags or current.removeprefix("W/") in tags:
        return
    raise PreconditionFailedException(
        detail=f"the resource is at version {current}, not {if_match}; read it "
        "again and retry with its current version"
    )


def _change_action(before_active: bool, after_active: bool) -> str:
    if before_active and not after_active:
        return "deactivated"
    if after_active and not before_active:
        return "reactivated"
    return "updated"


async def _save(
    session: AsyncSession, ctx: ScimContext, row: User, fields: UserFields, active: bool
) -> None:
    await _check_unique(session, ctx, fields, row.id)
    before_active = row.active
    _apply_fields(row, fields)
    row.active = active
    row.version += 1
    row.last_modified = utcnow()
    await _write_emails(session, row, fields)
    _record(session, ctx, row, _change_action(before_active, active), active=active)
    await session.flush()


async def replace_user(
    database: Database, ctx: ScimContext, user_id: str, body: Any, if_match: str | None
) -> dict[str, Any]:
    body = tolerant.normalize_user(body, ctx.users_url)
    fields = _extract(_validate(body, Context.RESOURCE_REPLACEMENT_REQUEST))
    try:
        async with database.write() as session:
            row = await _load(session, ctx, user_id, lock=True)
            check_version(row, if_match)
            active = row.active if fields.active is None else fields.active
            await _save(session, ctx, row, fields, active)
    except IntegrityError:
        raise _uniqueness(f"userName {fields.user_name!r} is already taken") from None
    return await _read_document(database, ctx, user_id, None)


async def patch_user(
    database: Database, ctx: ScimContext, user_id: str, body: Any, if_match: str | None
) -> dict[str, Any]:
    body = tolerant.normalize_patch(body, ctx.users_url)
    try:
        patch = PatchOp[UserResource].model_validate(
            body, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=TOLERANT_POLICY
        )
    except ValidationError as exc:
        raise validation_error(exc) from None
    try:
        async with database.write() as session:
            row = await _load(session, ctx, user_id, lock=True)
            check_version(row, if_match)
            document = documents.user_document(
                row, ctx.users_url, ctx.groups_url, (), ()
            )
            resource = UserResource.model_validate(
                document,
                scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
                scim_policy=TOLERANT_POLICY,
            )
            try:
                changed = patch.patch(resource, scim_policy=TOLERANT_POLICY)
            except ValidationError as exc:
                raise validation_error(exc) from None
            if changed:
                fields = _extract(resource)
                active = (
                    row.active if resource.active is None else bool(resource.active)
                )
                await _save(session, ctx, row, fields, active)
    except IntegrityError:
        raise _uniqueness(
            f"the patch of User {user_id!r} would duplicate a userName"
        ) from None
    return await _read_document(database, ctx, user_id, None)


async def delete_user(
    database: Database, ctx: ScimContext, user_id: str, if_match: str | None
) -> None:
    async with database.write() as session:
        row = await _load(session, ctx, user_id, lock=True)
        check_version(row, if_match)
        row.deleted = True
        row.active = False
        row.version += 1
        row.last_modified = utcnow()
        removed = await session.execute(
            delete(GroupMember).where(GroupMember.user_id == row.id)
        )
        _record(session, ctx, row, "deleted", groups_left=removed.rowcount)  # type: ignore[attr-defined]
