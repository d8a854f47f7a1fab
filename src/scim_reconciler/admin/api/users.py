"""Dashboard users with their roles and history, audit events, and drift."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from scim_reconciler.db.models import AuditEvent, Source
from scim_reconciler.services import reports
from scim_reconciler.services.roles import EffectiveRole

from .dependencies import DatabaseDep, OrganizationDep, PageDep
from .organizations import ORG_PATH
from .problems import problem_responses
from .schemas import (
    AuditEventOut,
    DriftDayOut,
    DriftOut,
    EffectiveRoleOut,
    GroupSourceOut,
    MappingSourceOut,
    Page,
    UserDetailOut,
    UserOut,
    page_of,
)

router = APIRouter()

USERS_PATH = ORG_PATH + "/users"


def _roles(roles: list[EffectiveRole]) -> list[EffectiveRoleOut]:
    return [
        EffectiveRoleOut(
            role=role.role_slug,
            name=role.name,
            grant=role.grant,
            object_ids=list(role.object_ids),
        )
        for role in roles
    ]


def user_out(user: reports.UserSummary) -> UserOut:
    return UserOut(
        id=user.id,
        user_name=user.user_name,
        display_name=user.display_name,
        email=user.email,
        active=user.active,
        deleted=user.deleted,
        managed_by=user.managed_by,
        roles=_roles(user.roles),
    )


def event_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        at=event.at,
        source=event.source,
        action=event.action,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        actor=event.actor,
        run_id=event.run_id,
        details=event.details or {},
    )


@router.get(
    USERS_PATH,
    summary="Search dashboard users, with their roles",
    response_model=Page[UserOut],
    responses=problem_responses(401, 404, 422, 429),
)
async def search_users(
    organization: OrganizationDep,
    database: DatabaseDep,
    page: PageDep,
    query: Annotated[
        str | None,
        Query(
            max_length=256,
            description="Part of a userName, displayName or email, in any case.",
        ),
    ] = None,
) -> Page[UserOut]:
    async with database.read() as session:
        found = await reports.search_users(
            session,
            organization.id,
            query=query,
            offset=page.offset,
            limit=page.limit,
        )
    items = [user_out(user) for user in found.items]
    return page_of(items, found.total, found.offset, found.limit)


@router.get(
    USERS_PATH + "/{user_id}",
    summary="Show a user with its roles and the mapped groups they come from",
    response_model=UserDetailOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def show_user(
    user_id: str, organization: OrganizationDep, database: DatabaseDep
) -> UserDetailOut:
    async with database.read() as session:
        detail = await reports.user_detail(session, organization.id, user_id)
    return UserDetailOut(
        **user_out(detail.user).model_dump(),
        external_id=detail.external_id,
        given_name=detail.given_name,
        family_name=detail.family_name,
        created_at=detail.created_at,
        last_modified=detail.last_modified,
        groups=[
            GroupSourceOut(
                id=group.group_id,
                display_name=group.display_name,
                external_id=group.external_id,
                mappings=[
                    MappingSourceOut(
                        id=mapping.id,
                        role=mapping.role_slug,
                        role_name=mapping.role_name,
                        grant=mapping.grant,
                        object_ids=mapping.object_ids,
                    )
                    for mapping in group.mappings
                ],
            )
            for group in detail.groups
        ],
    )


@router.get(
    USERS_PATH + "/{user_id}/history",
    summary="List the changes to a user, newest first",
    response_model=Page[AuditEventOut],
    responses=problem_responses(401, 404, 422, 429),
)
async def user_history(
    user_id: str, organization: OrganizationDep, database: DatabaseDep, page: PageDep
) -> Page[AuditEventOut]:
    async with database.read() as session:
        found = await reports.user_history(
            session, organization.id, user_id, offset=page.offset, limit=page.limit
        )
    items = [event_out(event) for event in found.items]
    return page_of(items, found.total, found.offset, found.limit)


@router.get(
    ORG_PATH + "/audit-events",
    summary="List an organization's audit events, newest first",
    response_model=Page[AuditEventOut],
    responses=problem_responses(401, 404, 422, 429),
)
async def list_audit_events(
    organization: OrganizationDep,
    database: DatabaseDep,
    page: PageDep,
    source: Annotated[
        Source | None,
        Query(description="Only events of this source: scim, reconcile or admin."),
    ] = None,
) -> Page[AuditEventOut]:
    async with database.read() as session:
        found = await reports.audit_events(
            session,
            organization.id,
            source=source,
            offset=page.offset,
            limit=page.limit,
        )
    items = [event_out(event) for event in found.items]
    return page_of(items, found.total, found.offset, found.limit)


@router.get(
    ORG_PATH + "/drift",
    summary="Show drift per day: changes that reconciliation applied",
    response_model=DriftOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def show_drift(
    organization: OrganizationDep,
    database: DatabaseDep,
    days: Annotated[
        int,
        Query(
            ge=1,
            le=reports.MAX_DRIFT_DAYS,
            description="Days to show, ending today (UTC).",
        ),
    ] = 30,
) -> DriftOut:
    async with database.read() as session:
        found = await reports.drift_per_day(session, organization.id, days=days)
    return DriftOut(
        days=[DriftDayOut(day=d.day, drift=d.drift, runs=d.runs) for d in found],
        total_drift=sum(d.drift for d in found),
        total_runs=sum(d.runs for d in found),
    )
