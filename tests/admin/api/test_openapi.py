"""The admin API's OpenAPI description: every operation documented."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import PUBLIC_BASE_URL

METHODS = ("get", "post", "put", "patch", "delete")

ORG = "/admin/v1/organizations/{org}"
OPERATIONS = {
    ("GET", "/admin/v1/me"),
    ("GET", "/admin/v1/roles"),
    ("GET", "/admin/v1/organizations"),
    ("POST", "/admin/v1/organizations"),
    ("GET", ORG),
    ("PATCH", ORG),
    ("GET", ORG + "/admin-credentials"),
    ("POST", ORG + "/admin-credentials"),
    ("DELETE", ORG + "/admin-credentials/{credential_id}"),
    ("GET", ORG + "/tokens"),
    ("POST", ORG + "/tokens"),
    ("DELETE", ORG + "/tokens/{token_id}"),
    ("GET", ORG + "/mappings"),
    ("POST", ORG + "/mappings"),
    ("DELETE", ORG + "/mappings/{mapping_id}"),
    ("GET", ORG + "/connector"),
    ("PUT", ORG + "/connector"),
    ("PATCH", ORG + "/connector"),
    ("POST", ORG + "/connector/check"),
    ("GET", ORG + "/runs"),
    ("POST", ORG + "/runs"),
    ("GET", ORG + "/runs/{run_id}"),
    ("POST", ORG + "/runs/{run_id}/approve"),
    ("GET", ORG + "/users"),
    ("GET", ORG + "/users/{user_id}"),
    ("GET", ORG + "/users/{user_id}/history"),
    ("GET", ORG + "/audit-events"),
    ("GET", ORG + "/drift"),
}

# NOTE: routes outside the admin API (SCIM's catch-all for /Me and /Bulk, the
# console's unknown-page handler) serve several methods with one function, so
# FastAPI warns that their operation ids repeat. The admin API's own ids are
# checked for uniqueness below.
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate Operation ID:UserWarning")


async def openapi(app: FastAPI) -> dict[str, Any]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=PUBLIC_BASE_URL
    ) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


async def test_every_operation_is_documented(app: FastAPI) -> None:
    schema = await openapi(app)
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith("/admin/v1/")
        for method, operation in item.items()
        if method in METHODS
    ]

    assert {(method.upper(), path) for path, method, _ in operations} == OPERATIONS
    ids = [operation["operationId"] for _path, _method, operation in operations]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        responses = operation["responses"]
        successes = [code for code in responses if code.startswith("2")]
        assert successes, where
        assert "401" in responses, where
        assert "429" in responses, where
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                content = response["content"]
                assert list(content) == ["application/problem+json"], where
                ref = content["application/problem+json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Problem", where
        if "{org}" in path:
            assert "404" in responses, where


async def test_problem_schema_is_a_component(app: FastAPI) -> None:
    schemas = (await openapi(app))["components"]["schemas"]

    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "FieldProblem" in schemas


async def test_bearer_key_documented_on_401(app: FastAPI) -> None:
    schema = await openapi(app)

    unauthorized = schema["paths"]["/admin/v1/me"]["get"]["responses"]["401"]

    assert "WWW-Authenticate" in unauthorized["headers"]
