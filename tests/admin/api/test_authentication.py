"""Authentication and authorization of the admin API: operator keys,
organization admin credentials, 401, 403, 404 and throttling."""

from __future__ import annotations

import logging

import httpx
import pytest

from scim_reconciler.admin import credentials
from scim_reconciler.db.engine import Database
from tests.admin.api.conftest import MAX_FAILURES, Client, OrgAdmin, assert_problem

# Every read of one organization's resources, by path below /organizations/SLUG.
ORG_READS = (
    "",
    "/tokens",
    "/mappings",
    "/connector",
    "/runs",
    "/runs/00000000-0000-0000-0000-000000000000",
    "/users",
    "/users/00000000-0000-0000-0000-000000000000",
    "/users/00000000-0000-0000-0000-000000000000/history",
    "/audit-events",
    "/drift",
)


async def test_missing_key_gets_401_with_challenge(client_for: Client) -> None:
    response = await client_for(None).get("/me")

    body = assert_problem(response, 401, "Authorization")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert body["type"].endswith(":unauthorized")


async def test_other_scheme_gets_401(client_for: Client) -> None:
    client = client_for(None)

    response = await client.get("/me", headers={"Authorization": "Basic YTpi"})

    assert_problem(response, 401, "Bearer")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_invalid_key_logged_without_secret(
    client_for: Client, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "scimr_admin_not-a-real-credential-at-all"
    caplog.set_level(logging.WARNING)

    response = await client_for(secret).get("/me")

    body = assert_problem(response, 401, "not valid")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert secret not in response.text
    assert secret not in body["detail"]
    failures = [r for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(failures) == 1
    assert "127.0.0.1" in failures[0].getMessage()
    assert all(secret not in record.getMessage() for record in caplog.records)


async def test_operator_key_signs_in(operator: httpx.AsyncClient) -> None:
    response = await operator.get("/me")

    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "operator"
    assert body["name"].startswith("operator:")
    assert body["organization"] is None


async def test_org_admin_signs_in(acme_admin: httpx.AsyncClient) -> None:
    response = await acme_admin.get("/me")

    assert response.status_code == 200
    assert response.json() == {
        "kind": "org_admin",
        "name": "admin:acme admin",
        "organization": "acme",
    }


async def test_revoked_credential_gets_401(
    database: Database, acme: OrgAdmin, acme_admin: httpx.AsyncClient
) -> None:
    async with database.write() as session:
        await credentials.revoke_credential(
            session, acme.tenant.org, acme.credential_id
        )

    response = await acme_admin.get("/me")

    assert_problem(response, 401, "not valid")


async def test_failed_keys_are_throttled_per_address(
    client_for: Client, operator_key: tuple[str, str]
) -> None:
    """After MAX_FAILURES bad keys, even a valid key waits (429, Retry-After)."""
    bad = client_for("scimr_admin_wrong")
    for _ in range(MAX_FAILURES):
        assert_problem(await bad.get("/me"), 401)

    throttled = await bad.get("/me")
    valid = await client_for(operator_key[0]).get("/me")

    body = assert_problem(throttled, 429, "too many failed authentications")
    assert body["type"].endswith(":too-many-requests")
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert_problem(valid, 429)


async def test_missing_key_is_not_counted_as_failure(
    client_for: Client, operator: httpx.AsyncClient
) -> None:
    anonymous = client_for(None)
    for _ in range(MAX_FAILURES + 1):
        assert_problem(await anonymous.get("/me"), 401)

    response = await operator.get("/me")

    assert response.status_code == 200


async def test_success_resets_failure_count(
    client_for: Client, operator: httpx.AsyncClient
) -> None:
    bad = client_for("scimr_admin_wrong")
    for _ in range(MAX_FAILURES - 1):
        assert_problem(await bad.get("/me"), 401)
    assert (await operator.get("/me")).status_code == 200

    for _ in range(MAX_FAILURES - 1):
        assert_problem(await bad.get("/me"), 401)
    response = await operator.get("/me")

    assert response.status_code == 200


@pytest.mark.parametrize("path", ORG_READS)
async def test_org_admin_gets_404_for_other_org(
    path: str, acme_admin: httpx.AsyncClient, globex: OrgAdmin
) -> None:
    """Another organization looks exactly like one that does not exist."""
    other = await acme_admin.get(f"/organizations/{globex.slug}{path}")
    missing = await acme_admin.get(f"/organizations/nonexistent{path}")

    body = assert_problem(other, 404, repr(globex.slug))
    assert_problem(missing, 404, "'nonexistent'")
    assert body["detail"].replace(globex.slug, "X") == missing.json()["detail"].replace(
        "nonexistent", "X"
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/organizations/globex/tokens", {"name": "x", "expires_in_days": 1}),
        ("DELETE", "/organizations/globex/tokens/some-id", None),
        ("POST", "/organizations/globex/mappings", {"group": "g", "role": "api_admin"}),
        ("DELETE", "/organizations/globex/mappings/1", None),
        ("PUT", "/organizations/globex/connector", {"kind": "okta"}),
        ("PATCH", "/organizations/globex/connector", {"enabled": False}),
        ("POST", "/organizations/globex/connector/check", None),
        ("POST", "/organizations/globex/runs", {"dry_run": True}),
        ("POST", "/organizations/globex/runs/some-id/approve", None),
        ("PATCH", "/organizations/globex", {"plan": "free"}),
        ("GET", "/organizations/globex/admin-credentials", None),
        ("POST", "/organizations/globex/admin-credentials", {"name": "Eve"}),
        ("DELETE", "/organizations/globex/admin-credentials/some-id", None),
    ],
)
async def test_org_admin_cannot_change_other_org(
    method: str,
    path: str,
    body: object,
    acme_admin: httpx.AsyncClient,
    operator: httpx.AsyncClient,
    globex: OrgAdmin,
) -> None:
    before = (await operator.get("/organizations/globex/audit-events")).json()

    response = await acme_admin.request(method, path, json=body)

    assert_problem(response, 404, "'globex'")
    after = (await operator.get("/organizations/globex/audit-events")).json()
    assert after["total"] == before["total"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/organizations", None),
        ("POST", "/organizations", {"slug": "new", "name": "New", "plan": "free"}),
        ("PATCH", "/organizations/acme", {"plan": "free"}),
        ("GET", "/organizations/acme/admin-credentials", None),
        ("POST", "/organizations/acme/admin-credentials", {"name": "Eve"}),
        ("DELETE", "/organizations/acme/admin-credentials/some-id", None),
    ],
)
async def test_org_admin_gets_403_for_operator_actions(
    method: str, path: str, body: object, acme_admin: httpx.AsyncClient
) -> None:
    response = await acme_admin.request(method, path, json=body)

    problem = assert_problem(response, 403, "operator")
    assert problem["type"].endswith(":forbidden")


async def test_org_admin_sees_own_org(acme_admin: httpx.AsyncClient) -> None:
    response = await acme_admin.get("/organizations/acme")

    assert response.status_code == 200
    assert response.json()["slug"] == "acme"


async def test_unauthenticated_request_gets_401_before_validation(
    client_for: Client,
) -> None:
    response = await client_for(None).get("/organizations?limit=0")

    assert_problem(response, 401)
