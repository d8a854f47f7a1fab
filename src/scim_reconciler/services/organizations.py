"""Organizations: create, list, find, change plan."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import Organization, Plan, Source
from scim_reconciler.errors import ConflictError, InvalidInputError, NotFoundError
from scim_reconciler.services import audit

OPERATOR = "operator"
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def parse_plan(value: str) -> Plan:
    try:
        return Plan(value.lower())
    except ValueError:
        choices = ", ".join(plan.value for plan in Plan)
        raise InvalidInputError(
            f"plan {value!r} is not valid: choose one of {choices}"
        ) from None


async def create_organization(
    session: AsyncSession, slug: str, name: str, plan: Plan, *, actor: str = OPERATOR
) -> Organization:
    if not SLUG_PATTERN.match(slug):
        raise InvalidInputError(
            f"organization slug {slug!r} is not valid: use 1 to 63 lower-case "
            "letters, digits and hyphens, starting with a letter or digit"
        )
    if not name.strip():
        raise InvalidInputError("organization name is empty: give --name")
    existing = await session.scalar(select(Organization).filter_by(slug=slug))
    if existing is not None:
        raise ConflictError(f"organization {slug!r} exists already")
    organization = Organization(
        slug=slug, name=name.strip(), plan=plan, created_at=utcnow()
    )
    session.add(organization)
    try:
        await session.flush()
    except IntegrityError:
        # A concurrent request created the same slug after the check above.
        raise ConflictError(f"organization {slug!r} exists already") from None
    audit.record(
        session,
        org_id=organization.id,
        source=Source.admin,
        action="organization_created",
        resource_type="Organization",
        resource_id=organization.slug,
        actor=actor,
        details={"name": organization.name, "plan": plan.value},
    )
    return organization


async def get_organization(session: AsyncSession, slug: str) -> Organization:
    organization = await session.scalar(select(Organization).filter_by(slug=slug))
    if organization is None:
        raise NotFoundError(
            f"organization {slug!r} not found: `scim-reconciler org list` shows "
            "the existing ones"
        )
    return organization


async def list_organizations(session: AsyncSession) -> list[Organization]:
    return list((await session.scalars(select(Organization).order_by("slug"))).all())


async def change_plan(
    session: AsyncSession, slug: str, plan: Plan, *, actor: str = OPERATOR
) -> Organization:
    organization = await get_organization(session, slug)
    before = organization.plan
    organization.plan = plan
    if plan is not before:
        audit.record(
            session,
            org_id=organization.id,
            source=Source.admin,
            action="plan_changed",
            resource_type="Organization",
            resource_id=organization.slug,
            actor=actor,
            details={"before": before.value, "after": plan.value},
        )
    return organization
