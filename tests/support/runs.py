"""Helpers for tests of reconciliation runs against a real store.

An organization reconciled here reads a directory file whose groups are
"Dashboard Admins" (00g1, mapped by name to global_admin) and "Analysts" (00g2,
mapped by id to analytics_admin). IdP user ``n`` has id ``00u<n>`` and userName
``user<n>@example.com``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    AuditEvent,
    ConnectorConfig,
    Group,
    GroupMember,
    Organization,
    Source,
    User,
)
from scim_reconciler.reconcile.connectors.registry import parse_config
from scim_reconciler.services.mappings import add_mapping

ADMINS = ("00g1", "Dashboard Admins")
ANALYSTS = ("00g2", "Analysts")
MAPPINGS = (("Dashboard Admins", "global_admin"), ("00g2", "analytics_admin"))


def user_name(number: int) -> str:
    return f"user{number}@example.com"


def idp_user(number: int, **changes: Any) -> dict[str, Any]:
    """Return IdP user ``00u<number>`` as a directory file lists it."""
    entry: dict[str, Any] = {
        "id": f"00u{number}",
        "userName": user_name(number),
        "email": user_name(number),
        "givenName": "Given",
        "familyName": f"Family{number}",
        "active": True,
    }
    entry.update(changes)
    return entry


def write_directory(
    path: Path,
    admins: Iterable[int],
    analysts: Iterable[int] = (),
    *,
    users: Sequence[dict[str, Any]] | None = None,
) -> Path:
    """Write a directory file with the two groups; users default to the members."""
    admins, analysts = list(admins), list(analysts)
    if users is None:
        users = [idp_user(number) for number in sorted({*admins, *analysts})]
    groups = [
        {"id": ADMINS[0], "name": ADMINS[1], "members": [f"00u{n}" for n in admins]},
        {
            "id": ANALYSTS[0],
            "name": ANALYSTS[1],
            "members": [f"00u{n}" for n in analysts],
        },
    ]
    path.write_text(json.dumps({"users": list(users), "groups": groups}))
    return path


async def configure(
    database: Database,
    org: Organization,
    directory: Path,
    *,
    mappings: Sequence[tuple[str, str]] = MAPPINGS,
    **run_settings: Any,
) -> None:
    """Give the organization a file connector and the group-to-role mappings.

    ``run_settings`` are the connector's run settings (``max_deactivations``,
    ``interval_seconds`` and so on); deactivation limits default to none.
    """
    limits = {"max_deactivations": 1000, "max_deactivation_percent": 100.0}
    raw = {"kind": "file", "path": str(directory), **limits, **run_settings}
    parsed = parse_config(raw, None)
    async with database.write() as session:
        row = await session.get(ConnectorConfig, org.id)
        if row is None:
            row = ConnectorConfig(org_id=org.id)
            session.add(row)
        row.kind = parsed.kind
        row.config = parsed.config
        row.enabled = parsed.run.enabled
        row.interval_seconds = parsed.run.interval_seconds
        row.jitter_seconds = parsed.run.jitter_seconds
        row.max_deactivations = parsed.run.max_deactivations
        row.max_deactivation_percent = parsed.run.max_deactivation_percent
        row.updated_at = utcnow()
        stored = await session.get(Organization, org.id)
        assert stored is not None
        for group, role in mappings:
            await add_mapping(session, stored, group=group, role_slug=role)


@dataclass(frozen=True)
class StoredAccount:
    id: str
    user_name: str
    active: bool
    given_name: str | None
    family_name: str | None
    version: int


async def accounts(database: Database, org_id: int) -> dict[str, StoredAccount]:
    """Return the organization's users by userName."""
    async with database.read() as session:
        rows = await session.execute(
            select(
                User.id,
                User.user_name,
                User.active,
                User.given_name,
                User.family_name,
                User.version,
            ).where(User.org_id == org_id)
        )
        return {row.user_name: StoredAccount(*row) for row in rows}


async def members_of(database: Database, org_id: int, name: str) -> set[str]:
    """Return the userNames of the stored group's members."""
    async with database.read() as session:
        rows = await session.scalars(
            select(User.user_name)
            .join(GroupMember, GroupMember.user_id == User.id)
            .join(Group, Group.id == GroupMember.group_id)
            .where(Group.org_id == org_id, Group.display_name == name)
        )
        return set(rows.all())


@dataclass(frozen=True)
class StoreFootprint:
    """Counts and version sums that any write to users or groups would move."""

    users: int
    user_versions: int
    groups: int
    group_versions: int
    memberships: int
    audit_events: int


async def footprint(database: Database, org_id: int) -> StoreFootprint:
    async with database.read() as session:
        users = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(User.version), 0)).where(
                    User.org_id == org_id
                )
            )
        ).one()
        groups = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(Group.version), 0)).where(
                    Group.org_id == org_id
                )
            )
        ).one()
        memberships = await session.scalar(
            select(func.count())
            .select_from(GroupMember)
            .join(Group, Group.id == GroupMember.group_id)
            .where(Group.org_id == org_id)
        )
        audit_events = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.org_id == org_id, AuditEvent.source == Source.reconcile)
        )
    return StoreFootprint(
        users=users[0],
        user_versions=users[1],
        groups=groups[0],
        group_versions=groups[1],
        memberships=memberships or 0,
        audit_events=audit_events or 0,
    )
