"""Organizations, their plans, and their admin credentials (operators only)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import func, select

from scim_reconciler.admin import credentials
from scim_reconciler.db.models import AdminCredential, Organization
from scim_reconciler.errors import NotFoundError
from scim_reconciler.services import organizations

from .dependencies import (
    DatabaseDep,
    OperatorDep,
    OperatorOrganizationDep,
    OrganizationDep,
    PageDep,
    PrincipalDep,
    SettingsDep,
)
from .problems import ApiProblem, problem_responses
from .schemas import (
    CredentialCreate,
    CredentialOut,
    NewCredentialOut,
    OrganizationCreate,
    OrganizationOut,
    OrganizationUpdate,
    Page,
    PrincipalOut,
    page_of,
    slice_page,
)

router = APIRouter()

ORG_PATH = "/organizations/{org}"


def organization_out(organization: Organization, scim_base_url: str) -> OrganizationOut:
    return OrganizationOut(
        slug=organization.slug,
        name=organization.name,
        plan=organization.plan,
        scim_enabled=organization.plan.allows_scim,
        scim_base_url=scim_base_url,
        created_at=organization.created_at,
    )


def credential_out(credential: AdminCredential) -> CredentialOut:
    return CredentialOut(
        id=credential.id,
        name=credential.name,
        created_by=credential.created_by,
        created_at=credential.created_at,
        last_used_at=credential.last_used_at,
        revoked_at=credential.revoked_at,
        status="revoked" if credential.revoked_at is not None else "active",
    )


@router.get(
    "/me",
    summary="Show who the key signs in",
    response_model=PrincipalOut,
    responses=problem_responses(401, 429),
)
async def show_me(principal: PrincipalDep) -> PrincipalOut:
    return PrincipalOut(
        kind=principal.kind, name=principal.name, organization=principal.org_slug
    )


@router.get(
    "/organizations",
    summary="List every organization (operators only)",
    response_model=Page[OrganizationOut],
    responses=problem_responses(401, 403, 422, 429),
)
async def list_organizations(
    _operator: OperatorDep,
    database: DatabaseDep,
    settings: SettingsDep,
    page: PageDep,
) -> Page[OrganizationOut]:
    async with database.read() as session:
        total = await session.scalar(select(func.count()).select_from(Organization))
        rows = (
            await session.scalars(
                select(Organization)
                .order_by(Organization.slug)
                .offset(page.offset)
                .limit(page.limit)
            )
        ).all()
    items = [organization_out(row, settings.scim_base_url) for row in rows]
    return page_of(items, total or 0, page.offset, page.limit)


@router.post(
    "/organizations",
    summary="Create an organization (operators only)",
    status_code=201,
    response_model=OrganizationOut,
    responses=problem_responses(401, 403, 409, 422, 429),
)
async def create_organization(
    body: OrganizationCreate,
    principal: OperatorDep,
    database: DatabaseDep,
    settings: SettingsDep,
    response: Response,
) -> OrganizationOut:
    async with database.write() as session:
        organization = await organizations.create_organization(
            session, body.slug, body.name, body.plan, actor=principal.name
        )
    response.headers["Location"] = f"/admin/v1/organizations/{organization.slug}"
    return organization_out(organization, settings.scim_base_url)


@router.get(
    ORG_PATH,
    summary="Show an organization",
    response_model=OrganizationOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def show_organization(
    organization: OrganizationDep, settings: SettingsDep
) -> OrganizationOut:
    return organization_out(organization, settings.scim_base_url)


@router.patch(
    ORG_PATH,
    summary="Change an organization's plan (operators only)",
    response_model=OrganizationOut,
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def update_organization(
    body: OrganizationUpdate,
    organization: OperatorOrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> OrganizationOut:
    async with database.write() as session:
        changed = await organizations.change_plan(
            session, organization.slug, body.plan, actor=principal.name
        )
    return organization_out(changed, settings.scim_base_url)


@router.get(
    ORG_PATH + "/admin-credentials",
    summary="List an organization's admin credentials (operators only)",
    response_model=Page[CredentialOut],
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def list_admin_credentials(
    organization: OperatorOrganizationDep, database: DatabaseDep, page: PageDep
) -> Page[CredentialOut]:
    async with database.read() as session:
        found = await credentials.list_credentials(session, organization)
    items = [credential_out(row) for row in found]
    return slice_page(items, page.offset, page.limit)


@router.post(
    ORG_PATH + "/admin-credentials",
    summary="Create an admin credential; its secret is returned only once "
    "(operators only)",
    status_code=201,
    response_model=NewCredentialOut,
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def create_admin_credential(
    body: CredentialCreate,
    organization: OperatorOrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
    response: Response,
) -> NewCredentialOut:
    async with database.write() as session:
        new = await credentials.create_credential(
            session, organization, name=body.name, created_by=principal.name
        )
    response.headers["Location"] = (
        f"/admin/v1/organizations/{organization.slug}/admin-credentials/"
        f"{new.credential.id}"
    )
    shown = credential_out(new.credential)
    return NewCredentialOut(**shown.model_dump(), secret=new.secret)


@router.delete(
    ORG_PATH + "/admin-credentials/{credential_id}",
    summary="Revoke an admin credential (operators only)",
    response_model=CredentialOut,
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def revoke_admin_credential(
    credential_id: str,
    organization: OperatorOrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> CredentialOut:
    try:
        async with database.write() as session:
            revoked = await credentials.revoke_credential(
                session, organization, credential_id, actor=principal.name
            )
    except NotFoundError:
        raise ApiProblem(
            404,
            "not-found",
            f"admin credential {credential_id!r} not found in organization "
            f"{organization.slug!r}: list the credentials to find its id",
        ) from None
    return credential_out(revoked)
