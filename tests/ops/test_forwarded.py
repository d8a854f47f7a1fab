"""Forwarded headers: trusted from the proxies that forwarded_allow_ips names,
ignored from any other peer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.server import serve

pytestmark = pytest.mark.slow


def fail_sign_ins(base_url: str, forwarded_for: str, times: int) -> list[int]:
    statuses = []
    for _ in range(times):
        response = httpx.get(
            f"{base_url}/admin/v1/me",
            headers={
                "Authorization": "Bearer not-a-key",
                "X-Forwarded-For": forwarded_for,
            },
        )
        statuses.append(response.status_code)
    return statuses


def test_trusted_proxy_throttles_each_client(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    env = {
        "SCIM_RECONCILER_FORWARDED_ALLOW_IPS": "127.0.0.1",
        "SCIM_RECONCILER_SIGN_IN_MAX_FAILURES": "2",
    }
    with serve(database_url, tmp_path, env) as server:
        first = fail_sign_ins(server.base_url, "203.0.113.7", 3)
        second = fail_sign_ins(server.base_url, "203.0.113.8", 1)

    assert first == [401, 401, 429]
    assert second == [401]


def test_untrusted_peer_forwarded_for_is_ignored(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    env = {"SCIM_RECONCILER_SIGN_IN_MAX_FAILURES": "2"}
    with serve(database_url, tmp_path, env) as server:
        first = fail_sign_ins(server.base_url, "203.0.113.7", 2)
        second = fail_sign_ins(server.base_url, "203.0.113.8", 1)

    assert first == [401, 401]
    assert second == [429]
