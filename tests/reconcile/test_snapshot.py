"""take_snapshot: complete listings, bounded concurrency, failures that abort."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import pytest

from scim_reconciler.errors import (
    ConnectorError,
    ConnectorUnavailableError,
    GroupNotFoundError,
)
from scim_reconciler.reconcile.connectors.base import (
    Connector,
    MemberPage,
    NonUserMember,
)
from scim_reconciler.reconcile.model import IdpGroup, Snapshot
from scim_reconciler.reconcile.snapshot import take_snapshot
from tests.reconcile.factories import TAKEN_AT, idp_user

ADMINS = IdpGroup("00g1", "Dashboard Admins")
ANALYSTS = IdpGroup("00g2", "Analysts")


class FakeConnector(Connector):
    """A connector serving fixed pages, with hooks to fail and to count."""

    kind = "fake"

    def __init__(
        self,
        pages: dict[IdpGroup, Sequence[MemberPage]],
        *,
        flattened: bool = True,
        fail_on_page: dict[str, int] | None = None,
    ) -> None:
        self.pages = pages
        self.flattened = flattened
        self.fail_on_page = fail_on_page or {}
        self.resolved: list[str] = []
        self.listed: list[str] = []
        self.closed: list[str] = []
        self.active = 0
        self.max_active = 0
        # Listings wait on ``release`` before each page; ``saturated`` is set
        # when ``saturation`` listings are in progress at once.
        self.release = asyncio.Event()
        self.release.set()
        self.saturation = 0
        self.saturated = asyncio.Event()

    @property
    def nested_groups_flattened(self) -> bool:
        return self.flattened

    async def resolve_group(self, reference: str) -> IdpGroup:
        self.resolved.append(reference)
        for group in self.pages:
            if reference in (group.id, group.name):
                return group
        raise GroupNotFoundError(f"group {reference!r} not found")

    async def members(self, group: IdpGroup) -> AsyncIterator[MemberPage]:
        self.listed.append(group.id)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        if self.saturation and self.active >= self.saturation:
            self.saturated.set()
        try:
            for number, page in enumerate(self.pages[group], start=1):
                await self.release.wait()
                if self.fail_on_page.get(group.id) == number:
                    raise ConnectorUnavailableError(
                        f"page {number} of group {group.id} timed out"
                    )
                yield page
        finally:
            self.active -= 1
            self.closed.append(group.id)


def clock() -> datetime:
    return TAKEN_AT


async def snapshot_of(
    connector: Connector, references: Sequence[str], concurrency: int = 4
) -> Snapshot:
    async with asyncio.timeout(5):
        return await take_snapshot(
            connector, references, concurrency=concurrency, clock=clock
        )


ADA, BOB, CY = idp_user(1), idp_user(2), idp_user(3)


def two_page_groups(count: int) -> dict[IdpGroup, Sequence[MemberPage]]:
    """Return groups 00g1 to 00g<count>, each listing Ada, then Bob."""
    return {
        IdpGroup(f"00g{n}", f"Group {n}"): [[ADA], [BOB]] for n in range(1, count + 1)
    }


async def test_snapshot_reads_every_page() -> None:
    """A listing that stopped after the first page made users look missing."""
    connector = FakeConnector({ADMINS: [[ADA], [BOB], [CY]]})

    taken = await snapshot_of(connector, ["Dashboard Admins"])

    assert taken.groups[0].member_ids == {"00u1", "00u2", "00u3"}
    assert set(taken.users) == {"00u1", "00u2", "00u3"}


async def test_snapshot_records_reference_and_group() -> None:
    connector = FakeConnector({ADMINS: [[ADA]], ANALYSTS: [[BOB]]})

    taken = await snapshot_of(connector, ["00g2", "Dashboard Admins"])

    assert [(group.reference, group.group) for group in taken.groups] == [
        ("00g2", ANALYSTS),
        ("Dashboard Admins", ADMINS),
    ]
    assert taken.taken_at == TAKEN_AT


async def test_snapshot_empty_group_has_no_members() -> None:
    connector = FakeConnector({ADMINS: []})

    taken = await snapshot_of(connector, ["00g1"])

    assert taken.groups[0].member_ids == frozenset()
    assert taken.users == {}


async def test_snapshot_user_in_two_groups_once() -> None:
    connector = FakeConnector({ADMINS: [[ADA, BOB]], ANALYSTS: [[BOB]]})

    taken = await snapshot_of(connector, ["00g1", "00g2"])

    assert set(taken.users) == {"00u1", "00u2"}
    assert taken.users["00u2"] == BOB


async def test_snapshot_skips_and_counts_non_users() -> None:
    """Nested groups and devices are never treated as users, and are counted."""
    connector = FakeConnector(
        {
            ADMINS: [[ADA, NonUserMember("00g9", "group")]],
            ANALYSTS: [
                [NonUserMember("00g9", "group"), NonUserMember("d1", "device")],
                [NonUserMember("sp1", "servicePrincipal")],
            ],
        },
        flattened=False,
    )

    taken = await snapshot_of(connector, ["00g1", "00g2"])

    assert set(taken.users) == {"00u1"}
    assert taken.groups[0].member_ids == {"00u1"}
    assert taken.groups[1].member_ids == frozenset()
    assert taken.skipped_members == 3
    assert taken.skipped_member_types == {
        "device": 1,
        "group": 1,
        "servicePrincipal": 1,
    }
    assert taken.nested_groups_flattened is False


async def test_snapshot_reads_repeated_reference_once() -> None:
    connector = FakeConnector({ADMINS: [[ADA]]})

    taken = await snapshot_of(connector, ["00g1", "00g1"])

    assert connector.resolved == ["00g1"]
    assert len(taken.groups) == 1


async def test_snapshot_lists_one_group_once() -> None:
    """Two mappings naming one group, by id and by name, share one listing."""
    connector = FakeConnector({ADMINS: [[ADA]]})

    taken = await snapshot_of(connector, ["00g1", "Dashboard Admins"])

    assert connector.listed == ["00g1"]
    assert [group.reference for group in taken.groups] == [
        "00g1",
        "Dashboard Admins",
    ]
    assert taken.groups[0].member_ids == taken.groups[1].member_ids == {"00u1"}


async def test_snapshot_failed_page_propagates() -> None:
    """A timeout on a later page fails the snapshot, so nothing is planned."""
    connector = FakeConnector({ADMINS: [[ADA], [BOB], [CY]]}, fail_on_page={"00g1": 2})

    with pytest.raises(ConnectorUnavailableError) as raised:
        await snapshot_of(connector, ["00g1"])

    assert "page 2 of group 00g1" in str(raised.value)
    assert connector.closed == ["00g1"]


async def test_snapshot_failure_cancels_other_listings() -> None:
    connector = FakeConnector(two_page_groups(4), fail_on_page={"00g1": 1})

    with pytest.raises(ConnectorError):
        await snapshot_of(connector, [f"00g{n}" for n in range(1, 5)], concurrency=2)

    assert connector.active == 0
    assert sorted(connector.closed) == sorted(connector.listed)


async def test_snapshot_unknown_group_raises() -> None:
    """Listing starts as soon as a group resolves, and ends with the failure."""
    connector = FakeConnector({ADMINS: [[ADA]]})

    with pytest.raises(GroupNotFoundError):
        await snapshot_of(connector, ["00g1", "Deleted Group"])

    assert connector.active == 0
    assert sorted(connector.closed) == sorted(connector.listed)


async def test_snapshot_concurrency_is_bounded() -> None:
    connector = FakeConnector(two_page_groups(8))
    connector.release.clear()
    connector.saturation = 3

    reading = asyncio.create_task(
        snapshot_of(connector, [f"00g{n}" for n in range(1, 9)], concurrency=3)
    )
    async with asyncio.timeout(5):
        await connector.saturated.wait()
    # Let every other task run; none may start a fourth listing.
    for _ in range(10):
        await asyncio.sleep(0)
    started_while_blocked = connector.active
    connector.release.set()
    taken = await reading

    assert started_while_blocked == 3
    assert connector.max_active == 3
    assert len(taken.groups) == 8


async def test_snapshot_rejects_concurrency_zero() -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        await snapshot_of(FakeConnector({}), [], concurrency=0)


async def test_snapshot_without_references_is_empty() -> None:
    taken = await snapshot_of(FakeConnector({}), [])

    assert taken.groups == ()
    assert taken.users == {}
