"""The administrator behind an admin API request or a console session.

Two kinds sign in. An operator has a key whose SHA-256 hash is listed in the
``operator_key_hashes`` setting and administers every organization. An
organization admin has a credential stored for one organization and
administers that organization only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import AdminCredential, Organization
from scim_reconciler.services.tokens import hash_secret
from scim_reconciler.settings import Settings

OPERATOR_KEY_PREFIX = "scimr_op_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    kind: Literal["operator", "org_admin"]
    # The actor that audit events record.
    name: str
    # The organization of an organization admin; None for operators.
    org_id: int | None
    org_slug: str | None
    # What signed in: the credential id of an organization admin, or the hash of
    # an operator key. A session ends when either stops being valid.
    credential_id: str | None = None
    key_hash: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    def sees(self, org_id: int) -> bool:
        return self.is_operator or self.org_id == org_id


def new_operator_key() -> tuple[str, str]:
    """Generate an operator key and the hash to list in ``operator_key_hashes``."""
    key = OPERATOR_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, operator_key_hash(key)


def operator_key_hash(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def operator_principal(key_hash: str) -> Principal:
    # Names the key by the start of its hash, so audit events tell keys apart
    # without holding anything that helps to guess the key.
    return Principal(
        kind="operator",
        name=f"operator:{key_hash.removeprefix('sha256:')[:8]}",
        org_id=None,
        org_slug=None,
        key_hash=key_hash,
    )


def is_operator_key_hash(settings: Settings, key_hash: str) -> bool:
    return any(
        hmac.compare_digest(key_hash, listed) for listed in settings.operator_key_hashes
    )


async def credential_principal(
    session: AsyncSession, credential_id: str
) -> Principal | None:
    """Return the organization admin of a credential, or None once it is revoked."""
    found = (
        await session.execute(
            select(AdminCredential, Organization)
            .join(Organization, Organization.id == AdminCredential.org_id)
            .where(AdminCredential.id == credential_id)
        )
    ).first()
    if found is None:
        return None
    credential, organization = found
    if credential.revoked_at is not None:
        return None
    return Principal(
        kind="org_admin",
        name=f"admin:{credential.name}",
        org_id=organization.id,
        org_slug=organization.slug,
        credential_id=credential.id,
    )


async def authenticate_secret(
    session: AsyncSession, settings: Settings, secret: str
) -> Principal | None:
    """Return the principal a secret signs in, or None when it is invalid."""
    secret = secret.strip()
    if not secret:
        return None
    key_hash = operator_key_hash(secret)
    if is_operator_key_hash(settings, key_hash):
        return operator_principal(key_hash)
    credential_id = await session.scalar(
        select(AdminCredential.id).where(
            AdminCredential.secret_hash == hash_secret(secret)
        )
    )
    if credential_id is None:
        return None
    return await credential_principal(session, credential_id)


async def record_use(session: AsyncSession, principal: Principal) -> None:
    """Record when a credential was last used; the update skips uses less than
    LAST_USED_RESOLUTION after the recorded one."""
    if principal.credential_id is None:
        return
    now = utcnow()
    await session.execute(
        update(AdminCredential)
        .where(
            AdminCredential.id == principal.credential_id,
            or_(
                AdminCredential.last_used_at.is_(None),
                AdminCredential.last_used_at < now - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=now)
    )
