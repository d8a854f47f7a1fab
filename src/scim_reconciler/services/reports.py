"""Read-only reports for the admin API and the console: users with their roles
and history, audit events, runs and drift over time.

Lists come as a ``Page``: one slice of a stable order, with the total count of
the whole list, so a caller can page with ``offset`` and ``limit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import String, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import (
    AuditEvent,
    Group,
    GroupMember,
    RoleMapping,
    Run,
    RunChange,
    RunMode,
    Source,
    User,
)
from scim_reconciler.errors import InvalidInputError, NotFoundError
from scim_reconciler.services.roles import EffectiveRole, Grant
from scim_reconciler.services.roles_query import effective_roles, role_names
from scim_reconciler.text import comparison_key

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_DRIFT_DAYS = 366


@dataclass(frozen=True)
class Page(Generic[T]):
    """One slice of a list: ``items`` start at ``offset`` of ``total``."""

    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, or None on the last one."""
        following = self.offset + len(self.items)
        return following if following < self.total else None


@dataclass(frozen=True)
class DriftDay:
    """Drift of one UTC day: changes applied by the apply runs finished that day."""

    day: date
    drift: int
    runs: int


@dataclass(frozen=True)
class UserSummary:
    id: str
    user_name: str
    display_name: str | None
    email: str | None
    active: bool
    managed_by: str
    roles: list[EffectiveRole]
    # Deleted over SCIM: hidden from SCIM and from searches, kept for its history.
    deleted: bool = False


@dataclass(frozen=True)
class MappingSource:
    """A mapping that grants a role to the members of a stored group."""

    id: int
    role_slug: str
    role_name: str
    grant: Grant
    object_ids: list[str]


@dataclass(frozen=True)
class GroupSource:
    """A stored group of a user, with the mappings that match it (maybe none)."""

    group_id: str
    display_name: str
    external_id: str | None
    mappings: list[MappingSource]


@dataclass(frozen=True)
class UserDetail:
    user: UserSummary
    external_id: str | None
    given_name: str | None
    family_name: str | None
    created_at: datetime
    last_modified: datetime
    groups: list[GroupSource]


def check_page(offset: int, limit: int) -> None:
    """Raise InvalidInputError for an offset or limit out of range."""
    if offset < 0:
        raise InvalidInputError(f"offset {offset} is not valid: give 0 or more")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInputError(
            f"limit {limit} is not valid: give 1 to {MAX_PAGE_SIZE}"
        )


async def _page(
    session: AsyncSession, query: Select[Any], offset: int, limit: int
) -> tuple[list[Any], int]:
    """Return one slice of an ordered query's rows and the count of all of them."""
    check_page(offset, limit)
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    total = await session.scalar(counted) or 0
    rows = (await session.scalars(query.offset(offset).limit(limit))).all()
    return list(rows), total


async def drift_per_day(
    session: AsyncSession, org_id: int, *, days: int = 30, today: date | None = None
) -> list[DriftDay]:
    """Return the drift of each of the last ``days`` UTC days, oldest first.

    Days without a finished apply run have drift 0. Dry runs change nothing and
    are not counted. A run's drift counts on the day it finished; an approval
    later adds to that same day.
    """
    if not 1 <= days <= MAX_DRIFT_DAYS:
        raise InvalidInputError(f"days {days} is not valid: give 1 to {MAX_DRIFT_DAYS}")
    last = today or utcnow().date()
    first = last - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    rows = await session.execute(
        select(Run.finished_at, Run.drift).where(
            Run.org_id == org_id,
            Run.mode == RunMode.apply,
            Run.finished_at.is_not(None),
            Run.finished_at >= start,
            Run.finished_at < end,
        )
    )
    drift = {first + timedelta(days=n): 0 for n in range(days)}
    runs = dict.fromkeys(drift, 0)
    for finished_at, run_drift in rows:
        assert finished_at is not None  # excluded by the query
        day = finished_at.astimezone(UTC).date()
        drift[day] += run_drift
        runs[day] += 1
    return [DriftDay(day, drift[day], runs[day]) for day in sorted(drift)]


def _summary(user: User, roles: list[EffectiveRole]) -> UserSummary:
    return UserSummary(
        id=user.id,
        user_name=user.user_name,
        display_name=user.display_name,
        email=user.email,
        active=user.active,
        managed_by=user.managed_by.value,
        roles=roles,
        deleted=user.deleted,
    )


async def search_users(
    session: AsyncSession,
    org_id: int,
    *,
    query: str | None = None,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page[UserSummary]:
    """Return a page of the dashboard users, ordered by userName.

    ``query`` matches a substring of userName, displayName or email without
    regard to case. Users deleted over SCIM are left out.
    """
    statement = select(User).where(User.org_id == org_id, User.deleted.is_(False))
    text = (query or "").strip()
    if text:
        key = comparison_key(text)
        statement = statement.where(
            or_(
                User.user_name_key.contains(key, autoescape=True),
                User.display_name_key.contains(key, autoescape=True),
                func.lower(User.email).contains(key, autoescape=True),
            )
        )
    statement = statement.order_by(User.user_name_key, User.id)
    users, total = await _page(session, statement, offset, limit)
    roles = await effective_roles(session, org_id, [user.id for user in users])
    items = [_summary(user, roles.get(user.id, [])) for user in users]
    return Page(items, total, offset, limit)


async def _find_user(session: AsyncSession, org_id: int, user_id: str) -> User:
    user = await session.scalar(
        select(User).where(User.org_id == org_id, User.id == user_id)
    )
    if user is None:
        raise NotFoundError(
            f"user {user_id!r} not found in this organization: search the users "
            "to find its id"
        )
    return user


async def user_detail(session: AsyncSession, org_id: int, user_id: str) -> UserDetail:
    """Return a user with its roles and the groups they come from.

    Every stored group of the user is listed; a group whose ``mappings`` is
    empty grants no role.
    """
    user = await _find_user(session, org_id, user_id)
    roles = await effective_roles(session, org_id, [user.id])
    groups = (
        await session.scalars(
            select(Group)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(Group.org_id == org_id, GroupMember.user_id == user.id)
            .order_by(Group.display_name_key)
        )
    ).all()
    mappings = await _mappings_by_group(session, org_id, groups)
    return UserDetail(
        user=_summary(user, roles.get(user.id, [])),
        external_id=user.external_id,
        given_name=user.given_name,
        family_name=user.family_name,
        created_at=user.created_at,
        last_modified=user.last_modified,
        groups=[
            GroupSource(
                group.id, group.display_name, group.external_id, mappings[group.id]
            )
            for group in groups
        ],
    )


async def _mappings_by_group(
    session: AsyncSession, org_id: int, groups: Sequence[Group]
) -> dict[str, list[MappingSource]]:
    """Match mappings to groups as roles_query does: by externalId or by name."""
    found: dict[str, list[MappingSource]] = {group.id: [] for group in groups}
    if not groups:
        return found
    rows = (
        await session.scalars(
            select(RoleMapping)
            .where(RoleMapping.org_id == org_id)
            .order_by(RoleMapping.id)
        )
    ).all()
    names = await role_names(session)
    for group in groups:
        for mapping in rows:
            if mapping.group_key != group.display_name_key and (
                group.external_id is None or mapping.group != group.external_id
            ):
                continue
            found[group.id].append(
                MappingSource(
                    id=mapping.id,
                    role_slug=mapping.role_slug,
                    role_name=names.get(mapping.role_slug, mapping.role_slug),
                    grant=mapping.grant,
                    object_ids=list(mapping.object_ids or []),
                )
            )
    return found


async def user_history(
    session: AsyncSession,
    org_id: int,
    user_id: str,
    *,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page[AuditEvent]:
    """Return a page of the audit events that concern a user, newest first.

    These are the events of the user itself (SCIM pushes, reconciliation,
    approvals) and the SCIM group pushes that added or removed it as a member.
    """
    user = await _find_user(session, org_id, user_id)
    # A SCIM group event lists member ids in its details, so the quoted id
    # matches exactly: ids are UUIDs, which never contain another id.
    in_group_event = and_(
        AuditEvent.resource_type == "Group",
        cast(AuditEvent.details, String).contains(f'"{user.id}"', autoescape=True),
    )
    statement = (
        select(AuditEvent)
        .where(
            AuditEvent.org_id == org_id,
            or_(
                and_(
                    AuditEvent.resource_type == "User",
                    AuditEvent.resource_id == user.id,
                ),
                in_group_event,
            ),
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    )
    events, total = await _page(session, statement, offset, limit)
    return Page(events, total, offset, limit)


async def audit_events(
    session: AsyncSession,
    org_id: int,
    *,
    source: Source | None = None,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page[AuditEvent]:
    """Return a page of an organization's audit events, newest first."""
    statement = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if source is not None:
        statement = statement.where(AuditEvent.source == source)
    statement = statement.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    events, total = await _page(session, statement, offset, limit)
    return Page(events, total, offset, limit)


async def list_runs_page(
    session: AsyncSession,
    org_id: int,
    *,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page[Run]:
    """Return a page of an organization's runs, newest first."""
    statement = (
        select(Run)
        .where(Run.org_id == org_id)
        .order_by(Run.started_at.desc(), Run.id.desc())
    )
    runs, total = await _page(session, statement, offset, limit)
    return Page(runs, total, offset, limit)


async def run_changes_page(
    session: AsyncSession,
    run_id: str,
    *,
    status: str | None = None,
    kind: str | None = None,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page[RunChange]:
    """Return a page of a run's changes in plan order, by status or kind if given."""
    statement = select(RunChange).where(RunChange.run_id == run_id)
    if status is not None:
        statement = statement.where(RunChange.status == status)
    if kind is not None:
        statement = statement.where(RunChange.kind == kind)
    changes, total = await _page(
        session, statement.order_by(RunChange.seq), offset, limit
    )
    return Page(changes, total, offset, limit)
