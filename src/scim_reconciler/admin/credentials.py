"""Organization admin credentials: generated once, stored as a hash, revocable.

A credential's secret is ``scimr_admin_`` followed by 43 characters of URL-safe
base64 (256 random bits). Only its SHA-256 digest is stored, so the secret is
shown exactly once, when it is created. Revoking a credential ends the console
sessions it opened and refuses it on the next admin API request.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import (
    AdminCredential,
    AdminSession,
    Organization,
    Source,
)
from scim_reconciler.errors import InvalidInputError, NotFoundError
from scim_reconciler.services import audit
from scim_reconciler.services.tokens import hash_secret

SECRET_PREFIX = "scimr_admin_"
OPERATOR = "operator"


@dataclass(frozen=True)
class NewCredential:
    credential: AdminCredential
    secret: str


async def create_credential(
    session: AsyncSession,
    organization: Organization,
    *,
    name: str,
    created_by: str = OPERATOR,
    source: Source = Source.admin,
) -> NewCredential:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInputError(
            f"credential name {name!r} is not valid: give 1 to 200 characters, "
            'for example "Ada Lovelace"'
        )
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    credential = AdminCredential(
        id=str(uuid.uuid4()),
        org_id=organization.id,
        name=name,
        secret_hash=hash_secret(secret),
        created_by=created_by,
        created_at=utcnow(),
        last_used_at=None,
        revoked_at=None,
    )
    session.add(credential)
    audit.record(
        session,
        org_id=organization.id,
        source=source,
        action="admin_credential_created",
        resource_type="AdminCredential",
        resource_id=credential.id,
        actor=created_by,
        details={"name": name},
    )
    await session.flush()
    return NewCredential(credential, secret)


async def list_credentials(
    session: AsyncSession, organization: Organization
) -> list[AdminCredential]:
    query = (
        select(AdminCredential)
        .where(AdminCredential.org_id == organization.id)
        .order_by(AdminCredential.created_at)
    )
    return list((await session.scalars(query)).all())


async def revoke_credential(
    session: AsyncSession,
    organization: Organization,
    credential_id: str,
    *,
    actor: str = OPERATOR,
    source: Source = Source.admin,
) -> AdminCredential:
    credential = await session.scalar(
        select(AdminCredential).where(
            AdminCredential.org_id == organization.id,
            AdminCredential.id == credential_id,
        )
    )
    if credential is None:
        raise NotFoundError(
            f"admin credential {credential_id!r} not found in organization "
            f"{organization.slug!r}: `scim-reconciler admin-key list "
            f"{organization.slug}` shows the credential ids"
        )
    if credential.revoked_at is None and await _set_revoked(session, credential):
        await session.execute(
            delete(AdminSession).where(AdminSession.credential_id == credential.id)
        )
        audit.record(
            session,
            org_id=organization.id,
            source=source,
            action="admin_credential_revoked",
            resource_type="AdminCredential",
            resource_id=credential.id,
            actor=actor,
            details={"name": credential.name},
        )
    return credential


async def _set_revoked(session: AsyncSession, credential: AdminCredential) -> bool:
    """Revoke a credential unless a concurrent request did; return whether this did.

    The condition on revoked_at makes concurrent revocations write, and audit,
    once. Either way ``credential`` ends with the stored time.
    """
    result = await session.execute(
        update(AdminCredential)
        .where(
            AdminCredential.id == credential.id,
            AdminCredential.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.refresh(credential, ["revoked_at"])
    changed: int = cast(CursorResult[Any], result).rowcount
    return changed == 1
