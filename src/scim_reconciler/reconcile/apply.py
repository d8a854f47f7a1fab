"""Apply a plan's changes to the store, each only if nothing changed meanwhile.

Every change names the version its user (and, for membership, each group) had
when the stored state was read, before the snapshot. A change applies only if
the store still holds that version, counting the run's own earlier changes; if a
SCIM push changed the user or group in between, the push wins and the change is
*deferred*: the next run plans again from the newer state. Changes apply in
batches, one transaction per batch, each with an audit event. A run's batches
also record their changes in run_changes, in the same transaction.

A push can also make a batch fail at write time, with a userName, group name
or membership it added after the batch read the store. The batch then rolls
back and its two halves are applied one after the other, down to the single
change that clashes, which is deferred.

What apply reads from ``Change.details``:

- create, reactivate, profile_update: ``profile`` with userName, externalId,
  email, givenName, familyName and displayName as the IdP has them;
- membership_change: ``join`` and ``leave``, lists of groups given as
  ``{"group_id": stored id or None, "name": IdP name, "idp_group_id": IdP id}``
  (a group without a stored id is created, or found if a push created it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import RunChange
from scim_reconciler.reconcile.batch import Batch, RunState, table_of
from scim_reconciler.reconcile.model import Change, ChangeStatus
from scim_reconciler.reconcile.rows import run_change_row

logger = logging.getLogger(__name__)

# Changes per transaction. Larger batches save round trips and the version
# updates of the groups that every batch touches, but hold the write lock
# (SQLite) or the row locks of their users and groups (PostgreSQL) longer
# against SCIM pushes. 4000 rather than 1000 cut the CPU time of a first run of
# 100k users by a fifth; docs/benchmarks.md has the measurements.
BATCH_SIZE = 4000


async def apply_changes(
    database: Database,
    org_id: int,
    run_id: str,
    changes: Sequence[Change],
    *,
    progress: Callable[[int, int], None] | None = None,
    actor: str = "reconciler",
    batch_size: int = BATCH_SIZE,
    state: RunState | None = None,
    should_stop: Callable[[], bool] | None = None,
    seqs: Sequence[int] | None = None,
) -> list[Change]:
    """Apply changes in order and return them with their final status.

    ``state`` collects what the changes did; pass one to rebase the changes
    that were not applied (see ``RunState.rebase``). ``should_stop`` is asked
    before each batch; once it returns True the remaining changes are returned
    unapplied, still ``planned``. ``seqs``, the changes' positions in the run's
    plan, makes each batch record its changes in run_changes.
    """
    state = state if state is not None else RunState()
    results: list[Change] = []
    total = len(changes)
    if progress is not None:
        progress(0, total)
    for start in range(0, total, batch_size):
        if should_stop is not None and should_stop():
            logger.warning(
                "Run %s stopped after %d of %d changes: the service is stopping",
                run_id,
                start,
                total,
            )
            results.extend(changes[start:])
            break
        batch_changes = changes[start : start + batch_size]
        batch_seqs = seqs[start : start + batch_size] if seqs is not None else None
        statuses = await _apply_batch(
            database, org_id, run_id, batch_changes, batch_seqs, state, actor
        )
        results.extend(
            change.with_status(status)
            for change, status in zip(batch_changes, statuses, strict=True)
        )
        if progress is not None:
            progress(min(start + batch_size, total), total)
    deferred = sum(1 for change in results if change.status is ChangeStatus.deferred)
    if deferred:
        logger.info(
            "Run %s deferred %d changes that SCIM pushes overtook", run_id, deferred
        )
    return results


async def _apply_batch(
    database: Database,
    org_id: int,
    run_id: str,
    changes: Sequence[Change],
    seqs: Sequence[int] | None,
    state: RunState,
    actor: str,
) -> list[ChangeStatus]:
    """Apply changes in one transaction, or split them if a push clashes."""
    state.begin()
    try:
        async with database.write() as session:
            batch = Batch(session, org_id, run_id, state, actor)
            statuses = await batch.apply(changes, seqs)
    except BaseException as exc:
        state.undo()
        if not isinstance(exc, IntegrityError):
            raise
        if len(changes) == 1:
            logger.info(
                "Run %s deferred the %s of %s: a SCIM push clashed with it (%s)",
                run_id,
                changes[0].kind.value,
                changes[0].user_name,
                type(exc.orig).__name__,
            )
            state.defer(changes[0])
            if seqs is not None:
                await _record_deferred(database, run_id, seqs[0], changes[0])
            return [ChangeStatus.deferred]
        middle = len(changes) // 2
        halves = (
            (changes[:middle], seqs[:middle] if seqs is not None else None),
            (changes[middle:], seqs[middle:] if seqs is not None else None),
        )
        statuses = []
        for half, half_seqs in halves:
            statuses += await _apply_batch(
                database, org_id, run_id, half, half_seqs, state, actor
            )
        return statuses
    state.end()
    return statuses


async def _record_deferred(
    database: Database, run_id: str, seq: int, change: Change
) -> None:
    """Record a change that a push made fail on its own, as deferred."""
    deferred = change.with_status(ChangeStatus.deferred)
    row = run_change_row(run_id, seq, deferred, change.reason, change.details)
    async with database.write() as session:
        await session.execute(insert(table_of(RunChange)), [row])
