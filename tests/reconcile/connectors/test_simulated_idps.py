"""Each IdP connector against the IdP simulator over real loopback HTTP.

The simulator and the connector share one fake clock, so rate-limit windows,
token lifetimes and retry waits pass without sleeping.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from scim_reconciler.errors import (
    ConnectorConfigError,
    ConnectorUnavailableError,
    GroupNotFoundError,
)
from scim_reconciler.reconcile.connectors.base import NonUserMember
from scim_reconciler.reconcile.connectors.directory import read_directory
from scim_reconciler.simulator.base import SimulatorOptions
from scim_reconciler.simulator.server import make_simulator
from tests.support.idp import (
    FakeClock,
    all_members,
    build_from_announcement,
    idp_group_id,
    numbered_users,
    served,
    simulator_for,
    users_of,
    write_directory,
)

IDPS = ["okta", "entra", "onelogin"]


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """250 users; Engineering has 180 direct members and the nested Platform."""
    users = numbered_users(250, prefix="")
    groups = [
        {
            "id": "100001",
            "name": "Engineering",
            "members": [str(n) for n in range(1, 181)] + ["100002"],
        },
        {
            "id": "100002",
            "name": "Platform",
            "members": [str(n) for n in range(150, 231)],
        },
    ]
    return write_directory(tmp_path / "directory.json", users, groups)


def expected_members(directory: Path) -> dict[str, bool]:
    content = read_directory(directory)
    return {
        user_id: content.users[user_id].active
        for user_id in content.user_members("100001")
    }


@pytest.mark.parametrize("idp", IDPS)
async def test_listing_matches_directory(idp: str, directory: Path) -> None:
    clock = FakeClock()
    simulator = simulator_for(idp, directory, clock, page_size=40)
    async with served(simulator) as announced:
        connector = build_from_announcement(announced, clock)
        try:
            group = await connector.resolve_group("Engineering")
            pages = await all_members(connector, group)
        finally:
            await connector.close()

    members = {user.id: user.active for user in users_of(pages)}
    assert members == expected_members(directory)
    assert len(pages) > 1
    assert clock.sleeps == []


@pytest.mark.parametrize("idp", IDPS)
async def test_rate_limit_waits_and_completes(idp: str, directory: Path) -> None:
    """A limit of 4 requests a minute forces waits, never a short listing."""
    clock = FakeClock()
    simulator = simulator_for(
        idp, directory, clock, page_size=40, rate_limit=4, rate_limit_window_seconds=60
    )
    async with served(simulator) as announced:
        connector = build_from_announcement(announced, clock, max_retry_seconds=600)
        try:
            group = await connector.resolve_group("Engineering")
            pages = await all_members(connector, group)
        finally:
            await connector.close()

    assert {user.id for user in users_of(pages)} == set(expected_members(directory))
    assert clock.sleeps
    assert all(0 < wait <= 60 for wait in clock.sleeps)


@pytest.mark.parametrize("idp", IDPS)
@pytest.mark.parametrize("kind", ["503", "truncate", "empty"])
async def test_fault_mid_listing_is_unavailable(
    idp: str, kind: str, directory: Path
) -> None:
    """A second page that keeps failing fails the listing; it never ends it."""
    clock = FakeClock()
    simulator = simulator_for(
        idp, directory, clock, page_size=40, faults=(f"{kind}@members,page=2",)
    )
    async with served(simulator) as announced:
        connector = build_from_announcement(announced, clock)
        try:
            group = await connector.resolve_group("Engineering")
            with pytest.raises(ConnectorUnavailableError) as raised:
                await all_members(connector, group)
        finally:
            await connector.close()

    assert "after 5 attempts" in str(raised.value)


@pytest.mark.parametrize("idp", IDPS)
async def test_one_fault_mid_listing_is_retried(idp: str, directory: Path) -> None:
    clock = FakeClock()
    simulator = simulator_for(
        idp, directory, clock, page_size=40, faults=("500@members,page=2,times=1",)
    )
    async with served(simulator) as announced:
        connector = build_from_announcement(announced, clock)
        try:
            group = await connector.resolve_group("Engineering")
            pages = await all_members(connector, group)
        finally:
            await connector.close()

    assert {user.id for user in users_of(pages)} == set(expected_members(directory))
    assert clock.sleeps == [1]


@pytest.mark.parametrize(
    ("idp", "okta_auth"), [("okta", "oauth"), ("entra", ""), ("onelogin", "")]
)
async def test_expired_token_is_renewed(
    idp: str, okta_auth: str, directory: Path
) -> None:
    clock = FakeClock()
    simulator = simulator_for(
        idp, directory, clock, okta_auth=okta_auth or "ssws", token_lifetime_seconds=300
    )
    async with served(simulator) as announced:
        connector = build_from_announcement(announced, clock)
        try:
            group = await connector.resolve_group("Platform")
            await all_members(connector, group)
            clock.advance(301)
            pages = await all_members(connector, group)
        finally:
            await connector.close()

    assert simulator.request_counts["token"] == 2
    assert len(users_of(pages)) == 81


@pytest.mark.parametrize(
    ("idp", "okta_auth", "token_requests"),
    [("okta", "ssws", 0), ("okta", "oauth", 1), ("entra", "", 1), ("onelogin", "", 1)],
)
@pytest.mark.parametrize("size", [1, 40, 81])
async def test_requests_per_member_page(
    idp: str, okta_auth: str, token_requests: int, size: int, tmp_path: Path
) -> None:
    """A group of N members costs ceil(N / page size) member requests, one
    lookup of the group by id, and one token request unless the credential is
    an Okta API token. OneLogin adds one user-details request per page."""
    group_id = idp_group_id(idp, 1)
    users = numbered_users(size, prefix="")
    groups = [{"id": group_id, "name": "Sized", "members": [u["id"] for u in users]}]
    directory = write_directory(tmp_path / "directory.json", users, groups)
    clock = FakeClock()
    simulator = simulator_for(
        idp, directory, clock, okta_auth=okta_auth or "ssws", page_size=40
    )
    async with served(simulator) as announced:
        connector = build_from_announcement(announced, clock)
        try:
            group = await connector.resolve_group(group_id)
            pages = await all_members(connector, group)
        finally:
            await connector.close()

    member_pages = math.ceil(size / 40)
    counts = simulator.request_counts
    assert len(users_of(pages)) == size
    assert counts.get("members", 0) == member_pages
    assert counts.get("groups", 0) == 1
    assert counts.get("token", 0) == token_requests
    assert counts.get("users", 0) == (member_pages if idp == "onelogin" else 0)
    assert set(counts) <= {"members", "groups", "token", "users"}


@pytest.mark.parametrize("idp", IDPS)
async def test_unknown_group_is_not_found(idp: str, directory: Path) -> None:
    clock = FakeClock()
    async with served(simulator_for(idp, directory, clock)) as announced:
        connector = build_from_announcement(announced, clock)
        try:
            with pytest.raises(GroupNotFoundError):
                await connector.resolve_group("No Such Group")
        finally:
            await connector.close()


@pytest.mark.parametrize(
    ("idp", "wrong"),
    [
        ("okta", {"api_token": "wrong"}),
        ("entra", {"client_secret": "wrong"}),
        ("onelogin", {"client_secret": "wrong"}),
    ],
)
async def test_wrong_credential_is_config_error(
    idp: str, wrong: dict[str, Any], directory: Path
) -> None:
    clock = FakeClock()
    async with served(simulator_for(idp, directory, clock)) as announced:
        connector = build_from_announcement(announced, clock, **wrong)
        try:
            problems = await connector.check()
        finally:
            await connector.close()

    assert len(problems) == 1
    assert "rejected the credential" in problems[0]
    assert "wrong" not in problems[0]


@pytest.mark.parametrize("idp", IDPS)
async def test_check_passes_with_printed_credential(idp: str, directory: Path) -> None:
    clock = FakeClock()
    async with served(simulator_for(idp, directory, clock)) as announced:
        connector = build_from_announcement(announced, clock)
        try:
            problems = await connector.check()
        finally:
            await connector.close()

    assert problems == []


async def test_entra_direct_members_list_nested_group(directory: Path) -> None:
    clock = FakeClock()
    async with served(simulator_for("entra", directory, clock)) as announced:
        connector = build_from_announcement(announced, clock, membership="direct")
        try:
            group = await connector.resolve_group("Engineering")
            pages = await all_members(connector, group)
        finally:
            await connector.close()

    others = [m for page in pages for m in page if isinstance(m, NonUserMember)]
    assert others == [NonUserMember("100002", "group")]
    assert len(users_of(pages)) == 180


async def test_onelogin_html_429_on_token_is_retried(directory: Path) -> None:
    clock = FakeClock()
    simulator = simulator_for(
        "onelogin", directory, clock, faults=("429@token,times=2",)
    )
    async with served(simulator) as announced:
        connector = build_from_announcement(announced, clock)
        try:
            group = await connector.resolve_group("Platform")
            pages = await all_members(connector, group)
        finally:
            await connector.close()

    assert len(users_of(pages)) == 81
    assert clock.sleeps == [1, 2]


async def test_okta_wrong_private_key_is_config_error(directory: Path) -> None:
    clock = FakeClock()
    simulator = simulator_for("okta", directory, clock, okta_auth="oauth")
    other = simulator_for("okta", directory, clock, okta_auth="oauth")
    async with served(simulator) as announced:
        wrong_key = other.connector_config("http://unused")["private_key"]
        connector = build_from_announcement(announced, clock, private_key=wrong_key)
        try:
            with pytest.raises(ConnectorConfigError) as raised:
                await connector.resolve_group("Platform")
        finally:
            await connector.close()

    assert "invalid_client" in str(raised.value) or "assertion" in str(raised.value)


async def test_timeout_over_loopback_is_unavailable(directory: Path) -> None:
    """The simulator holds page 2 past the read timeout; the listing fails.

    The read timeout is real network time (2 attempts of 0.2 s), while the
    connector's backoff uses the fake clock.
    """
    clock = FakeClock()
    simulator = make_simulator(
        "okta",
        directory,
        SimulatorOptions(page_size=40, faults=("timeout@members,page=2,ms=1500",)),
        clock=clock.time,
    )
    async with served(simulator) as announced:
        connector = build_from_announcement(
            announced, clock, read_timeout_seconds=0.2, max_attempts=2
        )
        try:
            group = await connector.resolve_group("Engineering")
            with pytest.raises(ConnectorUnavailableError) as raised:
                await all_members(connector, group)
        finally:
            await connector.close()

    assert "the response timed out" in str(raised.value)
    assert clock.sleeps == [1]
