"""Take a snapshot: the complete membership of every mapped group.

A run plans only from a complete snapshot. Every group is read to its last page
before anything is planned, and any ConnectorError (a timeout, a 5xx, a rate
limit that outlasted the connector's retries, a group that no longer exists)
propagates, so the run fails with nothing applied instead of planning from a
partial listing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from scim_reconciler.clock import utcnow
from scim_reconciler.reconcile.connectors.base import Connector, NonUserMember
from scim_reconciler.reconcile.model import GroupSnapshot, IdpGroup, IdpUser, Snapshot

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def take_snapshot(
    connector: Connector,
    references: Iterable[str],
    *,
    concurrency: int = 4,
    clock: Callable[[], datetime] = utcnow,
) -> Snapshot:
    """Resolve each group reference and read all of its members.

    ``references`` are the mappings' group references (IdP id or name);
    repeats are read once, and two references to one IdP group share one
    listing. At most ``concurrency`` references are resolved and read at a
    time. Each group's members are read as soon as it is resolved, so an IdP
    that limits lookups and member listings in separate rate-limit windows
    serves both at once. Members that are not users are skipped and counted in
    the snapshot. ``taken_at`` is the time reading began, because a change the
    IdP made during the reading may be missing from it.

    Raises the connector's ConnectorError, GroupNotFoundError included, on the
    first failure, after cancelling the reads still in progress.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    taken_at = clock()
    unique = list(dict.fromkeys(references))

    listings: dict[str, tuple[list[IdpUser], list[NonUserMember]]] = {}
    # One lock per IdP group, so that two references to it share one listing.
    listing_locks: dict[str, asyncio.Lock] = {}

    async def resolve_and_read(reference: str) -> IdpGroup:
        group = await connector.resolve_group(reference)
        async with listing_locks.setdefault(group.id, asyncio.Lock()):
            if group.id not in listings:
                listings[group.id] = await _read_members(connector, group)
        return group

    resolved = await _gather_bounded(
        [_bind(resolve_and_read, reference) for reference in unique], concurrency
    )
    distinct = list({group.id: group for group in resolved}.values())

    users: dict[str, IdpUser] = {}
    skipped: dict[tuple[str, str], None] = {}
    member_ids: dict[str, frozenset[str]] = {}
    for group in distinct:
        group_users, others = listings[group.id]
        for user in group_users:
            users.setdefault(user.id, user)
        for other in others:
            skipped[(other.type, other.id)] = None
        member_ids[group.id] = frozenset(user.id for user in group_users)

    skipped_types: dict[str, int] = {}
    for member_type, _member_id in skipped:
        skipped_types[member_type] = skipped_types.get(member_type, 0) + 1
    groups = tuple(
        GroupSnapshot(reference, group, member_ids[group.id])
        for reference, group in zip(unique, resolved, strict=True)
    )
    logger.info(
        "Snapshot of %d groups from %s connector: %d users, %d non-user members "
        "skipped",
        len(distinct),
        connector.kind,
        len(users),
        len(skipped),
    )
    return Snapshot(
        taken_at=taken_at,
        groups=groups,
        users=users,
        nested_groups_flattened=connector.nested_groups_flattened,
        skipped_members=len(skipped),
        skipped_member_types=dict(sorted(skipped_types.items())),
    )


async def _read_members(
    connector: Connector, group: IdpGroup
) -> tuple[list[IdpUser], list[NonUserMember]]:
    """Read every page of the group's members, splitting users from the rest."""
    users: list[IdpUser] = []
    others: list[NonUserMember] = []
    pages = connector.members(group)
    try:
        async for page in pages:
            for member in page:
                if isinstance(member, IdpUser):
                    users.append(member)
                else:
                    others.append(member)
    finally:
        # Close the listing now, also when cancelled, so an HTTP response it
        # holds is released at once rather than at garbage collection.
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()
    logger.debug(
        "Read group %s (%s): %d users, %d other members",
        group.id,
        group.name,
        len(users),
        len(others),
    )
    return users, others


def _bind(
    function: Callable[..., Awaitable[T]], *args: object
) -> Callable[[], Awaitable[T]]:
    """Return a job that creates its coroutine only when it starts."""
    return lambda: function(*args)


async def _gather_bounded(
    jobs: Sequence[Callable[[], Awaitable[T]]], limit: int
) -> list[T]:
    """Run the jobs, at most ``limit`` at a time, and return results in order.

    On the first failure the other jobs are cancelled and the failure is
    raised. When several jobs failed before the cancellation took effect, the
    one earliest in ``jobs`` is raised.
    """
    if not jobs:
        return []
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    tasks = [asyncio.create_task(run(job)) for job in jobs]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
    return [task.result() for task in tasks]
