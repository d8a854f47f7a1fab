"""SCIM tokens, the role catalog and group-to-role mappings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import select

from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import Role, RoleMapping, ScimToken
from scim_reconciler.errors import NotFoundError
from scim_reconciler.services import mappings, tokens
from scim_reconciler.services.roles import Grant
from scim_reconciler.services.roles_query import role_names

from .dependencies import (
    DatabaseDep,
    OrganizationDep,
    PageDep,
    PrincipalDep,
    SettingsDep,
)
from .organizations import ORG_PATH
from .problems import ApiProblem, problem_responses
from .schemas import (
    MappingCreate,
    MappingOut,
    NewTokenOut,
    Page,
    RoleOut,
    TokenCreate,
    TokenOut,
    slice_page,
)

router = APIRouter()

# Mapping ids are PostgreSQL integers (int4), so a larger id matches nothing
# and must not reach the query, where it fails as out of range.
MAX_MAPPING_ID = 2**31 - 1


def token_out(token: ScimToken) -> TokenOut:
    status = tokens.token_status(token, utcnow())
    return TokenOut(
        id=token.id,
        name=token.name,
        created_by=token.created_by,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        status=status.value,
    )


def mapping_out(mapping: RoleMapping, names: dict[str, str]) -> MappingOut:
    return MappingOut(
        id=mapping.id,
        group=mapping.group,
        role=mapping.role_slug,
        role_name=names.get(mapping.role_slug, mapping.role_slug),
        grant=mapping.grant,
        object_ids=list(mapping.object_ids or []),
        created_at=mapping.created_at,
    )


@router.get(
    ORG_PATH + "/tokens",
    summary="List an organization's SCIM tokens (never their secrets)",
    response_model=Page[TokenOut],
    responses=problem_responses(401, 404, 422, 429),
)
async def list_tokens(
    organization: OrganizationDep, database: DatabaseDep, page: PageDep
) -> Page[TokenOut]:
    async with database.read() as session:
        found = await tokens.list_tokens(session, organization)
    items = [token_out(token) for token in found]
    return slice_page(items, page.offset, page.limit)


@router.post(
    ORG_PATH + "/tokens",
    summary="Create a SCIM token; its secret is returned only once",
    status_code=201,
    response_model=NewTokenOut,
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def create_token(
    body: TokenCreate,
    organization: OrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
    response: Response,
) -> NewTokenOut:
    async with database.write() as session:
        new = await tokens.create_token(
            session,
            organization,
            name=body.name,
            expires_in_days=body.expires_in_days,
            created_by=principal.name,
            creator_authenticated=True,
        )
    response.headers["Location"] = (
        f"/admin/v1/organizations/{organization.slug}/tokens/{new.token.id}"
    )
    shown = token_out(new.token)
    return NewTokenOut(
        **shown.model_dump(), secret=new.secret, scim_base_url=settings.scim_base_url
    )


@router.delete(
    ORG_PATH + "/tokens/{token_id}",
    summary="Revoke a SCIM token; it fails from the next SCIM request on",
    response_model=TokenOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def revoke_token(
    token_id: str,
    organization: OrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> TokenOut:
    try:
        async with database.write() as session:
            revoked = await tokens.revoke_token(
                session, organization, token_id, actor=principal.name
            )
    except NotFoundError:
        raise ApiProblem(
            404,
            "not-found",
            f"token {token_id!r} not found in organization {organization.slug!r}: "
            "list the tokens to find its id",
        ) from None
    return token_out(revoked)


@router.get(
    "/roles",
    summary="List the dashboard role catalog",
    response_model=Page[RoleOut],
    responses=problem_responses(401, 422, 429),
)
async def list_roles(
    _principal: PrincipalDep, database: DatabaseDep, page: PageDep
) -> Page[RoleOut]:
    async with database.read() as session:
        roles = (await session.scalars(select(Role).order_by(Role.slug))).all()
    items = [RoleOut(slug=role.slug, name=role.name) for role in roles]
    return slice_page(items, page.offset, page.limit)


@router.get(
    ORG_PATH + "/mappings",
    summary="List an organization's group-to-role mappings",
    response_model=Page[MappingOut],
    responses=problem_responses(401, 404, 422, 429),
)
async def list_mappings(
    organization: OrganizationDep, database: DatabaseDep, page: PageDep
) -> Page[MappingOut]:
    async with database.read() as session:
        found = await mappings.list_mappings(session, organization)
        names = await role_names(session)
    items = [mapping_out(mapping, names) for mapping in found]
    return slice_page(items, page.offset, page.limit)


@router.post(
    ORG_PATH + "/mappings",
    summary="Map an IdP group to a dashboard role",
    status_code=201,
    response_model=MappingOut,
    responses=problem_responses(401, 404, 409, 422, 429),
)
async def add_mapping(
    body: MappingCreate,
    organization: OrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
    response: Response,
) -> MappingOut:
    async with database.write() as session:
        mapping = await mappings.add_mapping(
            session,
            organization,
            group=body.group,
            role_slug=body.role,
            limited_to=body.object_ids if body.grant is Grant.limited else None,
            actor=principal.name,
        )
        names = await role_names(session)
    response.headers["Location"] = (
        f"/admin/v1/organizations/{organization.slug}/mappings/{mapping.id}"
    )
    return mapping_out(mapping, names)


@router.delete(
    ORG_PATH + "/mappings/{mapping_id}",
    summary="Remove a group-to-role mapping",
    response_model=MappingOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def remove_mapping(
    mapping_id: Annotated[int, Path(le=MAX_MAPPING_ID)],
    organization: OrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> MappingOut:
    try:
        async with database.write() as session:
            removed = await mappings.remove_mapping(
                session, organization, mapping_id, actor=principal.name
            )
            names = await role_names(session)
    except NotFoundError:
        raise ApiProblem(
            404,
            "not-found",
            f"mapping {mapping_id} not found in organization "
            f"{organization.slug!r}: list the mappings to find its id",
        ) from None
    return mapping_out(removed, names)
