"""SCIM bearer tokens: generated once, stored as a hash, revocable.

A token's secret is ``scimr_`` followed by 43 characters of URL-safe base64
(256 random bits). Only its SHA-256 digest is stored, so the secret can be
shown exactly once, when it is created.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import Organization, ScimToken, Source, User
from scim_reconciler.errors import InvalidInputError, NotAllowedError, NotFoundError
from scim_reconciler.services import audit
from scim_reconciler.services.roles_query import user_role_grants

SECRET_PREFIX = "scimr_"
MAX_EXPIRY_DAYS = 3650
OPERATOR = "operator"


class TokenStatus(enum.StrEnum):
    active = "active"
    expired = "expired"
    revoked = "revoked"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_status(token: ScimToken, now: datetime) -> TokenStatus:
    if token.revoked_at is not None:
        return TokenStatus.revoked
    if token.expires_at <= now:
        return TokenStatus.expired
    return TokenStatus.active


@dataclass(frozen=True)
class NewToken:
    token: ScimToken
    secret: str


async def _check_creator(
    session: AsyncSession, organization: Organization, created_by: str
) -> None:
    """Require an active global administrator of the organization, or the operator."""
    if created_by == OPERATOR:
        return
    user = await session.scalar(
        select(User).where(
            User.org_id == organization.id,
            User.user_name_key == created_by.casefold(),
            User.deleted.is_(False),
        )
    )
    if user is None or not user.active:
        raise InvalidInputError(
            f"creator {created_by!r} is not an active user of organization "
            f"{organization.slug!r}: name an active global administrator"
        )
    grants = await user_role_grants(session, organization.id, [user.id])
    if not any(grant.role_slug == "global_admin" for grant in grants.get(user.id, [])):
        raise InvalidInputError(
            f"creator {created_by!r} is not a global administrator of "
            f"organization {organization.slug!r}: only global administrators "
            "can generate SCIM tokens"
        )


async def create_token(
    session: AsyncSession,
    organization: Organization,
    *,
    name: str,
    expires_in_days: int,
    created_by: str = OPERATOR,
    source: Source = Source.admin,
    creator_authenticated: bool = False,
) -> NewToken:
    """Generate a token; the secret is in the result and nowhere else.

    ``created_by`` must be the operator or an active global administrator of
    the organization, unless ``creator_authenticated`` is true because the caller
    authenticated the creator itself (the admin API, with a key).
    """
    if not organization.plan.allows_scim:
        raise NotAllowedError(
            f"organization {organization.slug!r} is on the {organization.plan.value} "
            "plan: SCIM provisioning needs the professional or enterprise plan"
        )
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInputError(
            f"token name {name!r} is not valid: give 1 to 200 characters, "
            'for example "Okta Production"'
        )
    if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise InvalidInputError(
            f"expiration of {expires_in_days} days is not valid: give 1 to "
            f"{MAX_EXPIRY_DAYS} days"
        )
    if not creator_authenticated:
        await _check_creator(session, organization, created_by)

    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = ScimToken(
        id=str(uuid.uuid4()),
        org_id=organization.id,
        name=name,
        secret_hash=hash_secret(secret),
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days),
        last_used_at=None,
        revoked_at=None,
    )
    session.add(token)
    audit.record(
        session,
        org_id=organization.id,
        source=source,
        action="token_created",
        resource_type="ScimToken",
        resource_id=token.id,
        actor=created_by,
        details={"name": name, "expires_at": token.expires_at.isoformat()},
    )
    await session.flush()
    return NewToken(token, secret)


async def list_tokens(
    session: AsyncSession, organization: Organization
) -> list[ScimToken]:
    query = (
        select(ScimToken)
        .where(ScimToken.org_id == organization.id)
        .order_by(ScimToken.created_at)
    )
    return list((await session.scalars(query)).all())


async def revoke_token(
    session: AsyncSession,
    organization: Organization,
    token_id: str,
    *,
    actor: str = OPERATOR,
    source: Source = Source.admin,
) -> ScimToken:
    token = await session.scalar(
        select(ScimToken).where(
            ScimToken.org_id == organization.id, ScimToken.id == token_id
        )
    )
    if token is None:
        raise NotFoundError(
            f"token {token_id!r} not found in organization {organization.slug!r}: "
            f"`scim-reconciler token list {organization.slug}` shows the token ids"
        )
    if token.revoked_at is None and await _set_revoked(session, token):
        audit.record(
            session,
            org_id=organization.id,
            source=source,
            action="token_revoked",
            resource_type="ScimToken",
            resource_id=token.id,
            actor=actor,
            details={"name": token.name},
        )
    return token


async def _set_revoked(session: AsyncSession, token: ScimToken) -> bool:
    """Revoke a token unless a concurrent request did; return whether this did.

    The condition on revoked_at makes concurrent revocations write, and audit,
    once. Either way ``token`` ends with the stored time.
    """
    result = await session.execute(
        update(ScimToken)
        .where(ScimToken.id == token.id, ScimToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.refresh(token, ["revoked_at"])
    changed: int = cast(CursorResult[Any], result).rowcount
    return changed == 1


async def has_valid_token(session: AsyncSession, org_id: int) -> bool:
    now = utcnow()
    found = await session.scalar(
        select(ScimToken.id)
        .where(
            ScimToken.org_id == org_id,
            ScimToken.revoked_at.is_(None),
            ScimToken.expires_at > now,
        )
        .limit(1)
    )
    return found is not None
