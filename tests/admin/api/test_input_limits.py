"""Hostile input to the admin API: NUL characters, numbers past the database's
integer range, values of the wrong JSON type and bodies that are not JSON
objects. Each gets a problem body that names the value, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.admin.api.conftest import Client, OrgAdmin, assert_problem

NUL = "a\x00b"
# One more than the largest signed 64-bit integer, which both SQLite and
# PostgreSQL reject as an OFFSET or a bound parameter.
PAST_INT64 = str(2**63)
# One more than the largest PostgreSQL integer (int4), the type of mapping ids.
PAST_INT32 = str(2**31)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/organizations/ac%00me"),
        ("DELETE", "/organizations/acme/tokens/a%00b"),
        ("DELETE", "/organizations/acme/admin-credentials/a%00b"),
        ("GET", "/organizations/acme/runs/a%00b"),
        ("POST", "/organizations/acme/runs/a%00b/approve"),
        ("GET", "/organizations/acme/users/a%00b"),
        ("GET", "/organizations/acme/users/a%00b/history"),
    ],
)
async def test_nul_in_path_is_422(
    method: str, path: str, operator: httpx.AsyncClient, acme: OrgAdmin
) -> None:
    """PostgreSQL text cannot contain NUL, so it must not reach a query."""
    response = await operator.request(method, path)

    body = assert_problem(response, 422, "NUL")
    assert body["type"].endswith(":invalid-input")


async def test_nul_in_query_is_422(operator: httpx.AsyncClient, acme: OrgAdmin) -> None:
    response = await operator.get("/organizations/acme/users", params={"query": NUL})

    assert_problem(response, 422, "query.query", "NUL")


@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        ("/organizations", {"slug": "nul", "name": NUL, "plan": "free"}, "body.name"),
        (
            "/organizations/acme/tokens",
            {"name": NUL, "expires_in_days": 5},
            "body.name",
        ),
        (
            "/organizations/acme/mappings",
            {"group": NUL, "role": "global_admin"},
            "body.group",
        ),
        ("/organizations/acme/mappings", {"group": "g", "role": NUL}, "body.role"),
        (
            "/organizations/acme/mappings",
            {
                "group": "g",
                "role": "global_admin",
                "grant": "limited",
                "object_ids": ["c1", NUL],
            },
            "body.object_ids",
        ),
        ("/organizations/acme/admin-credentials", {"name": NUL}, "body.name"),
        ("/organizations/acme/runs", {"user": NUL, "dry_run": True}, "body.user"),
    ],
)
async def test_nul_in_body_is_422(
    path: str,
    body: dict[str, object],
    location: str,
    operator: httpx.AsyncClient,
    acme: OrgAdmin,
) -> None:
    response = await operator.post(path, json=body)

    problem = assert_problem(response, 422, location, "NUL")
    assert problem["errors"][0]["location"].startswith(location)


async def test_offset_past_int64_is_422(
    operator: httpx.AsyncClient, acme: OrgAdmin
) -> None:
    for path in ("/organizations", "/organizations/acme/runs"):
        response = await operator.get(path, params={"offset": PAST_INT64})

        assert_problem(response, 422, "query.offset", PAST_INT64)


async def test_largest_offset_is_an_empty_page(
    operator: httpx.AsyncClient, acme: OrgAdmin
) -> None:
    response = await operator.get(
        "/organizations/acme/runs", params={"offset": str(2**63 - 1)}
    )

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


@pytest.mark.parametrize("mapping_id", [PAST_INT32, PAST_INT64])
async def test_mapping_id_out_of_range_is_422(
    mapping_id: str, operator: httpx.AsyncClient, acme: OrgAdmin
) -> None:
    response = await operator.delete(f"/organizations/acme/mappings/{mapping_id}")

    assert_problem(response, 422, "path.mapping_id", mapping_id)


@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        (
            "/organizations/acme/tokens",
            {"name": "t", "expires_in_days": "30"},
            "body.expires_in_days",
        ),
        (
            "/organizations/acme/tokens",
            {"name": "t", "expires_in_days": True},
            "body.expires_in_days",
        ),
        ("/organizations/acme/runs", {"dry_run": "yes"}, "body.dry_run"),
        ("/organizations/acme/runs", {"dry_run": 1}, "body.dry_run"),
        ("/organizations/acme/runs", {"wait_seconds": "5"}, "body.wait_seconds"),
    ],
)
async def test_wrong_json_type_is_422(
    path: str,
    body: dict[str, object],
    location: str,
    operator: httpx.AsyncClient,
    acme: OrgAdmin,
) -> None:
    """A string or boolean where a number is expected is a client bug: a
    ``true`` taken as 1 day would make a token expire tomorrow."""
    response = await operator.post(path, json=body)

    assert_problem(response, 422, location)


async def test_connector_run_settings_reject_wrong_types(
    operator: httpx.AsyncClient, acme: OrgAdmin
) -> None:
    response = await operator.patch(
        "/organizations/acme/connector",
        json={"enabled": "false", "max_deactivations": "5"},
    )

    body = assert_problem(response, 422, "body.enabled")
    locations = [error["location"] for error in body["errors"]]
    assert locations == ["body.enabled", "body.max_deactivations"]


async def test_long_object_id_is_422(
    operator: httpx.AsyncClient, acme: OrgAdmin
) -> None:
    response = await operator.post(
        "/organizations/acme/mappings",
        json={
            "group": "g",
            "role": "global_admin",
            "grant": "limited",
            "object_ids": ["x" * 10_000],
        },
    )

    assert_problem(response, 422, "body.object_ids.0", "at most 256")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"slug": "x", "name": "x", "plan": "free"}', "text/plain"),
        (b"[1, 2]", "application/json"),
        (b"null", "application/json"),
    ],
)
async def test_body_that_is_not_a_json_object(
    content: bytes, content_type: str, operator: httpx.AsyncClient
) -> None:
    response = await operator.post(
        "/organizations", content=content, headers={"Content-Type": content_type}
    )

    assert_problem(response, 422, "JSON object", "Content-Type: application/json")


async def test_two_authorization_headers_get_401(
    client_for: Client, operator_key: tuple[str, str]
) -> None:
    """Authorization carries one credential, so of two headers neither counts,
    even when one has a valid key."""
    client = client_for(None)
    headers = [
        ("Authorization", f"Bearer {operator_key[0]}"),
        ("Authorization", "Basic YTpi"),
    ]

    response = await client.get("/me", headers=headers)

    assert_problem(response, 401, "2 Authorization headers", "exactly one")
