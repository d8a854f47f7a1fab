"""The users page (search) and the user page: roles, their groups, history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.console.auth import database_of
from scim_reconciler.console.orgs import OrgPage, org_page
from scim_reconciler.console.paging import Pager, page_number
from scim_reconciler.console.rendering import ConsoleRoute, not_found, render
from scim_reconciler.db.models import AuditEvent, Run
from scim_reconciler.errors import NotFoundError
from scim_reconciler.services import reports

router = APIRouter(route_class=ConsoleRoute)

USERS_PER_PAGE = 50
EVENTS_PER_PAGE = 25
MAX_QUERY_LENGTH = 256

SOURCE_LABELS = {
    "scim": "SCIM push",
    "reconcile": "Reconciliation",
    "admin": "Admin",
}


def describe_event(event: AuditEvent) -> str:
    """Say in a few words what an audit event changed about the user."""
    details: dict[str, Any] = event.details or {}
    if event.resource_type == "Group":
        name = details.get("displayName", "a group")
        if event.action == "deleted":
            return f"Group “{name}” deleted, so the user left it"
        added = details.get("members_added") or []
        removed = details.get("members_removed") or []
        if added and not removed:
            return f"Added to group “{name}”"
        if removed and not added:
            return f"Removed from group “{name}”"
        return f"Membership of group “{name}” changed"
    action = event.action.replace("_", " ")
    reason = details.get("reason")
    if reason:
        return f"{action.capitalize()}: {reason}"
    if "active" in details:
        state = "active" if details["active"] else "inactive"
        return f"{action.capitalize()}; the user is {state}"
    return action.capitalize()


async def run_start_times(
    session: AsyncSession, org_id: int, events: Sequence[AuditEvent]
) -> dict[str, datetime]:
    """Return the start time of each run that made one of ``events``, by run id.

    The history names each such event's link to its run by that time.
    """
    run_ids = {event.run_id for event in events if event.run_id}
    if not run_ids:
        return {}
    rows = await session.execute(
        select(Run.id, Run.started_at).where(Run.org_id == org_id, Run.id.in_(run_ids))
    )
    return {run_id: started_at for run_id, started_at in rows}


@router.get("/console/orgs/{slug}/users")
async def users_page(
    request: Request,
    q: str = "",
    page: str = "1",
    context: OrgPage = Depends(org_page),
) -> Response:
    number = page_number(page)
    text = q.strip()[:MAX_QUERY_LENGTH]
    async with database_of(request).read() as session:
        found = await reports.search_users(
            session,
            context.org.id,
            query=text or None,
            offset=(number - 1) * USERS_PER_PAGE,
            limit=USERS_PER_PAGE,
        )
    pager = Pager(number, USERS_PER_PAGE, found.total)
    return render(
        request,
        "users.html",
        {
            "title": "Users",
            "section": "users",
            "users": found.items,
            "query": text,
            "pager": pager,
            "page_url": pager.url_builder(f"{context.base_url}/users", q=text),
        },
    )


@router.get("/console/orgs/{slug}/users/{user_id}")
async def user_page(
    request: Request,
    user_id: str,
    page: str = "1",
    context: OrgPage = Depends(org_page),
) -> Response:
    number = page_number(page)
    try:
        async with database_of(request).read() as session:
            detail = await reports.user_detail(session, context.org.id, user_id)
            history = await reports.user_history(
                session,
                context.org.id,
                user_id,
                offset=(number - 1) * EVENTS_PER_PAGE,
                limit=EVENTS_PER_PAGE,
            )
            run_started = await run_start_times(session, context.org.id, history.items)
    except NotFoundError:
        raise not_found(f"User {user_id!r}") from None
    pager = Pager(number, EVENTS_PER_PAGE, history.total)
    return render(
        request,
        "user.html",
        {
            "title": detail.user.user_name,
            "section": "users",
            "detail": detail,
            "events": [
                {
                    "event": event,
                    "source": SOURCE_LABELS.get(event.source.value, event.source),
                    "text": describe_event(event),
                    "run_started": run_started.get(event.run_id or ""),
                }
                for event in history.items
            ],
            "pager": pager,
            "page_url": pager.url_builder(f"{context.base_url}/users/{detail.user.id}"),
        },
    )
