"""Error bodies of the admin API: problem details (RFC 9457) for every bad
input, on admin paths only; SCIM keeps its own error bodies."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.admin.api.conftest import OrgAdmin, assert_problem
from tests.conftest import PUBLIC_BASE_URL


async def test_body_that_is_not_json(operator: httpx.AsyncClient) -> None:
    response = await operator.post(
        "/organizations",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )

    body = assert_problem(response, 400, "not valid JSON")
    assert body["type"].endswith(":invalid-request")
    assert body["instance"] == "/admin/v1/organizations"


async def test_every_invalid_value_is_listed(operator: httpx.AsyncClient) -> None:
    response = await operator.post(
        "/organizations", json={"slug": "BAD", "name": "", "plan": "gold"}
    )

    body = assert_problem(response, 422, "body.slug", "2 more problems")
    locations = [error["location"] for error in body["errors"]]
    assert locations == ["body.slug", "body.name", "body.plan"]
    assert '"gold"' in body["errors"][2]["message"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"limit": "0"}, ("query.limit", "0", "greater than or equal to 1")),
        ({"limit": "501"}, ("query.limit", "501", "less than or equal to 500")),
        ({"offset": "-5"}, ("query.offset", "-5")),
        ({"limit": "ten"}, ("query.limit", '"ten"', "integer")),
    ],
)
async def test_bad_page_parameters(
    operator: httpx.AsyncClient,
    acme: OrgAdmin,
    params: dict[str, str],
    words: tuple[str, ...],
) -> None:
    response = await operator.get("/organizations/acme/runs", params=params)

    assert_problem(response, 422, *words)


async def test_unknown_path_and_method(operator: httpx.AsyncClient) -> None:
    unknown = await operator.get("/nothing-here")
    wrong_method = await operator.put("/me")

    assert_problem(unknown, 404, "/admin/v1/nothing-here")
    assert_problem(wrong_method, 405, "PUT")


async def test_secret_body_values_are_not_echoed(
    acme_admin: httpx.AsyncClient,
) -> None:
    secret = "supersecretvalue-1234567890"

    response = await acme_admin.post(
        "/organizations/acme/admin-credentials", json={"secret": secret}
    )

    assert response.status_code in (403, 422)
    assert secret not in response.text


async def test_scim_errors_keep_scim_bodies(app: FastAPI, acme: OrgAdmin) -> None:
    """The problem handlers leave SCIM paths to the SCIM error handlers."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=f"{PUBLIC_BASE_URL}/scim/v2",
        headers={"Authorization": f"Bearer {acme.tenant.token}"},
    ) as scim:
        missing = await scim.get("/Users/no-such-user")
        unknown = await scim.get("/NoSuchResource")
        invalid = await scim.get("/Users", params={"count": "many"})

    for response in (missing, unknown, invalid):
        assert response.headers["content-type"].startswith("application/scim+json")
        body = response.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert "type" not in body


async def test_unexpected_error_is_500_without_traceback(
    app: FastAPI, operator: httpx.AsyncClient
) -> None:
    original = app.state.database

    class BrokenDatabase:
        def read(self) -> object:
            raise RuntimeError("connection to 10.0.0.1 refused with password x")

    app.state.database = BrokenDatabase()
    try:
        response = await operator.get("/me")
    finally:
        app.state.database = original

    body = assert_problem(response, 500, "request id")
    assert "10.0.0.1" not in response.text
    assert "RuntimeError" not in response.text
    assert body["type"].endswith(":internal-error")
