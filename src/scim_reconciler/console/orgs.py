"""Choosing an organization, and the access check of every organization page.

An operator sees every organization and picks one from a list. An organization
admin can open only their own: another organization's pages return 404, the
same as one that does not exist, so that slugs cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import func, or_, select

from scim_reconciler.console.auth import (
    Signed,
    database_of,
    home_url,
    signed_in,
)
from scim_reconciler.console.paging import Pager, page_number
from scim_reconciler.console.rendering import (
    ConsoleRoute,
    not_found,
    render,
    see_other,
)
from scim_reconciler.db.models import Organization
from scim_reconciler.text import comparison_key

ORGS_PER_PAGE = 50

router = APIRouter(route_class=ConsoleRoute)


@dataclass(frozen=True)
class OrgPage:
    """A request to one organization's pages by an admin allowed to see it."""

    signed: Signed
    org: Organization

    @property
    def actor(self) -> str:
        return self.signed.principal.name

    @property
    def base_url(self) -> str:
        return f"/console/orgs/{self.org.slug}"


async def org_page(
    slug: str, request: Request, signed: Signed = Depends(signed_in)
) -> OrgPage:
    """Load the organization of the URL, or a 404 page if the admin may not see it."""
    async with database_of(request).read() as session:
        org = await session.scalar(select(Organization).filter_by(slug=slug))
    if org is None or not signed.principal.sees(org.id):
        raise not_found(f"Organization {slug!r}")
    request.state.console["org"] = org
    return OrgPage(signed, org)


@router.get("/console/orgs")
async def organizations_page(
    request: Request,
    q: str = "",
    page: str = "1",
    signed: Signed = Depends(signed_in),
) -> Response:
    if not signed.principal.is_operator:
        return see_other(home_url(signed.principal))
    number = page_number(page)
    query = select(Organization)
    text = q.strip()
    if text:
        key = comparison_key(text)
        query = query.where(
            or_(
                Organization.slug.contains(key, autoescape=True),
                func.lower(Organization.name).contains(key, autoescape=True),
            )
        )
    async with database_of(request).read() as session:
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        pager = Pager(number, ORGS_PER_PAGE, total or 0)
        found = (
            await session.scalars(
                query.order_by(Organization.slug)
                .offset(pager.offset)
                .limit(ORGS_PER_PAGE)
            )
        ).all()
    return render(
        request,
        "organizations.html",
        {
            "title": "Organizations",
            "organizations": found,
            "query": text,
            "pager": pager,
            "page_url": pager.url_builder("/console/orgs", q=text),
        },
    )


@router.get("/console/orgs/{slug}")
async def organization_home(context: OrgPage = Depends(org_page)) -> Response:
    return see_other(f"{context.base_url}/provisioning")
