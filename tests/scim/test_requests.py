"""Request bodies and values the service must reject with a SCIM Error, never
with a 500: too large, not JSON, or not storable."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database
from tests.conftest import Tenant, make_settings, scim_client
from tests.support.resources import (
    assert_scim_error,
    create_group,
    create_user,
    group_body,
    patch_body,
    user_body,
)

BODY_LIMIT = 1024


@pytest.fixture
async def small_client(
    database: Database, database_url: str, tenant: Tenant
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a service that takes request bodies of at most 1 KiB."""
    settings = make_settings(database_url, max_body_bytes=BODY_LIMIT)
    async with scim_client(create_app(settings, database), tenant.token) as http:
        yield http


def padded_user(size: int) -> bytes:
    """Return a User body of exactly ``size`` bytes."""
    empty = b'{"userName": "ada@example.com", "title": ""}'
    return empty[:-2] + b"x" * (size - len(empty)) + empty[-2:]


# Body size


async def test_body_at_limit_is_accepted(small_client: httpx.AsyncClient) -> None:
    """A body of exactly max_body_bytes is within the limit."""
    response = await small_client.post("/Users", content=padded_user(BODY_LIMIT))

    assert response.status_code == 201, response.text


async def test_body_over_limit_is_413(small_client: httpx.AsyncClient) -> None:
    """A body one byte over max_body_bytes is a 413 Error that names the limit,
    and nothing is created."""
    response = await small_client.post("/Users", content=padded_user(BODY_LIMIT + 1))

    body = assert_scim_error(response, 413)
    assert str(BODY_LIMIT) in body["detail"]
    assert (await small_client.get("/Users")).json()["totalResults"] == 0


async def test_streamed_body_over_limit_is_413(
    small_client: httpx.AsyncClient,
) -> None:
    """A chunked body without Content-Length is cut off at the limit as well."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"userName": "ada@example.com", "title": "'
        for _ in range(4):
            yield b"x" * 512
        yield b'"}'

    response = await small_client.post("/Users", content=chunks())

    assert_scim_error(response, 413)


async def test_patch_body_over_limit_is_413(small_client: httpx.AsyncClient) -> None:
    """The limit applies to PATCH as it does to POST."""
    created = await create_user(small_client, "ada@example.com")
    operation = {"op": "replace", "path": "title", "value": "x" * BODY_LIMIT}

    response = await small_client.patch(
        f"/Users/{created['id']}", json=patch_body(operation)
    )

    assert_scim_error(response, 413)


# JSON syntax


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"   ",
        b"{",
        b'{"userName": }',
        b"userName=ada",
        b"\xff\xfe{}",
        b"[1, 2]",
        b'"ada@example.com"',
        b"null",
    ],
    ids=[
        "empty",
        "blank",
        "unclosed",
        "missing-value",
        "form",
        "not-utf8",
        "array",
        "string",
        "null",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/Users"), ("POST", "/Groups"), ("POST", "/Users/.search")],
)
async def test_invalid_json_is_invalid_syntax(
    client: httpx.AsyncClient, content: bytes, method: str, path: str
) -> None:
    """RFC 7644 §3.12: a body that is not a JSON object is a 400 invalidSyntax."""
    response = await client.request(
        method, path, content=content, headers={"Content-Type": "application/scim+json"}
    )

    assert_scim_error(response, 400, "invalidSyntax")


async def test_invalid_json_patch_is_invalid_syntax(
    client: httpx.AsyncClient,
) -> None:
    """A PATCH body that is not JSON is a 400 invalidSyntax too."""
    created = await create_user(client, "ada@example.com")

    response = await client.patch(f"/Users/{created['id']}", content=b"{'op': 1}")

    assert_scim_error(response, 400, "invalidSyntax")


# Values the store cannot keep


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("userName", "a" * 257),
        ("userName", "İ" * 200),
        ("externalId", "0" * 257),
        ("displayName", "d" * 257),
        ("name", {"givenName": "g" * 257}),
        ("userName", "ada\x00@example.com"),
        ("userName", ""),
        ("userName", "   "),
    ],
    ids=[
        "long-userName",
        "userName-long-when-folded",
        "long-externalId",
        "long-displayName",
        "long-givenName",
        "nul-in-userName",
        "empty-userName",
        "blank-userName",
    ],
)
async def test_unstorable_user_value_is_invalid(
    client: httpx.AsyncClient, attribute: str, value: object
) -> None:
    """A value longer than its column, holding NUL, or an empty required
    userName is a 400 invalidValue naming the attribute, on both databases."""
    body = user_body("ada@example.com")
    body[attribute] = value

    response = await client.post("/Users", json=body)

    error = assert_scim_error(response, 400, "invalidValue")
    assert attribute in error["detail"]
    assert (await client.get("/Users")).json()["totalResults"] == 0


async def test_longest_user_name_is_accepted(client: httpx.AsyncClient) -> None:
    """A userName of exactly 256 characters fits."""
    name = "a" * 244 + "@example.com"

    created = await create_user(client, name)

    assert created["userName"] == name


async def test_unstorable_patch_value_is_invalid(client: httpx.AsyncClient) -> None:
    """A PATCH that would store a too-long userName is rejected and changes
    nothing."""
    created = await create_user(client, "ada@example.com")

    response = await client.patch(
        f"/Users/{created['id']}",
        json=patch_body({"op": "replace", "path": "userName", "value": "a" * 300}),
    )

    assert_scim_error(response, 400, "invalidValue")
    stored = await client.get(f"/Users/{created['id']}")
    assert stored.json()["userName"] == "ada@example.com"


@pytest.mark.parametrize(
    "body",
    [
        group_body("g" * 257),
        group_body(""),
        group_body("Engineering", externalId="e" * 257),
        group_body("Engineering\x00"),
    ],
    ids=["long-displayName", "empty-displayName", "long-externalId", "nul"],
)
async def test_unstorable_group_value_is_invalid(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    """Group values get the same checks as User values."""
    response = await client.post("/Groups", json=body)

    assert_scim_error(response, 400, "invalidValue")


async def test_long_member_display_is_invalid(client: httpx.AsyncClient) -> None:
    """A member ``display`` longer than its column is a 400, not a 500."""
    user = await create_user(client, "ada@example.com")

    response = await client.post(
        "/Groups",
        json=group_body(
            "Engineering", members=[{"value": user["id"], "display": "d" * 257}]
        ),
    )

    error = assert_scim_error(response, 400, "invalidValue")
    assert "members.display" in error["detail"]


async def test_nul_member_value_is_invalid(client: httpx.AsyncClient) -> None:
    """A member id holding NUL is no User of the organization: a 400."""
    group = await create_group(client, "Engineering")

    response = await client.patch(
        f"/Groups/{group['id']}",
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": "id\x00"}]}
        ),
    )

    assert_scim_error(response, 400, "invalidValue")


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/Users", 'userName eq "ada\\u0000"'),
        ("/Users", 'externalId eq "\\u0000"'),
        ("/Users", 'emails[value co "\\u0000"]'),
        ("/Groups", 'members[value eq "\\u0000"]'),
    ],
)
async def test_nul_in_filter_is_invalid_filter(
    client: httpx.AsyncClient, path: str, text: str
) -> None:
    """A filter value holding NUL (written as a JSON escape) is a 400
    invalidFilter."""
    response = await client.get(path, params={"filter": text})

    assert_scim_error(response, 400, "invalidFilter")


@pytest.mark.parametrize("path", ["/Users/%00", "/Groups/%00", "/Users/" + "x" * 300])
async def test_unstorable_id_is_404(client: httpx.AsyncClient, path: str) -> None:
    """An id that no resource can have is simply not found."""
    response = await client.get(path)

    assert_scim_error(response, 404)
