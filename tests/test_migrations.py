"""The migrations build exactly the schema that the models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import Base


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        return list(compare_metadata(context, Base.metadata))

    async with database.write() as session:
        connection = await session.connection()
        found = await connection.run_sync(differences)

    assert found == []
