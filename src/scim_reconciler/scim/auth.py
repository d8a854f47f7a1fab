"""Bearer-token authentication of SCIM requests.

Every request looks its token up by hash, so revocation and expiry take effect
on the very next request. The time a token was last used is written at most
once a minute, to keep SCIM reads free of writes, and skipped while the
process's SQLite writes are queued, so that a read does not wait for them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from scim2_models import ForbiddenException, SCIMException
from sqlalchemy import bindparam, or_, select, update

from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import Organization, Plan, ScimToken
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


def bearer_secret(request: Request) -> str:
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


@dataclass(frozen=True)
class TokenState:
    """The columns of a token and its organization that authentication checks."""

    token_id: str
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    org_slug: str
    plan: Plan


def unknown_token(request: Request) -> UnauthorizedError:
    """Return the error for a secret that matches no token."""
    request.state.auth_failure = "unknown"
    return UnauthorizedError(
        detail="the bearer token is not valid: generate a new SCIM token"
    )


async def admit(request: Request, database: Database, state: TokenState) -> None:
    """Check a token found by its secret, and record its use."""
    now = utcnow()
    check_token(request, state, now)
    await record_use(database, state, now)


def check_token(request: Request, state: TokenState, now: datetime) -> None:
    """Raise the SCIM error for a revoked or expired token, or for an
    organization whose plan has no SCIM.

    The reason goes to ``request.state.auth_failure`` for the metrics.
    """
    if state.revoked_at is not None:
        request.state.auth_failure = "revoked"
        raise UnauthorizedError(
            detail="the bearer token was revoked: generate a new SCIM token"
        )
    if state.expires_at <= now:
        request.state.auth_failure = "expired"
        raise UnauthorizedError(
            detail="the bearer token has expired: generate a new SCIM token"
        )
    if not state.plan.allows_scim:
        request.state.auth_failure = "plan"
        raise ForbiddenException(
            detail="SCIM provisioning is not available on the "
            f"{state.plan.value} plan: upgrade the organization to "
            "professional or enterprise"
        )
    request.state.org_slug = state.org_slug


async def record_use(database: Database, state: TokenState, now: datetime) -> None:
    """Write the time of use, unless the stored one is less than a minute old.

    A later request writes it when SQLite's writes were queued this time.
    """
    last_used = state.last_used_at
    if last_used is not None and now - last_used < LAST_USED_RESOLUTION:
        return
    async with database.write_unless_busy() as session:
        if session is None:
            return
        await session.execute(
            update(ScimToken)
            .where(
                ScimToken.id == state.token_id,
                or_(
                    ScimToken.last_used_at.is_(None),
                    ScimToken.last_used_at <= now - LAST_USED_RESOLUTION,
                ),
            )
            .values(last_used_at=now)
        )


async def authenticate(
    request: Request, database: Database, base_url: str
) -> ScimContext:
    secret = bearer_secret(request)
    async with database.read() as session:
        found = (
            await session.execute(_TOKEN_QUERY, {"secret_hash": hash_secret(secret)})
        ).first()
    if found is None:
        raise unknown_token(request)
    token, organization = found
    state = TokenState(
        token_id=token.id,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        org_slug=organization.slug,
        plan=organization.plan,
    )
    await admit(request, database, state)
    return ScimContext(org=organization, token_id=token.id, base_url=base_url)
