"""What every SCIM request carries once authenticated."""

from __future__ import annotations

from dataclasses import dataclass

from scim_reconciler.db.models import Organization


@dataclass(frozen=True)
class ScimContext:
    """The organization a token authenticates, and where its resources live."""

    org: Organization
    token_id: str
    base_url: str

    @property
    def users_url(self) -> str:
        return f"{self.base_url}/Users"

    @property
    def groups_url(self) -> str:
        return f"{self.base_url}/Groups"

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"
