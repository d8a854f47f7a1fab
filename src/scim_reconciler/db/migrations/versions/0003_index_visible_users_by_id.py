"""Index the visible users of an organization in id order.

SCIM list pages select an organization's IdP-managed, not deleted users in id
order with OFFSET, and count them. Without this index, SQLite sorted every user
of the organization for each page.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 18:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_users_org_visible_id",
        "users",
        ["org_id", "managed_by", "deleted", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_users_org_visible_id", table_name="users")
