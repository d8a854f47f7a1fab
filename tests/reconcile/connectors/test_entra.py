"""Entra ID connector against a mocked Microsoft Graph (respx): token requests,
``@odata.nextLink`` paging, ``Retry-After`` throttling, nested groups and
non-user members."""

from __future__ import annotations

import base64
import datetime
import hashlib
import math
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import RSAKey

from scim_reconciler.errors import (
    ConnectorConfigError,
    ConnectorPermissionError,
    ConnectorUnavailableError,
    GroupNotFoundError,
)
from scim_reconciler.reconcile.connectors.base import NonUserMember
from scim_reconciler.reconcile.connectors.entra import EntraConnector
from scim_reconciler.reconcile.connectors.idp_settings import EntraSettings
from scim_reconciler.reconcile.model import IdpGroup
from tests.support.idp import FakeClock, all_members, users_of

GRAPH = "https://graph.microsoft.com/v1.0"
TENANT = "11111111-2222-3333-4444-555555555555"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
SECRET = "client~secret~value"
GROUP = IdpGroup("02bd9fd6-8f93-4758-87c3-1fb73740a315", "Engineering")
TRANSITIVE_URL = f"{GRAPH}/groups/{GROUP.id}/transitiveMembers"
DIRECT_URL = f"{GRAPH}/groups/{GROUP.id}/members"


def entra(
    client: httpx.AsyncClient,
    clock: FakeClock,
    secrets: dict[str, str] | None = None,
    **settings: Any,
) -> EntraConnector:
    values: dict[str, Any] = {"tenant_id": TENANT, "client_id": "app-id", **settings}
    secrets = secrets or {"client_secret": SECRET}
    for name in secrets:
        values[name] = "sealed"
    return EntraConnector(
        EntraSettings.model_validate(values),
        secrets,
        client=client,
        timing=clock.timing,
    )


def user(number: int, enabled: bool = True) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": f"00000000-0000-0000-0000-{number:012d}",
        "userPrincipalName": f"user{number}@contoso.com",
        "mail": f"user{number}@contoso.com",
        "givenName": f"Given{number}",
        "surname": f"Family{number}",
        "displayName": f"User {number}",
        "accountEnabled": enabled,
    }


def graph_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def token_route(router: respx.MockRouter, expires_in: int = 3599) -> respx.Route:
    issued: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        issued.append(f"token-{len(issued) + 1}")
        body = {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "access_token": issued[-1],
        }
        return httpx.Response(200, json=body)

    return router.post(TOKEN_URL).mock(side_effect=handler)


def member_pages(
    router: respx.MockRouter, url: str, items: list[dict[str, Any]], size: int
) -> respx.Route:
    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("$skiptoken", "0"))
        body: dict[str, Any] = {"value": items[start : start + size]}
        if start + size < len(items):
            body["@odata.nextLink"] = f"{url}?$top={size}&$skiptoken={start + size}"
        return httpx.Response(200, json=body)

    return router.get(url__startswith=url).mock(side_effect=handler)


async def test_members_follow_next_link_to_last_page(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    everyone = [user(n) for n in range(1, 2101)]
    route = member_pages(router, TRANSITIVE_URL, everyone, 999)

    pages = await all_members(entra(client, clock), GROUP)

    assert [len(page) for page in pages] == [999, 999, 102]
    assert len(users_of(pages)) == 2100
    first = route.calls[0].request.url.params
    assert first["$top"] == "999"
    assert "accountEnabled" in first["$select"].split(",")
    assert route.calls[1].request.url.params["$skiptoken"] == "999"


async def test_request_count_is_token_plus_pages(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """N members cost ceil(N / 999) member requests plus one token request."""
    members = 3000
    tokens = token_route(router)
    route = member_pages(router, TRANSITIVE_URL, [user(n) for n in range(members)], 999)

    await all_members(entra(client, clock), GROUP)

    assert route.call_count == math.ceil(members / 999)
    assert tokens.call_count == 1
    assert len(router.calls) == route.call_count + 1


async def test_token_request_uses_client_secret_and_default_scope(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    tokens = token_route(router)
    members = member_pages(router, TRANSITIVE_URL, [user(1)], 999)

    await all_members(entra(client, clock), GROUP)

    form = parse_qs(tokens.calls[0].request.content.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_id"] == ["app-id"]
    assert form["client_secret"] == [SECRET]
    assert form["scope"] == ["https://graph.microsoft.com/.default"]
    assert members.calls[0].request.headers["Authorization"] == "Bearer token-1"


async def test_token_renewed_when_it_expires(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    tokens = token_route(router, expires_in=3599)
    members = member_pages(router, TRANSITIVE_URL, [user(1)], 999)
    connector = entra(client, clock)

    await all_members(connector, GROUP)
    clock.advance(1800)
    await all_members(connector, GROUP)
    clock.advance(1800)
    await all_members(connector, GROUP)

    used = [call.request.headers["Authorization"] for call in members.calls]
    assert used == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    assert tokens.call_count == 2


async def test_certificate_signs_assertion_with_x5t(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A certificate credential sends private_key_jwt with the x5t thumbprint."""
    key = RSAKey.generate_key(2048)
    private = key.private_key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scim-reconciler")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())  # type: ignore[union-attr]
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())  # type: ignore[arg-type]
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM) + key.as_pem(
        private=True
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    thumbprint = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=")
    tokens = token_route(router)
    member_pages(router, TRANSITIVE_URL, [user(1)], 999)

    connector = entra(client, clock, {"client_certificate": pem.decode()})
    await all_members(connector, GROUP)

    form = {
        k: v[0] for k, v in parse_qs(tokens.calls[0].request.content.decode()).items()
    }
    assert "client_secret" not in form
    assertion = jwt.decode(form["client_assertion"], key)
    assert assertion.header["x5t"] == thumbprint.decode()
    assert assertion.claims["aud"] == TOKEN_URL
    assert assertion.claims["iss"] == "app-id"


async def test_429_honours_fractional_retry_after(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    throttled = graph_error(429, "TooManyRequests", "Please retry again later.")
    throttled.headers["Retry-After"] = "2.128"
    success = httpx.Response(200, json={"value": [user(1)]})
    router.get(url__startswith=TRANSITIVE_URL).mock(side_effect=[throttled, success])

    pages = await all_members(entra(client, clock), GROUP)

    assert len(users_of(pages)) == 1
    assert clock.sleeps == [pytest.approx(2.128)]


@pytest.mark.parametrize("status", [503, 504])
async def test_503_and_504_honour_retry_after(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock, status: int
) -> None:
    token_route(router)
    busy = graph_error(status, "ServiceUnavailable", "Service is busy")
    busy.headers["Retry-After"] = "7"
    success = httpx.Response(200, json={"value": [user(1)]})
    router.get(url__startswith=TRANSITIVE_URL).mock(side_effect=[busy, success])

    await all_members(entra(client, clock), GROUP)

    assert clock.sleeps == [7]


async def test_5xx_retried_then_clear_failure(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    route = router.get(url__startswith=TRANSITIVE_URL).mock(
        return_value=graph_error(500, "generalException", "Something broke")
    )

    with pytest.raises(ConnectorUnavailableError) as raised:
        await all_members(entra(client, clock, max_attempts=4), GROUP)

    message = str(raised.value)
    assert route.call_count == 4
    assert "Microsoft Entra ID failed GET /v1.0/groups/" in message
    assert "HTTP 500 (generalException Something broke)" in message
    assert SECRET not in message


async def test_401_from_token_endpoint_names_the_fix(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.post(TOKEN_URL).respond(
        401,
        json={
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\n"
            "Trace ID: 1\r\nCorrelation ID: 2",
        },
    )

    with pytest.raises(ConnectorConfigError) as raised:
        await all_members(entra(client, clock), GROUP)

    message = str(raised.value)
    assert "rejected the credential" in message
    assert "AADSTS7000215: Invalid client secret provided." in message
    assert "Trace ID" not in message
    assert "new client secret" in message
    assert SECRET not in message


async def test_403_names_graph_permissions(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(url__startswith=TRANSITIVE_URL).mock(
        return_value=graph_error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    )

    with pytest.raises(ConnectorPermissionError) as raised:
        await all_members(entra(client, clock), GROUP)

    message = str(raised.value)
    assert "GroupMember.Read.All" in message
    assert "User.Read.All" in message
    assert "Insufficient privileges" in message


async def test_invalid_scope_is_a_permission_error(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    router.post(TOKEN_URL).respond(
        400,
        json={"error": "invalid_scope", "error_description": "AADSTS70011: bad scope"},
    )

    with pytest.raises(ConnectorPermissionError):
        await all_members(entra(client, clock), GROUP)


async def test_404_on_members_is_group_not_found(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(url__startswith=TRANSITIVE_URL).mock(
        return_value=graph_error(404, "Request_ResourceNotFound", "Resource missing")
    )

    with pytest.raises(GroupNotFoundError):
        await all_members(entra(client, clock), GROUP)


async def test_transitive_members_skip_nested_groups_and_keep_others(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Nested groups' users are listed already; devices and the like are not users."""
    token_route(router)
    items = [
        user(1),
        {"@odata.type": "#microsoft.graph.group", "id": "nested-group"},
        user(2),
        {"@odata.type": "#microsoft.graph.device", "id": "device-1"},
        {"@odata.type": "#microsoft.graph.orgContact", "id": "contact-1"},
        {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp-1"},
    ]
    router.get(url__startswith=TRANSITIVE_URL).respond(200, json={"value": items})
    connector = entra(client, clock)

    [page] = await all_members(connector, GROUP)

    assert connector.nested_groups_flattened is True
    assert len(users_of([page])) == 2
    others = [member for member in page if isinstance(member, NonUserMember)]
    assert others == [
        NonUserMember("device-1", "device"),
        NonUserMember("contact-1", "orgContact"),
        NonUserMember("sp-1", "servicePrincipal"),
    ]


async def test_direct_members_list_nested_groups_as_non_users(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    items = [user(1), {"@odata.type": "#microsoft.graph.group", "id": "nested"}]
    route = router.get(url__startswith=DIRECT_URL).respond(200, json={"value": items})
    connector = entra(client, clock, membership="direct")

    [page] = await all_members(connector, GROUP)

    assert connector.nested_groups_flattened is False
    assert route.call_count == 1
    assert page[1] == NonUserMember("nested", "group")


async def test_account_enabled_maps_to_active(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(url__startswith=TRANSITIVE_URL).respond(
        200, json={"value": [user(1, enabled=True), user(2, enabled=False)]}
    )

    members = users_of(await all_members(entra(client, clock), GROUP))

    assert [member.active for member in members] == [True, False]
    assert [member.status for member in members] == [
        "accountEnabled=true",
        "accountEnabled=false",
    ]
    assert members[0].user_name == "user1@contoso.com"
    assert members[0].family_name == "Family1"


async def test_resolve_group_by_name_escapes_quotes(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    route = router.get(f"{GRAPH}/groups").respond(
        200, json={"value": [{"id": GROUP.id, "displayName": "O'Brien team"}]}
    )

    group = await entra(client, clock).resolve_group("O'Brien team")

    assert group == IdpGroup(GROUP.id, "O'Brien team")
    expression = route.calls[0].request.url.params["$filter"]
    assert expression == "displayName eq 'O''Brien team'"


async def test_resolve_group_by_object_id(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(f"{GRAPH}/groups/{GROUP.id}").respond(
        200, json={"id": GROUP.id, "displayName": "Engineering"}
    )

    assert await entra(client, clock).resolve_group(GROUP.id) == GROUP


async def test_resolve_group_with_two_matches_asks_for_id(
    router: respx.MockRouter, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token_route(router)
    router.get(f"{GRAPH}/groups").respond(
        200,
        json={
            "value": [
                {"id": "a", "displayName": "Engineering"},
                {"id": "b", "displayName": "Engineering"},
            ]
        },
    )

    with pytest.raises(GroupNotFoundError) as raised:
        await entra(client, clock).resolve_group("Engineering")

    assert "map the group by its object id" in str(raised.value)


def test_settings_need_exactly_one_credential() -> None:
    with pytest.raises(ValueError, match="exactly one of client_secret"):
        EntraSettings.model_validate({"tenant_id": TENANT, "client_id": "app-id"})
