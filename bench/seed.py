"""Fill a scim-reconciler store with one organization, a token and many users.

Users go in by bulk INSERT, not by SCIM POST, to seed 100,000 of them in about
a minute. Each row is still built by the service's own code for a SCIM create
(tolerant normalization, model validation, ``_extract`` and ``_apply_fields``),
so the stored columns and ``attributes`` document are what a POST would write.
A POST also writes one audit event per user; the seed writes none, and SCIM
requests never read the audit log.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from scim2_models import Context
from sqlalchemy import insert, text

from bench.workload import user_body
from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database, open_database
from scim_reconciler.db.migrate import migrate, sync_role_catalog
from scim_reconciler.db.models import ManagedBy, Plan, User, UserEmail
from scim_reconciler.scim import tolerant
from scim_reconciler.scim.users import _apply_fields, _extract, _validate
from scim_reconciler.services import organizations, tokens
from scim_reconciler.settings import Settings
from scim_reconciler.text import comparison_key

logger = logging.getLogger(__name__)

ORG_SLUG = "bench"
BATCH_SIZE = 2000
_USER_COLUMNS = [column.key for column in User.__table__.columns]


def _rows(
    index: int, org_id: int, users_url: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build the rows that a SCIM create of seeded user ``index`` writes."""
    body = tolerant.normalize_user(user_body(index), users_url)
    fields = _extract(_validate(body, Context.RESOURCE_CREATION_REQUEST))
    now = utcnow()
    row = User(
        id=str(uuid.uuid4()),
        org_id=org_id,
        managed_by=ManagedBy.idp,
        active=True if fields.active is None else fields.active,
        deleted=False,
        version=1,
        created_at=now,
        last_modified=now,
    )
    _apply_fields(row, fields)
    user = {column: getattr(row, column) for column in _USER_COLUMNS}
    emails = [
        {
            "user_id": row.id,
            "org_id": org_id,
            "value_key": value_key,
            "type": comparison_key(email_type) if email_type else None,
            "primary": primary,
        }
        for value_key, email_type, primary in fields.emails
    ]
    return user, emails


async def _create_tenant(database: Database) -> tuple[int, str]:
    async with database.write() as session:
        org = await organizations.create_organization(
            session, ORG_SLUG, "Benchmark", Plan.enterprise
        )
        new = await tokens.create_token(
            session, org, name="Benchmark", expires_in_days=1
        )
        return org.id, new.secret


async def seed_store(settings: Settings, users: int) -> str:
    """Migrate the store, create the organization and users; return the token."""
    database = open_database(settings.database_url)
    try:
        await migrate(database)
        await sync_role_catalog(database, settings.roles)
        started = time.perf_counter()
        org_id, secret = await _create_tenant(database)
        users_url = f"{settings.scim_base_url}/Users"
        for start in range(0, users, BATCH_SIZE):
            user_rows: list[dict[str, Any]] = []
            email_rows: list[dict[str, Any]] = []
            for index in range(start, min(start + BATCH_SIZE, users)):
                user, emails = _rows(index, org_id, users_url)
                user_rows.append(user)
                email_rows.extend(emails)
            async with database.write() as session:
                await session.execute(insert(User), user_rows)
                await session.execute(insert(UserEmail), email_rows)
        if not database.is_sqlite:
            # Autovacuum would analyze the new rows within a minute or so; analyze
            # now so that every run plans its queries on the same statistics.
            async with database.write() as session:
                await session.execute(text("ANALYZE"))
        logger.info("Seeded %d users in %.1f s", users, time.perf_counter() - started)
        return secret
    finally:
        await database.dispose()
