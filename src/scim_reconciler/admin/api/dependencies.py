"""Dependencies of the admin API: the database, the principal and the organization.

Authentication reads ``Authorization: Bearer KEY``, an operator key or an
organization admin credential. Failures are counted per client address by the
application's sign-in throttle, the same one the console uses, and an address
over the limit gets 429 until its oldest failure leaves the window.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.admin.principal import (
    LAST_USED_RESOLUTION,
    Principal,
    authenticate_secret,
    record_use,
)
from scim_reconciler.admin.throttle import SignInThrottle
from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AdminCredential, Organization
from scim_reconciler.reconcile.runs import Reconciler
from scim_reconciler.services.reports import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from scim_reconciler.settings import Settings

from .problems import ApiProblem

logger = logging.getLogger(__name__)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="admin"'}


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_reconciler(request: Request) -> Reconciler:
    reconciler: Reconciler = request.app.state.reconciler
    return reconciler


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _bearer(request: Request) -> str:
    headers = request.headers.getlist("authorization")
    if len(headers) > 1:
        # Authorization carries one credential, and which of several headers a
        # proxy or framework reads is not defined, so none of them counts.
        raise ApiProblem(
            401,
            "unauthorized",
            f"the request has {len(headers)} Authorization headers: send exactly "
            "one, 'Authorization: Bearer KEY'",
            headers=CHALLENGE,
        )
    header = headers[0] if headers else None
    if not header:
        raise ApiProblem(
            401,
            "unauthorized",
            "missing Authorization header: send 'Authorization: Bearer KEY' with "
            "an operator key or an organization admin credential",
            headers=CHALLENGE,
        )
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiProblem(
            401,
            "unauthorized",
            "the Authorization header must use the Bearer scheme: "
            "'Authorization: Bearer KEY'",
            headers=CHALLENGE,
        )
    return secret.strip()


async def authenticate(
    request: Request, database: DatabaseDep, settings: SettingsDep
) -> Principal:
    """Return the principal of the request's key, or raise 401 or 429."""
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    client = _client(request)
    _check_throttle(throttle, client)
    secret = _bearer(request)
    async with database.read() as session:
        principal = await authenticate_secret(session, settings, secret)
        stale = principal is not None and await _use_is_stale(session, principal)

    # Requests sent at once all pass the check above before any of them fails,
    # so check again: failures counted meanwhile turn this response into 429,
    # valid key or not, so at most sign_in_max_failures keys get 200 or 401.
    if principal is None:
        blocked = throttle.retry_after(client)
        throttle.failed(client)
        if blocked is not None:
            raise _too_many(client, blocked)
        # The key is never logged, not even in part.
        logger.warning(
            "Admin API authentication failed from %s on %s %s",
            client,
            request.method,
            request.url.path,
        )
        raise ApiProblem(
            401,
            "unauthorized",
            "the bearer key is not valid: use an operator key or an organization "
            "admin credential that has not been revoked",
            headers=CHALLENGE,
        )
    _check_throttle(throttle, client)
    throttle.succeeded(client)
    if stale:
        async with database.write() as session:
            await record_use(session, principal)
    return principal


def _too_many(client: str, wait: float) -> ApiProblem:
    seconds = math.ceil(wait)
    return ApiProblem(
        429,
        "too-many-requests",
        f"too many failed authentications from {client}: wait {seconds} "
        "seconds, then try again with a valid key",
        headers={"Retry-After": str(seconds)},
    )


def _check_throttle(throttle: SignInThrottle, client: str) -> None:
    wait = throttle.retry_after(client)
    if wait is not None:
        raise _too_many(client, wait)


async def _use_is_stale(session: AsyncSession, principal: Principal) -> bool:
    """Check whether record_use would write, saving a write transaction if not."""
    if principal.credential_id is None:
        return False
    last_used = await session.scalar(
        select(AdminCredential.last_used_at).where(
            AdminCredential.id == principal.credential_id
        )
    )
    return last_used is None or last_used < utcnow() - LAST_USED_RESOLUTION


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require_operator(principal: PrincipalDep) -> Principal:
    if not principal.is_operator:
        raise ApiProblem(
            403,
            "forbidden",
            "only an operator key may do this: an organization admin credential "
            "administers its own organization only",
        )
    return principal


OperatorDep = Annotated[Principal, Depends(require_operator)]

OrgSlug = Annotated[
    str,
    Path(
        alias="org",
        description="The organization's slug.",
        min_length=1,
        max_length=64,
    ),
]


async def visible_organization(
    principal: PrincipalDep, database: DatabaseDep, slug: OrgSlug
) -> Organization:
    """Load the organization of the path; 404 if it is missing or not the key's."""
    async with database.read() as session:
        organization = await session.scalar(select(Organization).filter_by(slug=slug))
    # The same response for both, so an organization admin learns nothing about
    # organizations that are not its own.
    if organization is None or not principal.sees(organization.id):
        raise ApiProblem(
            404,
            "not-found",
            f"organization {slug!r} not found: check the slug in the path",
        )
    return organization


OrganizationDep = Annotated[Organization, Depends(visible_organization)]


async def operator_organization(
    organization: OrganizationDep, principal: PrincipalDep
) -> Organization:
    """Load the organization of the path for operators; 403 for its own admin."""
    require_operator(principal)
    return organization


OperatorOrganizationDep = Annotated[Organization, Depends(operator_organization)]


# The largest OFFSET that SQLite and PostgreSQL take: a signed 64-bit integer.
MAX_OFFSET = 2**63 - 1


@dataclass(frozen=True)
class PageRequest:
    offset: int
    limit: int


def page_request(
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_OFFSET,
            description="Items to skip from the start of the list.",
        ),
    ] = 0,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_PAGE_SIZE,
            description=f"Items to return, at most {MAX_PAGE_SIZE}.",
        ),
    ] = DEFAULT_PAGE_SIZE,
) -> PageRequest:
    return PageRequest(offset, limit)


PageDep = Annotated[PageRequest, Depends(page_request)]


def reject_nul_characters(request: Request) -> None:
    """Reject a path or query that contains U+0000 (%00), with 422.

    PostgreSQL text cannot contain it, so it must not reach a query, and no
    slug, id or search does.
    """
    if "\x00" in request.url.path:
        raise ApiProblem(
            422,
            "invalid-input",
            "the path contains a NUL character (%00): no slug or id contains "
            "one, so remove it",
        )
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise ApiProblem(
                422,
                "invalid-input",
                f"query.{name.replace(chr(0), '%00')}: contains a NUL character "
                "(%00): remove it",
            )
