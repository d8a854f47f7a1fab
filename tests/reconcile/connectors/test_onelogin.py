"""OneLogin connector against a mocked OneLogin API (respx): roles as groups,
``After-Cursor`` paging, batched user details, ``X-RateLimit-Reset`` in
seconds, and the HTML 429 of the token endpoint."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from scim_reconciler.errors import (
    ConnectorConfigError,
    ConnectorPermissionError,
    ConnectorUnavailableError,
    GroupNotFoundError,
)
from scim_reconciler.reconcile.connectors.idp_settings import OneLoginSettings
from scim_reconciler.reconcile.connectors.onelogin import OneLoginConnector
from scim_reconciler.reconcile.model import IdpGroup
from tests.support.idp import FakeClock, all_members, users_of

BASE = "https://acme.onelogin.com"
TOKEN_URL = f"{BASE}/auth/oauth2/v2/token"
SECRET = "onelogin-client-secret"
ROLE = IdpGroup("439868", "Dashboard Admins")
ROLE_USERS_URL = f"{BASE}/api/2/roles/{ROLE.id}/users"
USERS_URL = f"{BASE}/api/2/users"
HTML_429 = "<html><body><h1>429 Too Many Requests</h1></body></html>"


def onelogin(
    client: httpx.AsyncClient, clock: FakeClock, **settings: Any
) -> OneLoginConnector:
    values: dict[str, Any] = {
        "subdomain": "acme",
        "client_id": "client-id",
        "client_secret": "sealed",
        **settings,
    }
    return OneLoginConnector(
        OneLoginSettings.model_validate(values),
        {"client_secret": SECRET},
        client=client,
        timing=clock.timing,
    )


def details(number: int, status: int = 1, state: int = 1) -> dict[str, Any]:
    return {
        "id": number,
        "username": f"user{number}",
        "email": f"user{number}@example.com",
        "firstname": f"Given{number}",
        "lastname": f"Family{number}",
        "status": status,
        "state": state,
    }


def token_route(router: respx.MockRouter) -> respx.Route:
    body = {"access_token": "access-1", "expires_in": 36000, "token_type": "bearer"}
    return router.post(TOKEN_URL).respond(200, json=body)


def serve_role(
    router: respx.MockRouter,
    clock: FakeClock,
    users: list[dict[str, Any]],
    size: int = 100,
) -> tuple[respx.Route, respx.Route]:
    """Serve the role's users in pages of ``size`` and their details by id."""
    by_id = {str(item["id"]): item for item in users}

    def role_users(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("cursor") or 0)
        page = users[start : start + size]
        headers = {"X-RateLimit-Remaining": "4000", "X-RateLimit-Reset": "900"}
        if start + size < len(users):
            headers["After-Cursor"] = str(start + size)
        listed = [{"id": item["id"], "username": item["username"]} for item in page]
        return httpx.Response(200, json=listed, headers=headers)

    def user_details(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["user_ids"].split(",")
        return httpx.Response(200, json=[by_id[i] for i in ids if i in by_id])

    return (
        router.get(url__startswith=ROLE_USERS_URL).mock(side_effect=role_users),
        router.get(url__startswith=USERS_URL).mock(side_effect=user_details),
    )


async def test_members_follow_after_cursor_to_last_page(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    everyone = [details(n) for n in range(1, 251)]
    listing, lookups = serve_role(router, clock, everyone)

    pages = await all_members(onelogin(client, clock), ROLE)

    assert [len(page) for page in pages] == [100, 100, 50]
    assert [u.id for u in users_of(pages)] == [str(n) for n in range(1, 251)]
    assert listing.calls[1].request.url.params["cursor"] == "100"
    assert listing.calls[0].request.url.params["limit"] == "100"
    first_lookup = lookups.calls[0].request.url.params
    assert first_lookup["user_ids"] == ",".join(str(n) for n in range(1, 101))
    assert "status" in first_lookup["fields"].split(",")


async def test_request_count_batches_user_details(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Each page of role users costs one details request, never one per user."""
    members = 345
    tokens = token_route(router)
    listing, lookups = serve_role(router, clock, [details(n) for n in range(members)])

    await all_members(onelogin(client, clock), ROLE)

    pages = math.ceil(members / 100)
    assert listing.call_count == pages
    assert lookups.call_count == pages
    assert tokens.call_count == 1
    assert len(router.calls) == 2 * pages + 1


async def test_token_request_carries_client_credentials(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    tokens = token_route(router)
    listing, _lookups = serve_role(router, clock, [details(1)])

    await all_members(onelogin(client, clock), ROLE)

    form = parse_qs(tokens.calls[0].request.content.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_id"] == ["client-id"]
    assert form["client_secret"] == [SECRET]
    assert listing.calls[0].request.headers["Authorization"] == "Bearer access-1"


async def test_429_waits_reset_seconds_not_epoch(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """X-RateLimit-Reset is the seconds left in the window."""
    token_route(router)
    limited = httpx.Response(
        429,
        json={"statusCode": 429, "name": "TooManyRequests", "message": "Slow down"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "42"},
    )
    success = httpx.Response(200, json=[])
    router.get(url__startswith=ROLE_USERS_URL).mock(side_effect=[limited, success])

    await all_members(onelogin(client, clock), ROLE)

    assert clock.sleeps == [42]


async def test_html_429_from_token_endpoint_is_retried(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """OneLogin's token endpoint may return 429 as an HTML page, with no hint."""
    html = httpx.Response(429, text=HTML_429, headers={"Content-Type": "text/html"})
    token = httpx.Response(200, json={"access_token": "access-1", "expires_in": 36000})
    router.post(TOKEN_URL).mock(side_effect=[html, html, token])
    serve_role(router, clock, [details(1)])

    pages = await all_members(onelogin(client, clock), ROLE)

    assert len(users_of(pages)) == 1
    assert clock.sleeps == [1, 2]


async def test_html_429_that_persists_fails_clearly(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.post(TOKEN_URL).respond(
        429, text=HTML_429, headers={"Content-Type": "text/html"}
    )

    with pytest.raises(ConnectorUnavailableError) as raised:
        await all_members(onelogin(client, clock, max_attempts=3), ROLE)

    message = str(raised.value)
    assert "OneLogin kept rate-limiting POST /auth/oauth2/v2/token" in message
    assert "<html>" not in message
    assert SECRET not in message


async def test_5xx_retried_then_clear_failure(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    route = router.get(url__startswith=ROLE_USERS_URL).respond(502, text="Bad Gateway")

    with pytest.raises(ConnectorUnavailableError) as raised:
        await all_members(onelogin(client, clock), ROLE)

    assert route.call_count == 5
    assert "OneLogin failed GET /api/2/roles/439868/users with HTTP 502" in str(
        raised.value
    )


async def test_401_names_the_credential_fix(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.post(TOKEN_URL).respond(
        401, json={"statusCode": 401, "name": "Unauthorized", "message": "Invalid"}
    )

    with pytest.raises(ConnectorConfigError) as raised:
        await all_members(onelogin(client, clock), ROLE)

    assert "create a new API credential" in str(raised.value)
    assert SECRET not in str(raised.value)


async def test_403_names_the_scope(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(url__startswith=ROLE_USERS_URL).respond(
        403, json={"statusCode": 403, "name": "ForbiddenError", "message": "Forbidden"}
    )

    with pytest.raises(ConnectorPermissionError) as raised:
        await all_members(onelogin(client, clock), ROLE)

    assert "Read Users scope" in str(raised.value)


async def test_404_on_role_users_is_group_not_found(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(url__startswith=ROLE_USERS_URL).respond(
        404,
        json={
            "statusCode": 404,
            "name": "NotFoundError",
            "message": "The resource with the given id could not be found",
        },
    )

    with pytest.raises(GroupNotFoundError) as raised:
        await all_members(onelogin(client, clock), ROLE)

    assert "'Dashboard Admins' (439868) no longer exists" in str(raised.value)


async def test_v1_error_envelope_detail(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(url__startswith=ROLE_USERS_URL).respond(
        401,
        json={
            "status": {
                "error": True,
                "code": 401,
                "type": "Unauthorized",
                "message": "Authentication Failure",
            }
        },
    )

    with pytest.raises(ConnectorConfigError) as raised:
        await all_members(onelogin(client, clock), ROLE)

    assert "Authentication Failure" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "state", "active"),
    [
        (1, 1, True),  # active
        (3, 1, True),  # locked
        (4, 1, True),  # password expired
        (5, 1, True),  # awaiting password reset
        (8, 1, True),  # security questions required
        (2, 1, False),  # suspended
        (0, 1, False),  # unactivated
        (7, 1, False),  # password pending
        (1, 0, False),  # unapproved
        (1, 2, False),  # rejected
        (1, 3, False),  # unlicensed
        (9, 1, False),  # unknown status
    ],
)
async def test_status_and_state_map_to_active(
    router: respx.MockRouter,
    client: httpx.AsyncClient,
    clock: FakeClock,
    status: int,
    state: int,
    active: bool,
) -> None:
    token_route(router)
    serve_role(router, clock, [details(1, status, state)])

    [member] = users_of(await all_members(onelogin(client, clock), ROLE))

    assert member.active is active
    assert member.status is not None
    assert member.status.startswith(f"status={status}")


async def test_unactivated_and_password_pending_can_count_as_active(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    serve_role(router, clock, [details(1, 0), details(2, 7)])
    connector = onelogin(
        client, clock, unactivated_is_active=True, password_pending_is_active=True
    )

    members = users_of(await all_members(connector, ROLE))

    assert [member.active for member in members] == [True, True]


async def test_empty_username_falls_back_to_email(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    item = details(1)
    item["username"] = ""
    serve_role(router, clock, [item])

    [member] = users_of(await all_members(onelogin(client, clock), ROLE))

    assert member.user_name == "user1@example.com"


async def test_resolve_role_by_name_and_by_id(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(f"{BASE}/api/2/roles/{ROLE.id}").respond(
        200, json={"id": 439868, "name": "Dashboard Admins"}
    )
    search = router.get(f"{BASE}/api/2/roles").respond(
        200,
        json=[
            {"id": 1, "name": "dashboard admins"},
            {"id": 439868, "name": "Dashboard Admins"},
        ],
    )
    connector = onelogin(client, clock)

    assert await connector.resolve_group(ROLE.id) == ROLE
    assert await connector.resolve_group("Dashboard Admins") == ROLE
    assert search.calls[0].request.url.params["name"] == "Dashboard Admins"


async def test_resolve_unknown_role_raises(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(f"{BASE}/api/2/roles").respond(200, json=[])

    with pytest.raises(GroupNotFoundError) as raised:
        await onelogin(client, clock).resolve_group("Nobody")

    assert "no role with id or name 'Nobody'" in str(raised.value)


def test_region_selects_shared_api_host() -> None:
    settings = OneLoginSettings.model_validate(
        {"client_id": "id", "client_secret": "sealed", "region": "eu"}
    )

    assert settings.api_base_url() == "https://api.eu.onelogin.com"


def test_settings_need_a_host() -> None:
    with pytest.raises(ValueError, match="give subdomain"):
        OneLoginSettings.model_validate({"client_id": "id", "client_secret": "sealed"})
