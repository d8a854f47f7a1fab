"""The role mappings page: which IdP group grants which role, full or limited."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from scim_reconciler.console.auth import checked_form, database_of
from scim_reconciler.console.orgs import OrgPage, org_page
from scim_reconciler.console.rendering import (
    ConsoleRoute,
    not_found,
    render,
    see_other,
)
from scim_reconciler.db.models import Role, RoleMapping
from scim_reconciler.errors import ConflictError, InvalidInputError, NotFoundError
from scim_reconciler.services import mappings

router = APIRouter(route_class=ConsoleRoute)

NOTICES = {
    "mapping-added": "The mapping is added. Its members get the role at the next "
    "SCIM push or reconciliation.",
    "mapping-removed": "The mapping is removed. Its members lose the role it "
    "granted unless another mapping grants it.",
}
# Object ids are separated by commas, spaces or new lines.
OBJECT_SEPARATORS = re.compile(r"[\s,]+")


@dataclass
class MappingForm:
    """Values and errors of the Add mapping form, to show it again."""

    group: str = ""
    role: str = ""
    grant: str = "full"
    objects: str = ""
    errors: dict[str, str] = field(default_factory=dict)


async def _page(
    request: Request,
    context: OrgPage,
    form: MappingForm,
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    async with database_of(request).read() as session:
        found = await mappings.list_mappings(session, context.org)
        roles = (await session.scalars(select(Role).order_by(Role.name))).all()
    names = {role.slug: role.name for role in roles}
    values: dict[str, Any] = {
        "title": "Role mappings",
        "section": "mappings",
        "mappings": found,
        "roles": roles,
        "role_names": names,
        "form": form,
        "notice": notice,
    }
    return render(request, "mappings.html", values, status_code=status_code)


@router.get("/console/orgs/{slug}/mappings")
async def mappings_page(
    request: Request, notice: str = "", context: OrgPage = Depends(org_page)
) -> Response:
    return await _page(request, context, MappingForm(), notice=NOTICES.get(notice))


def _validate(form: MappingForm, known_roles: set[str]) -> list[str] | None:
    """Check the form, filling ``form.errors``; return the limited grant's objects."""
    if not form.group.strip():
        form.errors["group"] = (
            "Enter the IdP group's id or name, for example “Dashboard Admins”."
        )
    elif len(form.group.strip()) > 256:
        form.errors["group"] = "The group has more than 256 characters."
    if form.role not in known_roles:
        form.errors["role"] = (
            f"Role {form.role!r} is not in the catalog: choose one from the list."
            if form.role
            else "Choose a role."
        )
    if form.grant not in ("full", "limited"):
        form.errors["grant"] = "Choose a full or a limited grant."
        return None
    if form.grant == "full":
        return None
    objects = [item for item in OBJECT_SEPARATORS.split(form.objects) if item]
    if not objects:
        form.errors["objects"] = (
            "A limited grant needs at least one object id (a course, asset or "
            "learner group), for example course-101."
        )
    return objects


@router.post("/console/orgs/{slug}/mappings")
async def add_mapping(
    request: Request, context: OrgPage = Depends(org_page)
) -> Response:
    submitted = await checked_form(request, context.signed)
    form = MappingForm(
        group=str(submitted.get("group") or ""),
        role=str(submitted.get("role") or ""),
        grant=str(submitted.get("grant") or "full"),
        objects=str(submitted.get("objects") or ""),
    )
    database = database_of(request)
    async with database.read() as session:
        known = set((await session.scalars(select(Role.slug))).all())
    objects = _validate(form, known)
    if form.errors:
        return await _page(request, context, form, status_code=400)
    try:
        async with database.write() as session:
            await mappings.add_mapping(
                session,
                context.org,
                group=form.group,
                role_slug=form.role,
                limited_to=objects,
                actor=context.actor,
            )
    except ConflictError as exc:
        form.errors["group"] = str(exc)
        return await _page(request, context, form, status_code=409)
    except InvalidInputError as exc:
        form.errors["group"] = str(exc)
        return await _page(request, context, form, status_code=400)
    return see_other(f"{context.base_url}/mappings?notice=mapping-added")


async def _find(request: Request, context: OrgPage, mapping_id: int) -> RoleMapping:
    async with database_of(request).read() as session:
        mapping = await session.scalar(
            select(RoleMapping).where(
                RoleMapping.org_id == context.org.id, RoleMapping.id == mapping_id
            )
        )
    if mapping is None:
        raise not_found(f"Mapping {mapping_id}")
    return mapping


@router.get("/console/orgs/{slug}/mappings/{mapping_id}/remove")
async def remove_mapping_page(
    request: Request, mapping_id: int, context: OrgPage = Depends(org_page)
) -> Response:
    """Ask to confirm a removal on a page of its own, for use without JavaScript."""
    mapping = await _find(request, context, mapping_id)
    async with database_of(request).read() as session:
        role_name = await session.scalar(
            select(Role.name).where(Role.slug == mapping.role_slug)
        )
    return render(
        request,
        "confirm.html",
        {
            "title": "Remove mapping",
            "section": "mappings",
            "heading": f"Remove the mapping of group “{mapping.group}” to "
            f"{role_name or mapping.role_slug}?",
            "body": "Members of the group lose the role this mapping grants, "
            "unless another mapping grants it.",
            "action": f"{context.base_url}/mappings/{mapping.id}/remove",
            "button": "Remove mapping",
            "cancel_url": f"{context.base_url}/mappings",
        },
    )


@router.post("/console/orgs/{slug}/mappings/{mapping_id}/remove")
async def remove_mapping(
    request: Request, mapping_id: int, context: OrgPage = Depends(org_page)
) -> Response:
    await checked_form(request, context.signed)
    try:
        async with database_of(request).write() as session:
            await mappings.remove_mapping(
                session, context.org, mapping_id, actor=context.actor
            )
    except NotFoundError:
        raise not_found(f"Mapping {mapping_id}") from None
    return see_other(f"{context.base_url}/mappings?notice=mapping-removed")
