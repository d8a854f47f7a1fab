"""Error details name the invalid value in one line (RFC 7644 §3.12)."""

from __future__ import annotations

import httpx

from tests.support.resources import (
    assert_scim_error,
    create_group,
    create_user,
    patch_body,
    user_body,
)


async def test_taken_external_id_is_named_in_409(client: httpx.AsyncClient) -> None:
    """A create whose externalId belongs to another active user blames that id."""
    first = await create_user(client, "ada@example.com", externalId="00u1")

    response = await client.post(
        "/Users", json=user_body("grace@example.com", externalId="00u1")
    )

    body = assert_scim_error(response, 409, "uniqueness")
    assert "externalId '00u1'" in body["detail"]
    assert first["id"] in body["detail"]
    assert "grace@example.com" not in body["detail"]


async def test_taken_user_name_is_named_in_409(client: httpx.AsyncClient) -> None:
    await create_user(client, "ada@example.com")

    response = await client.post("/Users", json=user_body("ADA@example.com"))

    body = assert_scim_error(response, 409, "uniqueness")
    assert "userName 'ADA@example.com'" in body["detail"]


async def test_patch_member_of_wrong_shape_is_one_line(
    client: httpx.AsyncClient,
) -> None:
    """A member given as a bare string gets 400 with a short, single-line detail."""
    group = await create_group(client, "Engineers")

    response = await client.patch(
        f"/Groups/{group['id']}",
        json=patch_body({"op": "add", "path": "members", "value": "string id 1"}),
    )

    body = assert_scim_error(response, 400, "invalidValue")
    assert body["detail"].startswith("members.0: ")
    assert "\n" not in body["detail"]
    assert "pydantic" not in body["detail"]


async def test_unparsable_filter_detail_quotes_it(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.4.2.2: string values are quoted, so ``sw O`` does not parse."""
    response = await client.get("/Users", params={"filter": "userName sw O"})

    body = assert_scim_error(response, 400, "invalidFilter")
    assert "'userName sw O'" in body["detail"]
    assert "double quotes" in body["detail"]
