"""Bearer-token authentication of SCIM requests.

Every request looks its token up by hash, so revocation and expiry take effect
on the very next request. The time a token was last used is written at most
once a minute, to keep SCIM reads free of writes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import Request
from scim2_models import ForbiddenException, SCIMException
from sqlalchemy import bindparam, or_, select, update

from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import Organization, ScimToken
from scim_reconciler.scim.context import ScimContext
from scim_reconciler.services.tokens import hash_secret

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)

# Built once, because every SCIM request runs it: SQLAlchemy caches the compiled
# SQL, but building the statement object again costs CPU time on each request.
_TOKEN_QUERY = (
    select(ScimToken, Organization)
    .join(Organization, Organization.id == ScimToken.org_id)
    .where(ScimToken.secret_hash == bindparam("secret_hash"))
)


class UnauthorizedError(SCIMException):
    status = 401
    scim_type = ""
    _default_detail = "authentication failed"


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise UnauthorizedError(
            detail="missing Authorization header: send 'Authorization: Bearer TOKEN' "
            "with a SCIM token of the organization"
        )
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise UnauthorizedError(
            detail="the Authorization header must use the Bearer scheme: "
            "'Authorization: Bearer TOKEN'"
        )
    return secret.strip()


async def authenticate(
    request: Request, database: Database, base_url: str
) -> ScimContext:
    secret = _bearer(request)
    now = utcnow()
    async with database.read() as session:
        found = (
            await session.execute(_TOKEN_QUERY, {"secret_hash": hash_secret(secret)})
        ).first()
    if found is None:
        request.state.auth_failure = "unknown"
        raise UnauthorizedError(
            detail="the bearer token is not valid: generate a new SCIM token"
        )
    token, organization = found
    if token.revoked_at is not None:
        request.state.auth_failure = "revoked"
        raise UnauthorizedError(
            detail="the bearer token was revoked: generate a new SCIM token"
        )
    if token.expires_at <= now:
        request.state.auth_failure = "expired"
        raise UnauthorizedError(
            detail="the bearer token has expired: generate a new SCIM token"
        )
    if not organization.plan.allows_scim:
        request.state.auth_failure = "plan"
        raise ForbiddenException(
            detail="SCIM provisioning is not available on the "
            f"{organization.plan.value} plan: upgrade the organization to "
            "professional or enterprise"
        )
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        async with database.write() as session:
            await session.execute(
                update(ScimToken)
                .where(
                    ScimToken.id == token.id,
                    or_(
                        ScimToken.last_used_at.is_(None),
                        ScimToken.last_used_at <= now - LAST_USED_RESOLUTION,
                    ),
                )
                .values(last_used_at=now)
            )
    request.state.org_slug = organization.slug
    return ScimContext(org=organization, token_id=token.id, base_url=base_url)
