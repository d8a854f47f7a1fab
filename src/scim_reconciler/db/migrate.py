"""Schema migrations with Alembic, run programmatically on an async engine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import delete, select, text

from scim_reconciler.db.engine import Database, open_database
from scim_reconciler.db.models import Role, RoleMapping
from scim_reconciler.settings import RoleDefinition, Settings

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The namespace of the run locks (ASCII "scim"). Run locks use organization
# ids as second key, which are positive, so -1 cannot clash with them.
MIGRATION_LOCK_NAMESPACE = 0x7363696D
MIGRATION_LOCK_KEY = -1


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Any) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def migrate(database: Database) -> None:
    """Upgrade the schema to the newest revision; a no-op when already there.

    On PostgreSQL, replicas that start at once take turns: each holds an
    advisory lock for its whole migration transaction, and the later ones
    find the schema at the newest revision. On SQLite the write transaction
    (BEGIN IMMEDIATE) does the same.
    """
    async with database.write_engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
                {"namespace": MIGRATION_LOCK_NAMESPACE, "key": MIGRATION_LOCK_KEY},
            )
        before = await connection.run_sync(_current_revision)
        await connection.run_sync(_upgrade)
        after = await connection.run_sync(_current_revision)
    if before != after:
        logger.info("Database migrated from %s to %s", before or "empty", after)


async def prepare_database(settings: Settings, *, run_migrations: bool) -> Database:
    """Open the configured database, migrate it if asked, and sync the roles."""
    database = open_database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=settings.database_pool_pre_ping,
    )
    if run_migrations:
        await migrate(database)
    await sync_role_catalog(database, settings.roles)
    return database


async def is_at_head(database: Database) -> bool:
    async with database.read_engine.connect() as connection:
        current = await connection.run_sync(_current_revision)
    return current == head_revision()


async def sync_role_catalog(database: Database, roles: list[RoleDefinition]) -> None:
    """Make the roles table match the configured catalog.

    A role dropped from the catalog is deleted unless a mapping still grants it;
    such a role is kept and reported, so that no mapping silently loses its role.
    """
    wanted = {role.slug: role.name for role in roles}
    async with database.write() as session:
        stored = {row.slug: row for row in (await session.scalars(select(Role))).all()}
        for slug, name in wanted.items():
            if slug in stored:
                stored[slug].name = name
            else:
                session.add(Role(slug=slug, name=name))
        dropped = set(stored) - set(wanted)
        if not dropped:
            return
        in_use = set(
            (
                await session.scalars(
                    select(RoleMapping.role_slug).where(
                        RoleMapping.role_slug.in_(dropped)
                    )
                )
            ).all()
        )
        for slug in sorted(in_use):
            logger.warning(
                "Role %s is no longer in the catalog but mappings still grant it; "
                "remove those mappings or add the role back",
                slug,
            )
        unused = dropped - in_use
        if unused:
            await session.execute(delete(Role).where(Role.slug.in_(unused)))
