"""Concurrent SCIM writes against real ``serve`` processes, on both databases.

Two replicas share one database, as several replicas behind a load balancer
do, and the requests alternate between them. Every wait is bounded: each
request by the HTTP client timeout and each batch by ``BATCH_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from scim_reconciler.db.engine import Database
from tests.conftest import Tenant
from tests.support.resources import (
    create_group,
    create_user,
    member_ids,
    patch_body,
    user_body,
)
from tests.support.server import ServeProcess, serve

pytestmark = pytest.mark.slow

REPLICAS = 2
PARALLEL = 20
REQUEST_TIMEOUT_S = 30.0
BATCH_TIMEOUT_S = 90.0


@pytest.fixture
def replicas(
    database: Database, database_url: str, tenant: Tenant, tmp_path: Path
) -> Iterator[list[ServeProcess]]:
    """Start two ``serve`` processes on the test database (already migrated)."""
    managers = [serve(database_url, tmp_path) for _ in range(REPLICAS)]
    with ExitStack() as stack:
        # Each replica takes seconds to import and check migrations, so they
        # start side by side; the ones that started stop at the end either way.
        with ThreadPoolExecutor(REPLICAS) as pool:
            futures = [pool.submit(manager.__enter__) for manager in managers]
        for manager, future in zip(managers, futures, strict=True):
            if future.exception() is None:
                stack.push(manager.__exit__)
        for future in futures:
            future.result()  # raises the first start failure
        yield [future.result() for future in futures]


@pytest.fixture
async def clients(
    replicas: list[ServeProcess], tenant: Tenant
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per replica, each with a connection pool of its own."""
    headers = {"Authorization": f"Bearer {tenant.token}"}
    limits = httpx.Limits(max_connections=PARALLEL)
    opened = [
        httpx.AsyncClient(
            base_url=replica.scim_url,
            headers=headers,
            timeout=REQUEST_TIMEOUT_S,
            limits=limits,
        )
        for replica in replicas
    ]
    try:
        yield opened
    finally:
        for client in opened:
            await client.aclose()
        for replica in replicas:
            assert "Unhandled error" not in replica.log(), replica.log()


async def all_of(
    requests: Sequence[Awaitable[httpx.Response]],
) -> list[httpx.Response]:
    """Send ``requests`` at once and wait, bounded, for every response."""
    async with asyncio.timeout(BATCH_TIMEOUT_S):
        return list(await asyncio.gather(*requests))


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


async def test_parallel_member_adds_lose_none(
    clients: list[httpx.AsyncClient],
) -> None:
    """PATCHes that each add a different member to one group, sent at once to
    two replicas, all land: no read-modify-write loses a member."""
    first = clients[0]
    user_ids = [
        (await create_user(first, f"member{number}@example.com"))["id"]
        for number in range(PARALLEL)
    ]
    group = await create_group(first, "Engineering")

    responses = await all_of(
        [
            clients[number % REPLICAS].patch(
                f"/Groups/{group['id']}",
                json=patch_body(
                    {"op": "add", "path": "members", "value": [{"value": user_id}]}
                ),
            )
            for number, user_id in enumerate(user_ids)
        ]
    )

    assert statuses(responses) == {200: PARALLEL}, [r.text for r in responses]
    assert await member_ids(first, group["id"]) == set(user_ids)
    assert await member_ids(clients[1], group["id"]) == set(user_ids)


async def test_parallel_member_adds_and_removes(
    clients: list[httpx.AsyncClient],
) -> None:
    """Concurrent adds and removes on one group each apply to their own member
    and to no other."""
    first = clients[0]
    user_ids = [
        (await create_user(first, f"member{number}@example.com"))["id"]
        for number in range(PARALLEL)
    ]
    leaving = user_ids[: PARALLEL // 2]
    joining = user_ids[PARALLEL // 2 :]
    group = await create_group(first, "Engineering", leaving)

    requests = [
        clients[number % REPLICAS].patch(
            f"/Groups/{group['id']}",
            json=patch_body({"op": "remove", "path": f'members[value eq "{user_id}"]'}),
        )
        for number, user_id in enumerate(leaving)
    ] + [
        clients[number % REPLICAS].patch(
            f"/Groups/{group['id']}",
            json=patch_body(
                {"op": "add", "path": "members", "value": [{"value": user_id}]}
            ),
        )
        for number, user_id in enumerate(joining)
    ]
    responses = await all_of(requests)

    assert statuses(responses) == {200: PARALLEL}, [r.text for r in responses]
    assert await member_ids(first, group["id"]) == set(joining)


@pytest.mark.parametrize("spelling", ["same", "case variants"])
async def test_parallel_creates_of_one_user_name(
    clients: list[httpx.AsyncClient], spelling: str
) -> None:
    """POSTs of one userName sent at once give exactly one 201; the others get
    409 uniqueness, also when the spellings differ only in case."""
    names = ["ada@example.com"] * PARALLEL
    if spelling == "case variants":
        names = [
            name.upper() if number % 2 else name for number, name in enumerate(names)
        ]

    responses = await all_of(
        [
            clients[number % REPLICAS].post("/Users", json=user_body(name))
            for number, name in enumerate(names)
        ]
    )

    assert statuses(responses) == {201: 1, 409: PARALLEL - 1}, [
        r.text for r in responses
    ]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["scimType"] == "uniqueness"
    listed = await clients[0].get(
        "/Users", params={"filter": 'userName eq "ada@example.com"'}
    )
    assert listed.json()["totalResults"] == 1


async def test_parallel_returns_of_one_user_keep_its_id(
    clients: list[httpx.AsyncClient],
) -> None:
    """Several POSTs that bring back one deactivated user at once never make a
    second account: every 201 carries the original id."""
    first = clients[0]
    created = await create_user(first, "ada@example.com", externalId="00u1")
    deactivated = await first.patch(
        f"/Users/{created['id']}",
        json=patch_body({"op": "replace", "path": "active", "value": False}),
    )
    assert deactivated.status_code == 200, deactivated.text

    responses = await all_of(
        [
            clients[number % REPLICAS].post(
                "/Users", json=user_body("ada@example.com", externalId="00u1")
            )
            for number in range(PARALLEL)
        ]
    )

    counted = statuses(responses)
    assert set(counted) <= {201, 409}, [r.text for r in responses]
    assert counted[201] >= 1
    returned: set[Any] = {
        response.json()["id"] for response in responses if response.status_code == 201
    }
    assert returned == {created["id"]}
    listed = await first.get("/Users", params={"filter": 'externalId eq "00u1"'})
    assert listed.json()["totalResults"] == 1
    assert listed.json()["Resources"][0]["active"] is True
