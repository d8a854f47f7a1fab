"""Console sessions, kept on the server.

The session cookie contains 256 random bits; the store keeps only their SHA-256
digest, the principal and the session's CSRF token. A session ends when it
expires, when its admin signs out, when its organization admin credential is
revoked, or when its operator key leaves the ``operator_key_hashes`` setting.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.admin.principal import (
    Principal,
    credential_principal,
    is_operator_key_hash,
    operator_principal,
)
from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import AdminSession
from scim_reconciler.services.tokens import hash_secret
from scim_reconciler.settings import Settings


@dataclass(frozen=True)
class StartedSession:
    cookie_value: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class LoadedSession:
    principal: Principal
    csrf_token: str
    expires_at: datetime


async def start_session(
    session: AsyncSession, principal: Principal, *, lifetime: timedelta
) -> StartedSession:
    now = utcnow()
    # Expired sessions go here rather than in a job of their own: sign-ins are
    # rare enough that this costs nothing, and often enough to keep the table small.
    await session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
    cookie_value = secrets.token_urlsafe(32)
    stored = AdminSession(
        id_hash=hash_secret(cookie_value),
        kind=principal.kind,
        actor=principal.name,
        org_id=principal.org_id,
        credential_id=principal.credential_id,
        key_hash=principal.key_hash,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(stored)
    await session.flush()
    return StartedSession(cookie_value, stored.csrf_token, stored.expires_at)


async def load_session(
    session: AsyncSession, settings: Settings, cookie_value: str
) -> LoadedSession | None:
    """Return the session a cookie names, or None when it is unknown or ended."""
    if not cookie_value:
        return None
    stored = await session.scalar(
        select(AdminSession).where(AdminSession.id_hash == hash_secret(cookie_value))
    )
    if stored is None or stored.expires_at <= utcnow():
        return None
    principal: Principal | None
    if stored.kind == "operator":
        key_hash = stored.key_hash or ""
        principal = (
            operator_principal(key_hash)
            if is_operator_key_hash(settings, key_hash)
            else None
        )
    else:
        principal = await credential_principal(session, stored.credential_id or "")
    if principal is None:
        return None
    return LoadedSession(principal, stored.csrf_token, stored.expires_at)


async def end_session(session: AsyncSession, cookie_value: str) -> None:
    await session.execute(
        delete(AdminSession).where(AdminSession.id_hash == hash_secret(cookie_value))
    )
