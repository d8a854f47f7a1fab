"""Query parameters of reads and lists: attributes and excludedAttributes
(RFC 7644 §3.9), sortBy and sortOrder (RFC 7644 §3.4.2.3), and extreme paging
values."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.resources import (
    ENTERPRISE_SCHEMA,
    USER_SCHEMA,
    assert_scim_error,
    create_group,
    create_user,
    read,
)


async def listing(client: httpx.AsyncClient, path: str, **params: str | int) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def make_ada(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_user(
        client,
        "ada@example.com",
        externalId="00u1",
        name={"givenName": "Ada", "familyName": "Lovelace"},
        title="Analyst",
        emails=[{"value": "ada@example.com", "type": "work", "primary": True}],
        **{ENTERPRISE_SCHEMA: {"employeeNumber": "7", "department": "R&D"}},
    )


# attributes and excludedAttributes


async def test_attributes_returns_id_and_named(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.9: ``attributes`` returns the named attributes plus those
    returned always (id), and nothing else."""
    await make_ada(client)

    found = await listing(client, "/Users", attributes="userName")

    resource = found["Resources"][0]
    assert set(resource) == {"schemas", "id", "userName"}
    assert resource["userName"] == "ada@example.com"


async def test_attributes_with_sub_attribute_and_urn(
    client: httpx.AsyncClient,
) -> None:
    """Names may be dotted sub-attributes or fully qualified URNs, including
    an extension's."""
    created = await make_ada(client)

    document = await read(
        client,
        f"/Users/{created['id']}?attributes=name.givenName,"
        f"{USER_SCHEMA}:title,{ENTERPRISE_SCHEMA}:employeeNumber",
    )

    assert document["name"] == {"givenName": "Ada"}
    assert document["title"] == "Analyst"
    assert document[ENTERPRISE_SCHEMA] == {"employeeNumber": "7"}
    assert "userName" not in document
    assert "emails" not in document


async def test_excluded_attributes_drops_them(client: httpx.AsyncClient) -> None:
    """RFC 7644 §3.9: ``excludedAttributes`` removes the named attributes from
    the default set, on lists and single reads."""
    created = await make_ada(client)
    await create_group(client, "Engineering", [created["id"]])

    found = await listing(client, "/Users", excludedAttributes="emails,groups,name")
    single = await read(client, f"/Users/{created['id']}?excludedAttributes=title")

    resource = found["Resources"][0]
    assert "emails" not in resource
    assert "groups" not in resource
    assert "name" not in resource
    assert resource["userName"] == "ada@example.com"
    assert "title" not in single
    assert single["emails"][0]["value"] == "ada@example.com"
    assert single["groups"][0]["display"] == "Engineering"


async def test_id_cannot_be_excluded(client: httpx.AsyncClient) -> None:
    """id is returned always (RFC 7643 §3.1), even when excluded."""
    created = await make_ada(client)

    document = await read(client, f"/Users/{created['id']}?excludedAttributes=id")

    assert document["id"] == created["id"]


async def test_group_members_excluded_and_named(client: httpx.AsyncClient) -> None:
    """Groups: ``excludedAttributes=members`` drops members, ``attributes=members``
    keeps only them."""
    user = await create_user(client, "ada@example.com")
    group = await create_group(client, "Engineering", [user["id"]])

    without = await read(client, f"/Groups/{group['id']}?excludedAttributes=members")
    only = await read(client, f"/Groups/{group['id']}?attributes=members")

    assert "members" not in without
    assert without["displayName"] == "Engineering"
    assert [member["value"] for member in only["members"]] == [user["id"]]
    assert "displayName" not in only


async def test_search_request_takes_attribute_lists(
    client: httpx.AsyncClient,
) -> None:
    """RFC 7644 §3.4.3: a SearchRequest gives ``attributes`` as a JSON list."""
    await make_ada(client)

    response = await client.post(
        "/Users/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName eq "ada@example.com"',
            "attributes": ["userName", "externalId"],
        },
    )

    assert response.status_code == 200, response.text
    resource = response.json()["Resources"][0]
    assert set(resource) == {"schemas", "id", "userName", "externalId"}


# sortBy and sortOrder


async def test_sort_by_user_name_ignores_case(client: httpx.AsyncClient) -> None:
    """userName is not case-exact, so sorting by it ignores case; ascending is
    the default order."""
    for name in ("bob@example.com", "Alice@example.com", "carol@example.com"):
        await create_user(client, name)

    ascending = await listing(client, "/Users", sortBy="userName")
    descending = await listing(
        client, "/Users", sortBy="userName", sortOrder="descending"
    )

    expected = ["Alice@example.com", "bob@example.com", "carol@example.com"]
    assert [item["userName"] for item in ascending["Resources"]] == expected
    assert [item["userName"] for item in descending["Resources"]] == expected[::-1]


async def test_sort_order_holds_across_pages(client: httpx.AsyncClient) -> None:
    """Pages of a sorted list continue one another."""
    for number in (3, 1, 4, 0, 2):
        await create_user(client, f"user{number}@example.com")

    first = await listing(client, "/Users", sortBy="userName", startIndex=1, count=2)
    second = await listing(client, "/Users", sortBy="userName", startIndex=3, count=2)
    third = await listing(client, "/Users", sortBy="userName", startIndex=5, count=2)

    names = [
        item["userName"]
        for page in (first, second, third)
        for item in page["Resources"]
    ]
    assert names == [f"user{number}@example.com" for number in range(5)]


async def test_sort_puts_missing_values_last_ascending(
    client: httpx.AsyncClient,
) -> None:
    """RFC 7644 §3.4.2.3: resources without a value for sortBy come last when
    ascending and first when descending, on SQLite as on PostgreSQL."""
    await create_user(client, "nobody@example.com")
    await create_user(client, "b@example.com", name={"familyName": "Babbage"})
    await create_user(client, "l@example.com", name={"familyName": "Lovelace"})

    ascending = await listing(client, "/Users", sortBy="name.familyName")
    descending = await listing(
        client, "/Users", sortBy="name.familyName", sortOrder="descending"
    )

    assert [item["userName"] for item in ascending["Resources"]] == [
        "b@example.com",
        "l@example.com",
        "nobody@example.com",
    ]
    assert [item["userName"] for item in descending["Resources"]] == [
        "nobody@example.com",
        "l@example.com",
        "b@example.com",
    ]


async def test_sort_groups_by_display_name(client: httpx.AsyncClient) -> None:
    """Groups sort by displayName, also when named by its full URN."""
    for name in ("Sales", "engineering", "Marketing"):
        await create_group(client, name)

    found = await listing(
        client,
        "/Groups",
        sortBy="urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
        sortOrder="descending",
    )

    names = [item["displayName"] for item in found["Resources"]]
    assert names == ["Sales", "Marketing", "engineering"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"sortBy": "title"}, "title"),
        ({"sortBy": "userName", "sortOrder": "sideways"}, "sideways"),
    ],
)
async def test_unsupported_sort_is_invalid_value(
    client: httpx.AsyncClient, params: dict[str, str], named: str
) -> None:
    """An attribute that cannot be sorted on, or an unknown sortOrder, is a 400
    that names the value."""
    response = await client.get("/Users", params=params)

    error = assert_scim_error(response, 400, "invalidValue")
    assert named in error["detail"]


# Extreme paging values


@pytest.mark.parametrize(
    "start_index", ["2147483648", "9223372036854775807", "1" + "0" * 30]
)
async def test_huge_start_index_is_past_the_end(
    client: httpx.AsyncClient, start_index: str
) -> None:
    """A startIndex beyond any SQL offset is simply a page past the end."""
    await create_user(client, "ada@example.com")

    found = await listing(client, "/Users", startIndex=start_index)

    assert found["totalResults"] == 1
    assert found["Resources"] == []


async def test_huge_count_is_capped(client: httpx.AsyncClient) -> None:
    """A count beyond maxResults returns at most maxResults resources."""
    await create_user(client, "ada@example.com")

    found = await listing(client, "/Users", count="1" + "0" * 30)

    assert found["totalResults"] == 1
    assert len(found["Resources"]) == 1
