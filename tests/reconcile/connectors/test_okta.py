"""Okta connector against a mocked Okta API (respx): paging through
``Link: rel="next"``, ``X-Rate-Limit-*`` headers, errors and status mapping."""

from __future__ import annotations

import email.utils
import logging
import math
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from joserfc import jwt
from joserfc.jwk import RSAKey

from scim_reconciler.errors import (
    ConnectorConfigError,
    ConnectorPermissionError,
    ConnectorUnavailableError,
    GroupNotFoundError,
)
from scim_reconciler.reconcile.connectors.idp_settings import OktaSettings
from scim_reconciler.reconcile.connectors.okta import OktaConnector
from scim_reconciler.reconcile.model import IdpGroup
from tests.support.idp import FakeClock, all_members, users_of

BASE = "https://acme.okta.com"
TOKEN = "00secretSSWStoken"
GROUP = IdpGroup("00g1emaKYZTWRYYRRTSK", "Engineering")
MEMBERS_URL = f"{BASE}/api/v1/groups/{GROUP.id}/users"


def okta(client: httpx.AsyncClient, clock: FakeClock, **settings: Any) -> OktaConnector:
    values: dict[str, Any] = {"base_url": BASE, "api_token": "sealed", **settings}
    secrets = {"api_token": TOKEN}
    if "private_key" in settings:
        secrets = {"private_key": settings["private_key"]}
        values.pop("api_token")
    return OktaConnector(
        OktaSettings.model_validate(values), secrets, client=client, timing=clock.timing
    )


def user(number: int, status: str = "ACTIVE") -> dict[str, Any]:
    return {
        "id": f"00u{number:017d}",
        "status": status,
        "profile": {
            "login": f"user{number}@example.com",
            "email": f"user{number}@example.com",
            "firstName": f"Given{number}",
            "lastName": f"Family{number}",
        },
    }


def rate_headers(
    clock: FakeClock, remaining: int = 590, reset_in: float = 60
) -> dict[str, str]:
    return {
        "X-Rate-Limit-Limit": "600",
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Reset": str(math.ceil(clock.now + reset_in)),
        "Date": email.utils.formatdate(clock.now, usegmt=True),
    }


def okta_error(status: int, code: str, summary: str) -> httpx.Response:
    body = {"errorCode": code, "errorSummary": summary, "errorCauses": []}
    return httpx.Response(status, json=body)


def pages_of(
    router: respx.MockRouter, clock: FakeClock, users: list[dict[str, Any]], size: int
) -> respx.Route:
    """Serve ``users`` in pages of ``size``; next links carry an opaque cursor."""

    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        start = int(after.removeprefix("cursor-")) if after else 0
        headers = rate_headers(clock)
        if start + size < len(users):
            headers["Link"] = (
                f'<{MEMBERS_URL}?limit={size}>; rel="self", '
                f"<{MEMBERS_URL}?after=cursor-{start + size}&limit={size}&x=%2F>; "
                'rel="next"'
            )
        return httpx.Response(200, json=users[start : start + size], headers=headers)

    return router.get(url__startswith=MEMBERS_URL).mock(side_effect=handler)


async def test_members_follow_next_links_to_last_page(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Okta pages through the Link header; the next link is followed as given."""
    everyone = [user(number) for number in range(1, 2501)]
    route = pages_of(router, clock, everyone, 1000)

    pages = await all_members(okta(client, clock), GROUP)

    assert [len(page) for page in pages] == [1000, 1000, 500]
    assert [u.id for u in users_of(pages)] == [item["id"] for item in everyone]
    first, second, third = (call.request.url for call in route.calls)
    assert first.params["limit"] == "1000"
    assert second.params["after"] == "cursor-1000"
    assert second.params["x"] == "/"
    assert third.params["after"] == "cursor-2000"


async def test_request_count_is_pages_only(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """N members cost ceil(N / page size) member requests; SSWS needs no token."""
    members = 2345
    route = pages_of(router, clock, [user(n) for n in range(members)], 1000)

    await all_members(okta(client, clock), GROUP)

    assert route.call_count == math.ceil(members / 1000)
    assert len(router.calls) == route.call_count


async def test_sends_ssws_authorization(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    route = pages_of(router, clock, [user(1)], 1000)

    await all_members(okta(client, clock), GROUP)

    assert route.calls[0].request.headers["Authorization"] == f"SSWS {TOKEN}"


async def test_429_waits_until_rate_limit_reset(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Okta's 429 has no Retry-After, so X-Rate-Limit-Reset (epoch seconds) is used."""
    limited = okta_error(429, "E0000047", "API call exceeded rate limit")
    limited.headers.update(rate_headers(clock, remaining=0, reset_in=37))
    success = httpx.Response(200, json=[user(1)], headers=rate_headers(clock))
    router.get(url__startswith=MEMBERS_URL).mock(side_effect=[limited, success])

    pages = await all_members(okta(client, clock), GROUP)

    assert len(users_of(pages)) == 1
    assert clock.sleeps == [37]


async def test_429_reset_corrected_for_clock_skew(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """The reset is on Okta's clock: its Date header gives the offset to ours."""
    limited = okta_error(429, "E0000047", "API call exceeded rate limit")
    okta_now = clock.now + 100  # Okta's clock runs 100 s ahead of ours
    limited.headers.update(
        {
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": str(int(okta_now + 20)),
            "Date": email.utils.formatdate(okta_now, usegmt=True),
        }
    )
    success = httpx.Response(200, json=[user(1)])
    router.get(url__startswith=MEMBERS_URL).mock(side_effect=[limited, success])

    await all_members(okta(client, clock), GROUP)

    assert clock.sleeps == [20]


async def test_5xx_retried_then_clear_failure(
    router: respx.MockRouter,
    client: httpx.AsyncClient,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = router.get(url__startswith=MEMBERS_URL).mock(
        return_value=okta_error(503, "E0000009", "Service unavailable")
    )

    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(ConnectorUnavailableError) as raised,
    ):
        await all_members(okta(client, clock), GROUP)

    message = str(raised.value)
    assert route.call_count == 5
    assert clock.sleeps == [1, 2, 4, 8]
    assert "Okta failed GET /api/v1/groups/00g1emaKYZTWRYYRRTSK/users" in message
    assert "HTTP 503" in message
    assert "after 5 attempts" in message
    retries = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == 4
    assert TOKEN not in caplog.text
    assert TOKEN not in message


async def test_5xx_then_success_returns_every_member(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    failure = okta_error(500, "E0000009", "Internal Server Error")
    success = httpx.Response(200, json=[user(1), user(2)])
    router.get(url__startswith=MEMBERS_URL).mock(side_effect=[failure, success])

    pages = await all_members(okta(client, clock), GROUP)

    assert len(users_of(pages)) == 2
    assert clock.sleeps == [1]


async def test_timeout_retried_then_unavailable(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.get(url__startswith=MEMBERS_URL).mock(
        side_effect=httpx.ReadTimeout("timed out")
    )

    with pytest.raises(ConnectorUnavailableError) as raised:
        await all_members(okta(client, clock, max_attempts=3), GROUP)

    assert "did not respond to GET /api/v1/groups/" in str(raised.value)
    assert "read_timeout_seconds" in str(raised.value)
    assert clock.sleeps == [1, 2]


async def test_truncated_page_never_passes_as_short(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A page cut off mid-body is retried and fails the listing, never shortens it."""
    first = httpx.Response(
        200,
        json=[user(1)],
        headers={"Link": f'<{MEMBERS_URL}?after=x>; rel="next"'},
    )
    truncated = httpx.Response(200, content=b'[{"id": "00u2", "sta')
    router.get(url__startswith=MEMBERS_URL).mock(
        side_effect=[first, truncated, truncated, truncated]
    )

    with pytest.raises(ConnectorUnavailableError) as raised:
        await all_members(okta(client, clock, max_attempts=3), GROUP)

    assert "not valid JSON" in str(raised.value)


async def test_max_retry_seconds_bounds_a_long_reset(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A reset further away than max_retry_seconds fails at once, without waiting."""
    limited = okta_error(429, "E0000047", "API call exceeded rate limit")
    limited.headers.update(rate_headers(clock, remaining=0, reset_in=600))
    router.get(url__startswith=MEMBERS_URL).mock(return_value=limited)

    with pytest.raises(ConnectorUnavailableError) as raised:
        await all_members(okta(client, clock, max_retry_seconds=120), GROUP)

    message = str(raised.value)
    assert clock.sleeps == []
    assert "kept rate-limiting" in message
    assert "requested a wait of 600 s" in message


async def test_401_names_the_credential_fix(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.get(url__startswith=MEMBERS_URL).mock(
        return_value=okta_error(401, "E0000011", "Invalid token provided")
    )

    with pytest.raises(ConnectorConfigError) as raised:
        await all_members(okta(client, clock), GROUP)

    message = str(raised.value)
    assert "Okta rejected the credential" in message
    assert "E0000011 Invalid token provided" in message
    assert "create a new API token" in message
    assert TOKEN not in message


async def test_403_names_the_missing_permission(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.get(url__startswith=MEMBERS_URL).mock(
        return_value=okta_error(
            403, "E0000006", "You do not have permission to perform the action"
        )
    )

    with pytest.raises(ConnectorPermissionError) as raised:
        await all_members(okta(client, clock), GROUP)

    assert "okta.groups.read" in str(raised.value)
    assert "Read-only Administrator" in str(raised.value)


async def test_401_feature_permission_is_a_permission_error(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Okta returns E0000015 (feature not permitted) with status 401."""
    router.get(url__startswith=MEMBERS_URL).mock(
        return_value=okta_error(
            401, "E0000015", "You do not have permission to access the feature"
        )
    )

    with pytest.raises(ConnectorPermissionError):
        await all_members(okta(client, clock), GROUP)


async def test_404_on_members_is_group_not_found(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.get(url__startswith=MEMBERS_URL).mock(
        return_value=okta_error(404, "E0000007", "Not found: Resource not found")
    )

    with pytest.raises(GroupNotFoundError) as raised:
        await all_members(okta(client, clock), GROUP)

    assert "'Engineering' (00g1emaKYZTWRYYRRTSK) no longer exists" in str(raised.value)


async def test_resolve_group_by_id(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    body = {"id": GROUP.id, "profile": {"name": "Engineering"}}
    router.get(f"{BASE}/api/v1/groups/{GROUP.id}").respond(200, json=body)

    assert await okta(client, clock).resolve_group(GROUP.id) == GROUP


async def test_resolve_short_group_id(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    body = {"id": "00g2", "profile": {"name": "Support"}}
    by_id = router.get(f"{BASE}/api/v1/groups/00g2").respond(200, json=body)

    group = await okta(client, clock).resolve_group("00g2")

    assert group == IdpGroup("00g2", "Support")
    assert by_id.call_count == 1


async def test_resolve_group_by_exact_name(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    found = [
        {"id": "00g00000000000000001", "profile": {"name": 'Eng "Core"'}},
        {"id": "00g00000000000000002", "profile": {"name": 'ENG "CORE"'}},
    ]
    route = router.get(f"{BASE}/api/v1/groups").respond(200, json=found)

    group = await okta(client, clock).resolve_group('Eng "Core"')

    assert group == IdpGroup("00g00000000000000001", 'Eng "Core"')
    search = route.calls[0].request.url.params["search"]
    assert search == 'profile.name eq "Eng \\"Core\\""'


async def test_resolve_unknown_group_raises(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.get(f"{BASE}/api/v1/groups/{GROUP.id}").mock(
        return_value=okta_error(404, "E0000007", "Not found")
    )
    router.get(f"{BASE}/api/v1/groups").respond(200, json=[])

    with pytest.raises(GroupNotFoundError) as raised:
        await okta(client, clock).resolve_group(GROUP.id)

    assert f"no group with id or name {GROUP.id!r}" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "active"),
    [
        ("ACTIVE", True),
        ("PASSWORD_EXPIRED", True),
        ("LOCKED_OUT", True),
        ("RECOVERY", True),
        ("SUSPENDED", False),
        ("DEPROVISIONED", False),
        ("STAGED", False),
        ("PROVISIONED", False),
        ("SOMETHING_NEW", False),
    ],
)
async def test_status_maps_to_active(
    router: respx.MockRouter,
    client: httpx.AsyncClient,
    clock: FakeClock,
    status: str,
    active: bool,
) -> None:
    router.get(url__startswith=MEMBERS_URL).respond(200, json=[user(1, status)])

    [member] = users_of(await all_members(okta(client, clock), GROUP))

    assert member.active is active
    assert member.status == status


async def test_staged_and_provisioned_can_count_as_active(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.get(url__startswith=MEMBERS_URL).respond(
        200, json=[user(1, "STAGED"), user(2, "PROVISIONED")]
    )
    connector = okta(client, clock, staged_is_active=True, provisioned_is_active=True)

    members = users_of(await all_members(connector, GROUP))

    assert [member.active for member in members] == [True, True]


async def test_user_fields_come_from_profile(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.get(url__startswith=MEMBERS_URL).respond(200, json=[user(7)])

    [member] = users_of(await all_members(okta(client, clock), GROUP))

    assert member.id == "00u00000000000000007"
    assert member.user_name == "user7@example.com"
    assert member.email == "user7@example.com"
    assert member.given_name == "Given7"
    assert member.family_name == "Family7"


async def test_budget_waits_for_reset_at_half_of_remaining(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """With 10 requests left, a run uses 5 and then waits for the window to reset."""
    reset_at = math.ceil(clock.now + 45)
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(clock.now)
        page = int(request.url.params.get("after", "0"))
        remaining = max(10 - len(calls) + 1, 0) if clock.now < reset_at else 600
        headers = {
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(
                reset_at if clock.now < reset_at else reset_at + 60
            ),
        }
        if page < 8:
            headers["Link"] = f'<{MEMBERS_URL}?after={page + 1}>; rel="next"'
        return httpx.Response(200, json=[user(page)], headers=headers)

    router.get(url__startswith=MEMBERS_URL).mock(side_effect=handler)

    pages = await all_members(okta(client, clock), GROUP)

    assert len(pages) == 9
    assert clock.sleeps == [pytest.approx(45, abs=1)]
    before_reset = [when for when in calls if when < reset_at]
    assert len(before_reset) == 6  # the first request, then 5 of the 10 left


async def test_oauth_private_key_jwt_and_token_refresh(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A token is reused until shortly before expiry, then fetched again."""
    key = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
    pem = key.as_pem(private=True)
    issued: list[str] = []

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        assert form["grant_type"] == "client_credentials"
        assert form["scope"] == "okta.groups.read okta.users.read"
        token = jwt.decode(form["client_assertion"], key)
        assert token.header["kid"] == "key-1"
        assert token.claims["iss"] == "0oa-client"
        assert token.claims["sub"] == "0oa-client"
        assert token.claims["aud"] == f"{BASE}/oauth2/v1/token"
        issued.append(f"access-{len(issued) + 1}")
        return httpx.Response(
            200,
            json={
                "token_type": "Bearer",
                "expires_in": 3600,
                "access_token": issued[-1],
            },
        )

    router.post(f"{BASE}/oauth2/v1/token").mock(side_effect=token_endpoint)
    members = router.get(url__startswith=MEMBERS_URL).respond(200, json=[user(1)])
    connector = okta(
        client,
        clock,
        client_id="0oa-client",
        private_key=pem.decode() if isinstance(pem, bytes) else pem,
        key_id="key-1",
    )

    await all_members(connector, GROUP)
    clock.advance(3000)
    await all_members(connector, GROUP)
    clock.advance(590)  # 10 s before expiry: inside the renewal margin
    await all_members(connector, GROUP)

    authorizations = [call.request.headers["Authorization"] for call in members.calls]
    assert authorizations == [
        "Bearer access-1",
        "Bearer access-1",
        "Bearer access-2",
    ]


async def test_oauth_401_fetches_a_new_token_once(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A token revoked before it expires gets 401; one new token is tried."""
    key = RSAKey.generate_key(2048)
    pem = key.as_pem(private=True)
    tokens = iter(["first", "second"])
    router.post(f"{BASE}/oauth2/v1/token").mock(
        side_effect=lambda request: httpx.Response(
            200, json={"access_token": next(tokens), "expires_in": 3600}
        )
    )
    members = router.get(url__startswith=MEMBERS_URL).mock(
        side_effect=[
            okta_error(401, "E0000011", "Invalid token provided"),
            httpx.Response(200, json=[user(1)]),
        ]
    )
    connector = okta(
        client,
        clock,
        client_id="0oa-client",
        private_key=pem.decode() if isinstance(pem, bytes) else pem,
    )

    pages = await all_members(connector, GROUP)

    assert len(users_of(pages)) == 1
    assert members.calls[1].request.headers["Authorization"] == "Bearer second"


async def test_check_reports_rejected_credential(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.get(f"{BASE}/api/v1/groups").mock(
        return_value=okta_error(401, "E0000011", "Invalid token provided")
    )

    problems = await okta(client, clock).check()

    assert len(problems) == 1
    assert problems[0].startswith("cannot list groups: Okta rejected the credential")


async def test_foreign_next_link_stays_on_base(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """The credential goes only to base_url, even when a link names another host."""
    first = httpx.Response(
        200,
        json=[user(1)],
        headers={
            "Link": '<https://other.example/api/v1/groups/x/users?after=2>; rel="next"'
        },
    )
    router.get(url__startswith=MEMBERS_URL).mock(return_value=first)
    moved = router.get(f"{BASE}/api/v1/groups/x/users").respond(200, json=[user(2)])

    pages = await all_members(okta(client, clock), GROUP)

    assert len(pages) == 2
    assert moved.calls[0].request.url.params["after"] == "2"


async def test_redirect_is_config_error(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A redirect is never followed: the credential would go to the new host."""
    router.get(url__startswith=MEMBERS_URL).respond(
        301, headers={"Location": "https://acme.okta-emea.com/api/v1/groups"}
    )

    with pytest.raises(ConnectorConfigError) as raised:
        await all_members(okta(client, clock), GROUP)

    assert "redirected GET /api/v1/groups/" in str(raised.value)
    assert "https://acme.okta-emea.com" in str(raised.value)


def _sample(name: str, labels: dict[str, str]) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_requests_and_retries_reach_metrics(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Each attempt is counted by status; the 429 also as a rate limit and a retry."""
    labels = {"connector": "Okta"}
    before_ok = _sample(
        "scim_reconciler_idp_requests_total", {**labels, "status": "200"}
    )
    before_429 = _sample("scim_reconciler_idp_rate_limited_total", labels)
    before_retry = _sample("scim_reconciler_idp_retries_total", labels)
    limited = okta_error(429, "E0000047", "API call exceeded rate limit")
    limited.headers.update(rate_headers(clock, remaining=0, reset_in=5))
    success = httpx.Response(200, json=[user(1)], headers=rate_headers(clock))
    router.get(url__startswith=MEMBERS_URL).mock(side_effect=[limited, success])

    await all_members(okta(client, clock), GROUP)

    after_ok = _sample(
        "scim_reconciler_idp_requests_total", {**labels, "status": "200"}
    )
    assert after_ok == before_ok + 1
    assert _sample("scim_reconciler_idp_rate_limited_total", labels) == before_429 + 1
    assert _sample("scim_reconciler_idp_retries_total", labels) == before_retry + 1
