"""The users every benchmark server holds, and the requests the load sends.

Seeded user ``i`` has the userName ``bench-user-{i:07d}@example.com``, so the
load generator can look up any seeded user without a list of names. The User
body has the attributes an IdP such as Okta sends on create: userName,
externalId, name, displayName, one primary work email, and active.
"""

from __future__ import annotations

from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TOKEN_ENV = "BENCH_SCIM_TOKEN"
PAGE_SIZE = 100


def user_name(index: int, prefix: str = "bench-user") -> str:
    return f"{prefix}-{index:07d}@example.com"


def user_body(index: int, prefix: str = "bench-user") -> dict[str, Any]:
    """Build the SCIM User an IdP would create for seeded user ``index``."""
    name = user_name(index, prefix)
    return {
        "schemas": [USER_SCHEMA],
        "userName": name,
        "externalId": f"{prefix}-{index:07d}",
        "name": {"givenName": "Bench", "familyName": f"User {index}"},
        "displayName": f"Bench User {index}",
        "emails": [{"value": name, "type": "work", "primary": True}],
        "active": True,
    }


def deactivate_body() -> dict[str, Any]:
    """Build the PATCH that Okta and Entra ID send to deactivate a user."""
    return {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
