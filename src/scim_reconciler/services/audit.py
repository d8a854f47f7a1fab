"""The audit log: one event per change, whatever its source."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import AuditEvent, Source


def record(
    session: AsyncSession,
    *,
    org_id: int,
    source: Source,
    action: str,
    resource_type: str,
    resource_id: str | None,
    actor: str | None,
    details: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> None:
    """Add an audit event to the session's transaction."""
    session.add(
        AuditEvent(
            org_id=org_id,
            at=utcnow(),
            source=source,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            actor=actor,
            run_id=run_id,
            details=details or {},
        )
    )
