"""Run a reconciliation of one organization and record it.

A run takes the organization's lock, reads the stored state, takes a complete
snapshot of the IdP, plans, guards and (unless it is a dry run or the
organization has no valid SCIM token) applies the plan. The stored state is
read *before* the snapshot. Every change is applied only if its user or group
is still at the version read then, so a SCIM push that lands during the run
wins and the change is deferred to the next run.
"""

from __future__ import annotations

import logging
import uuid
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    ConnectorConfig,
    Organization,
    Run,
    RunChange,
    RunMode,
    RunStatus,
    RunTrigger,
)
from scim_reconciler.errors import (
    NotAllowedError,
    NotFoundError,
    ReconcilerError,
    RunInProgressError,
)
from scim_reconciler.observability import metrics
from scim_reconciler.observability.logging import run_log_context
from scim_reconciler.reconcile.apply import BATCH_SIZE, apply_changes
from scim_reconciler.reconcile.batch import RunState, table_of
from scim_reconciler.reconcile.bulk import insert_rows
from scim_reconciler.reconcile.connectors.base import Connector
from scim_reconciler.reconcile.connectors.registry import build_connector
from scim_reconciler.reconcile.guards import apply_guards
from scim_reconciler.reconcile.heap import fewer_collections
from scim_reconciler.reconcile.locks import run_lock
from scim_reconciler.reconcile.model import (
    Change,
    ChangeKind,
    ChangeStatus,
    Plan,
    Policy,
)
from scim_reconciler.reconcile.plan import make_plan
from scim_reconciler.reconcile.rows import run_change_row
from scim_reconciler.reconcile.snapshot import take_snapshot
from scim_reconciler.reconcile.store import load_stored_state
from scim_reconciler.services.tokens import has_valid_token

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
ConnectorFactory = Callable[[ConnectorConfig], Connector]


@dataclass(frozen=True)
class RunRequest:
    trigger: RunTrigger = RunTrigger.manual
    dry_run: bool = False
    only_user: str | None = None
    only_group: str | None = None


@dataclass(frozen=True)
class RunReport:
    run: Run
    changes: tuple[Change, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()


def counts_of(changes: tuple[Change, ...] | list[Change]) -> dict[str, Any]:
    by_kind = {kind.value: 0 for kind in ChangeKind}
    by_status = {status.value: 0 for status in ChangeStatus}
    for change in changes:
        by_kind[change.kind.value] += 1
        by_status[change.status.value] += 1
    return {"by_kind": by_kind, "by_status": by_status}


def drift_of(changes: tuple[Change, ...] | list[Change]) -> int:
    """Count the applied changes, each a push event that went missing.

    A role change follows from the membership change that causes it, so it is
    not counted again.
    """
    return sum(
        1
        for change in changes
        if change.status is ChangeStatus.applied
        and change.kind is not ChangeKind.role_change
    )


def _policy(config: ConnectorConfig) -> Policy:
    return Policy(
        max_deactivations=config.max_deactivations,
        max_deactivation_percent=config.max_deactivation_percent,
    )


class Reconciler:
    """Runs, approvals and recovery of reconciliations against one database."""

    def __init__(
        self,
        database: Database,
        secret_key: str | None,
        owner: str = "cli",
        connector_factory: ConnectorFactory | None = None,
        should_stop: Callable[[], bool] | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.database = database
        # Changes applied and recorded per transaction.
        self.batch_size = batch_size
        self.secret_key = secret_key
        self.owner = owner
        # True once the service is stopping: apply stops between batches.
        self.should_stop = should_stop or (lambda: False)
        # Tests pass a factory to read from a connector they control.
        self.connector_factory = connector_factory or self._stored_connector

    def _stored_connector(self, config: ConnectorConfig) -> Connector:
        return build_connector(config.kind, config.config, self.secret_key)

    async def _organization(self, slug: str) -> tuple[Organization, ConnectorConfig]:
        async with self.database.read() as session:
            org = await session.scalar(select(Organization).filter_by(slug=slug))
            if org is None:
                raise NotFoundError(f"organization {slug!r} not found")
            config = await session.get(ConnectorConfig, org.id)
        if config is None:
            raise NotFoundError(
                f"organization {slug!r} has no connector: set one with "
                f"`scim-reconciler connector set {slug} --kind file --path FILE`"
            )
        return org, config

    async def run(
        self,
        slug: str,
        request: RunRequest,
        progress: Progress | None = None,
        on_plan: Callable[[Plan], None] | None = None,
        *,
        on_start: Callable[[Run], None] | None = None,
    ) -> RunReport:
        """Run one reconciliation; ``on_plan`` gets the guarded plan before apply.

        ``on_start`` gets the run once its record is stored, before the snapshot.
        """
        org, config = await self._organization(slug)
        lock = run_lock(self.database, org.id)
        if not await lock.try_acquire():
            raise RunInProgressError(
                f"a reconciliation of organization {slug!r} is already in progress; "
                "wait for it to finish"
            )
        try:
            await self._interrupt_stale(org.id)
            return await self._run_locked(
                org, config, request, progress, on_plan, on_start
            )
        finally:
            await lock.release()

    async def _interrupt_stale(self, org_id: int) -> int:
        """Mark runs left 'running' as interrupted; only call while holding the lock.

        Their counts and drift become those of the changes their batches
        recorded before the process stopped.
        """
        async with self.database.write() as session:
            stale = (
                await session.scalars(
                    select(Run).where(
                        Run.org_id == org_id, Run.status == RunStatus.running
                    )
                )
            ).all()
            for run in stale:
                run.status = RunStatus.interrupted
                run.finished_at = utcnow()
                run.error = "the process running it stopped before it finished"
                run.counts, run.drift = await _recorded_counts(session, run.id)
        count = len(stale)
        if count:
            logger.warning(
                "Marked %d unfinished runs of org %s interrupted", count, org_id
            )
        return count

    async def recover(self) -> int:
        """Mark interrupted every run whose process is gone; called at start."""
        async with self.database.read() as session:
            org_ids = set(
                (
                    await session.scalars(
                        select(Run.org_id).where(Run.status == RunStatus.running)
                    )
                ).all()
            )
        recovered = 0
        for org_id in org_ids:
            lock = run_lock(self.database, org_id)
            if await lock.try_acquire():
                try:
                    recovered += await self._interrupt_stale(org_id)
                finally:
                    await lock.release()
        return recovered

    async def _run_locked(
        self,
        org: Organization,
        config: ConnectorConfig,
        request: RunRequest,
        progress: Progress | None,
        on_plan: Callable[[Plan], None] | None,
        on_start: Callable[[Run], None] | None = None,
    ) -> RunReport:
        run = Run(
            id=str(uuid.uuid4()),
            org_id=org.id,
            trigger=request.trigger,
            mode=RunMode.dry_run if request.dry_run else RunMode.apply,
            status=RunStatus.running,
            scope={"user": request.only_user, "group": request.only_group},
            started_at=utcnow(),
            finished_at=None,
            counts={},
            drift=0,
            error=None,
            summary={},
            owner=self.owner,
        )
        async with self.database.write() as session:
            session.add(run)
        if on_start is not None:
            on_start(run)
        log = logging.LoggerAdapter(logger, {"org": org.slug, "run": run.id})
        with run_log_context(org.slug, run.id):
            log.info(
                "Run %s of org %s started (%s, %s)",
                run.id,
                org.slug,
                run.trigger.value,
                run.mode.value,
            )
            try:
                with fewer_collections():
                    report = await self._execute(
                        run, org, config, request, progress, on_plan
                    )
            except Exception as exc:
                log.exception("Run %s of org %s failed unexpectedly", run.id, org.slug)
                error = (
                    f"the run failed unexpectedly ({type(exc).__name__}); the service "
                    "log has the details, and the audit log lists any change it "
                    "applied"
                )
                try:
                    # Changes of batches it applied are recorded; count those.
                    await self._finish(run, RunStatus.failed, None, error=error)
                except Exception:
                    log.exception("Could not record run %s as failed", run.id)
                metrics.observe_run(org.slug, run, ())
                raise
            metrics.observe_run(org.slug, report.run, report.changes)
            return report

    async def _execute(
        self,
        run: Run,
        org: Organization,
        config: ConnectorConfig,
        request: RunRequest,
        progress: Progress | None,
        on_plan: Callable[[Plan], None] | None,
    ) -> RunReport:
        """Plan, guard and apply; return the report of the finished run."""
        try:
            plan, can_apply = await self._plan(org, config, request)
        except ReconcilerError as exc:
            # ConnectorError included: a failed or partial read applies nothing.
            return await self._finish(run, RunStatus.failed, (), error=str(exc))

        if on_plan is not None:
            on_plan(plan)
        changes = plan.changes
        error = None
        # Positions in the plan of the changes still to record; None for all.
        unrecorded: Sequence[int] | None = None
        if request.dry_run:
            status = RunStatus.succeeded
        elif not can_apply:
            status = RunStatus.paused
        else:
            planned = sum(1 for c in changes if c.status is ChangeStatus.planned)
            changes, unrecorded = await self._apply(run, org, changes, progress)
            held = any(change.status is ChangeStatus.held for change in changes)
            status = RunStatus.held if held else RunStatus.succeeded
            unapplied = sum(1 for c in changes if c.status is ChangeStatus.planned)
            if unapplied:
                status = RunStatus.interrupted
                error = (
                    f"the service stopped during the run: {unapplied} of "
                    f"{planned} changes were not applied, and the next run "
                    "plans them again"
                )
        return await self._finish(
            run,
            status,
            changes,
            plan=plan,
            paused=not can_apply,
            error=error,
            unrecorded=unrecorded,
        )

    async def _apply(
        self,
        run: Run,
        org: Organization,
        changes: tuple[Change, ...],
        progress: Progress | None,
    ) -> tuple[tuple[Change, ...], list[int]]:
        """Apply the planned changes, each batch recording its own.

        Returns every change with its outcome, and the positions of those that
        no batch recorded: the held ones, and those left when the service
        stopped.
        """
        seqs = array(
            "q",
            (
                position
                for position, change in enumerate(changes)
                if change.status is ChangeStatus.planned
            ),
        )
        state = RunState()
        applied = await apply_changes(
            self.database,
            org.id,
            run.id,
            [changes[position] for position in seqs],
            progress=progress,
            batch_size=self.batch_size,
            state=state,
            should_stop=self.should_stop,
            seqs=seqs,
        )
        final = list(changes)
        for position, change in zip(seqs, applied, strict=True):
            final[position] = change
        unrecorded = []
        for position, change in enumerate(final):
            if change.status is ChangeStatus.held:
                # Recorded as they must apply after this run's own changes.
                final[position] = state.rebase(change)
                unrecorded.append(position)
            elif change.status is ChangeStatus.planned:
                unrecorded.append(position)
        return tuple(final), unrecorded

    async def _plan(
        self, org: Organization, config: ConnectorConfig, request: RunRequest
    ) -> tuple[Plan, bool]:
        async with self.database.read() as session:
            stored = await load_stored_state(session, org.id)
            can_apply = await has_valid_token(session, org.id)
        references = sorted({mapping.group for mapping in stored.mappings})
        connector = self.connector_factory(config)
        try:
            snapshot = await take_snapshot(connector, references)
        finally:
            await connector.close()
        # A connector may keep what it read (the directory file's whole content),
        # which planning no longer needs.
        del connector
        plan = make_plan(
            snapshot, stored, only_user=request.only_user, only_group=request.only_group
        )
        plan = apply_guards(
            plan, snapshot, stored, _policy(config), can_apply=can_apply
        )
        return plan, can_apply

    async def _finish(
        self,
        run: Run,
        status: RunStatus,
        changes: tuple[Change, ...] | None,
        *,
        error: str | None = None,
        plan: Plan | None = None,
        paused: bool = False,
        unrecorded: Sequence[int] | None = None,
    ) -> RunReport:
        """Record the run's outcome and the changes its batches did not record.

        ``changes`` None means they are unknown (the run failed unexpectedly):
        counts and drift then come from the changes recorded so far.
        ``unrecorded`` are the positions of the changes to record, None for all.
        """
        run.status = status
        run.finished_at = utcnow()
        run.error = error
        if changes is not None:
            run.counts = counts_of(changes)
            run.drift = drift_of(changes)
        run.summary = {
            "skipped": [list(item) for item in plan.skipped] if plan else [],
            "warnings": list(plan.warnings) if plan else [],
            "paused_reason": "the organization has no valid SCIM token"
            if paused
            else None,
        }
        async with self.database.write() as session:
            if changes is None:
                run.counts, run.drift = await _recorded_counts(session, run.id)
            await session.merge(run)
            if changes is not None:
                # The flush starts the transaction that the bulk insert needs.
                await session.flush()
                positions = range(len(changes)) if unrecorded is None else unrecorded
                await _store_changes(session, run.id, changes, positions)
        changes = changes or ()
        logging.LoggerAdapter(logger, {"run": run.id}).info(
            "Run %s finished %s: %d changes, drift %d%s",
            run.id,
            status.value,
            len(changes),
            run.drift,
            f", error: {error}" if error else "",
        )
        return RunReport(
            run,
            changes,
            plan.skipped if plan else (),
            plan.warnings if plan else (),
        )

    async def approve(self, run_id: str, actor: str = "operator") -> RunReport:
        """Apply a run's held changes that still hold against the store.

        Raises NotAllowedError for a dry run, for a run paused for want of a
        SCIM token, and while the organization has no valid token.
        """
        async with self.database.read() as session:
            found = await session.get(Run, run_id)
        if found is None:
            raise NotFoundError(
                f"run {run_id!r} not found: `scim-reconciler runs list ORG`"
            )
        lock = run_lock(self.database, found.org_id)
        if not await lock.try_acquire():
            raise RunInProgressError(
                "a reconciliation of this organization is in progress; approve "
                "when it ends"
            )
        try:
            # Read under the lock, so two approvals cannot apply one change twice.
            run, changes = await self._approvable(run_id)
            approved = [
                replace(c, status=ChangeStatus.planned, hold_reason=None)
                for c in changes
                if c.status is ChangeStatus.held
            ]
            applied = await apply_changes(
                self.database,
                run.org_id,
                run.id,
                approved,
                actor=actor,
                batch_size=self.batch_size,
            )
            results = iter(applied)
            final = tuple(
                next(results) if c.status is ChangeStatus.held else c for c in changes
            )
            drift_before = run.drift
            run.counts = counts_of(final)
            run.drift = drift_of(final)
            if not any(change.status is ChangeStatus.held for change in final):
                run.status = RunStatus.succeeded
            async with self.database.write() as session:
                await session.merge(run)
                await session.execute(
                    delete(RunChange).where(RunChange.run_id == run.id)
                )
                await _store_changes(session, run.id, final, range(len(final)))
                org_slug = await session.scalar(
                    select(Organization.slug).where(Organization.id == run.org_id)
                )
            if org_slug is not None:
                metrics.observe_approval(
                    org_slug, run, applied, run.drift - drift_before, final
                )
            return RunReport(run, final)
        finally:
            await lock.release()

    async def _approvable(self, run_id: str) -> tuple[Run, list[Change]]:
        """Load a run and its changes, checking that its held changes may apply."""
        async with self.database.read() as session:
            run = await session.get(Run, run_id)
            assert run is not None
            rows = (
                await session.scalars(
                    select(RunChange)
                    .where(RunChange.run_id == run_id)
                    .order_by(RunChange.seq)
                )
            ).all()
            can_apply = await has_valid_token(session, run.org_id)
        if run.mode is RunMode.dry_run:
            raise NotAllowedError(
                f"run {run_id} is a dry run, which applies nothing and cannot be "
                "approved: start a run without --dry-run"
            )
        if run.status is RunStatus.paused:
            raise NotAllowedError(
                f"run {run_id} is paused because the organization had no valid SCIM "
                "token, so it applied nothing: a run after a new token plans again"
            )
        changes = [change_from_row(row) for row in rows]
        if not any(change.status is ChangeStatus.held for change in changes):
            raise NotFoundError(f"run {run_id} has no held changes to approve")
        if not can_apply:
            raise NotAllowedError(
                "the organization has no valid SCIM token, so no change from the "
                f"IdP applies: generate a token, then approve run {run_id} again"
            )
        return run, changes


def change_from_row(row: RunChange) -> Change:
    details = dict(row.details or {})
    return Change(
        kind=ChangeKind(row.kind),
        user_name=row.user_name,
        external_id=row.external_id,
        reason=row.reason,
        user_id=row.user_id,
        expected_version=details.pop("_expected_version", None),
        details=details.get("data", {}),
        status=ChangeStatus(row.status),
        hold_reason=row.hold_reason,
        group_versions=details.get("_group_versions", {}),
    )


async def _store_changes(
    session: AsyncSession,
    run_id: str,
    changes: Sequence[Change],
    positions: Sequence[int],
) -> None:
    """Insert the run_changes rows of the changes at ``positions`` of a plan."""
    # Rows are built per chunk, so that a large plan never has them all at once.
    for start in range(0, len(positions), 2000):
        rows = []
        for seq in positions[start : start + 2000]:
            reason, details = changes[seq].explanation.explain()
            rows.append(run_change_row(run_id, seq, changes[seq], reason, details))
        await insert_rows(session, table_of(RunChange), rows)


async def _recorded_counts(
    session: AsyncSession, run_id: str
) -> tuple[dict[str, Any], int]:
    """Return the counts and drift of the changes recorded for a run."""
    by_kind = {kind.value: 0 for kind in ChangeKind}
    by_status = {status.value: 0 for status in ChangeStatus}
    drift = 0
    rows = await session.execute(
        select(RunChange.kind, RunChange.status, func.count())
        .where(RunChange.run_id == run_id)
        .group_by(RunChange.kind, RunChange.status)
    )
    for kind, status, count in rows:
        by_kind[kind] += count
        by_status[status] += count
        if status == ChangeStatus.applied and kind != ChangeKind.role_change:
            drift += count
    return {"by_kind": by_kind, "by_status": by_status}, drift


async def list_runs(database: Database, org_id: int, limit: int = 50) -> list[Run]:
    async with database.read() as session:
        query = (
            select(Run)
            .where(Run.org_id == org_id)
            .order_by(Run.started_at.desc())
            .limit(limit)
        )
        return list((await session.scalars(query)).all())


async def load_run(database: Database, run_id: str) -> RunReport:
    async with database.read() as session:
        run = await session.get(Run, run_id)
        if run is None:
            raise NotFoundError(
                f"run {run_id!r} not found: `scim-reconciler runs list ORG`"
            )
        rows = (
            await session.scalars(
                select(RunChange)
                .where(RunChange.run_id == run_id)
                .order_by(RunChange.seq)
            )
        ).all()
    summary = run.summary or {}
    return RunReport(
        run,
        tuple(change_from_row(row) for row in rows),
        tuple((str(item[0]), str(item[1])) for item in summary.get("skipped", [])),
        tuple(summary.get("warnings", [])),
    )
