"""Schema documents carry the names and descriptions of RFC 7643 §8.7.1."""

from __future__ import annotations

import httpx
import pytest

from tests.support.resources import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, read


@pytest.mark.parametrize(
    ("urn", "name", "description"),
    [
        (USER_SCHEMA, "User", "User Account"),
        (ENTERPRISE_SCHEMA, "EnterpriseUser", "Enterprise User"),
        (GROUP_SCHEMA, "Group", "Group"),
    ],
)
async def test_schema_description_matches_rfc(
    client: httpx.AsyncClient, urn: str, name: str, description: str
) -> None:
    schema = await read(client, f"/Schemas/{urn}")

    assert schema["name"] == name
    assert schema["description"] == description
