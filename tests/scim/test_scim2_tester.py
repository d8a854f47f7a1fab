"""scim2-tester's compliance checks against a real ``serve`` process.

scim2-tester (python-scim project) discovers the server through its
ServiceProviderConfig, ResourceTypes and Schemas endpoints, then creates,
reads, replaces, patches and deletes every resource type it found, checking
each response against RFC 7643 and RFC 7644. It does not cover filters,
uniqueness conflicts, paging or authentication failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.conftest import Tenant
from tests.support.served import ServedTenant, serve_tenant

pytestmark = pytest.mark.slow


@pytest.fixture
def served(database_url: str, tenant: Tenant, tmp_path: Path) -> Iterator[ServedTenant]:
    with serve_tenant(database_url, tenant.token, tmp_path) as served:
        yield served


def test_scim2_tester_checks_all_succeed(served: ServedTenant) -> None:
    """Every scim2-tester check reports SUCCESS, the strictest of its statuses."""
    with Client(
        base_url=served.server.scim_url, headers=served.headers, timeout=10
    ) as http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client)

    assert {model.__name__ for model in client.provider.models} >= {"User", "Group"}
    assert len(results) > 0
    failures = [
        f"{result.status.name} {result.resource_type or '-'} {result.title}: "
        f"{result.reason}"
        for result in results
        if result.status != Status.SUCCESS
    ]
    assert failures == [], "\n".join(failures)
