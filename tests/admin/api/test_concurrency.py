"""Concurrent admin API requests: duplicates conflict cleanly, a revocation is
recorded once, and parallel failed sign-ins stop at the throttle's limit.

On PostgreSQL the requests of one ``asyncio.gather`` run in separate
transactions at the same time, so each check-then-write race can happen.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AuditEvent
from tests.admin.api.conftest import MAX_FAILURES, Client, OrgAdmin, assert_problem

PARALLEL = 12


async def _actions(database: Database, action: str) -> Counter[str | None]:
    async with database.read() as session:
        events = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action)
        )
        return Counter(event.resource_id for event in events)


async def test_parallel_same_mapping_one_created(
    operator: httpx.AsyncClient, acme: OrgAdmin
) -> None:
    body = {"group": "Parallel Admins", "role": "analytics_admin"}

    responses = await asyncio.gather(
        *(
            operator.post("/organizations/acme/mappings", json=body)
            for _ in range(PARALLEL)
        )
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 409: PARALLEL - 1}, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "Parallel Admins", "mapped to role")


async def test_parallel_same_organization_one_created(
    operator: httpx.AsyncClient,
) -> None:
    body = {"slug": "twin", "name": "Twin", "plan": "free"}

    responses = await asyncio.gather(
        *(operator.post("/organizations", json=body) for _ in range(PARALLEL))
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 409: PARALLEL - 1}, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "'twin'", "exists already")


async def test_parallel_token_revocations_audited_once(
    operator: httpx.AsyncClient, acme: OrgAdmin, database: Database
) -> None:
    created = await operator.post(
        "/organizations/acme/tokens", json={"name": "Okta", "expires_in_days": 5}
    )
    token_id = created.json()["id"]

    responses = await asyncio.gather(
        *(
            operator.delete(f"/organizations/acme/tokens/{token_id}")
            for _ in range(PARALLEL)
        )
    )

    assert {response.status_code for response in responses} == {200}
    revoked_at = {response.json()["revoked_at"] for response in responses}
    assert len(revoked_at) == 1
    assert (await _actions(database, "token_revoked"))[token_id] == 1


async def test_parallel_credential_revocations_audited_once(
    operator: httpx.AsyncClient, acme: OrgAdmin, database: Database
) -> None:
    created = await operator.post(
        "/organizations/acme/admin-credentials", json={"name": "Temp"}
    )
    credential_id = created.json()["id"]

    responses = await asyncio.gather(
        *(
            operator.delete(f"/organizations/acme/admin-credentials/{credential_id}")
            for _ in range(PARALLEL)
        )
    )

    assert {response.status_code for response in responses} == {200}
    revoked_at = {response.json()["revoked_at"] for response in responses}
    assert len(revoked_at) == 1
    assert (await _actions(database, "admin_credential_revoked"))[credential_id] == 1


async def test_parallel_failed_sign_ins_stop_at_limit(
    client_for: Client, operator_key: tuple[str, str]
) -> None:
    """Guesses sent at once must not each be checked before any is counted:
    at most MAX_FAILURES of them get 401, the rest get 429."""
    bad = client_for("scimr_admin_wrong")

    responses = await asyncio.gather(*(bad.get("/me") for _ in range(PARALLEL)))
    valid = await client_for(operator_key[0]).get("/me")

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {401: MAX_FAILURES, 429: PARALLEL - MAX_FAILURES}
    assert_problem(valid, 429)
