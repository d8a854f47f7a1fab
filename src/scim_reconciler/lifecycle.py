"""Graceful shutdown of ``serve``: the stop request and the draining of runs.

On SIGTERM the process stops scheduling runs at once, and a running apply
stops after its current batch and records the run as interrupted. HTTP
requests in flight finish meanwhile (uvicorn stops accepting new ones). All of
it is bounded by ``shutdown_grace_seconds``, counted from the signal. A run
still going at the deadline is cancelled, and the next start marks it
interrupted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Set
from typing import Any

from apscheduler.schedulers.base import STATE_RUNNING

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import Run
from scim_reconciler.reconcile.runs import Reconciler, RunReport, RunRequest
from scim_reconciler.reconcile.scheduler import ReconcileScheduler

logger = logging.getLogger(__name__)

# Time a cancelled run gets to release its lock and connection.
CANCEL_WAIT_SECONDS = 2.0


class Shutdown:
    """The stop request of one serving process, with its deadline.

    ``request`` may be called from a signal handler: callbacks run later, on
    the event loop given to ``attach``.
    """

    def __init__(
        self,
        grace_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.requested_at: float | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def on_request(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the event loop once a stop is requested."""
        self._callbacks.append(callback)

    def is_requested(self) -> bool:
        return self.requested_at is not None

    def request(self) -> None:
        """Ask the process to stop; later calls do nothing."""
        if self.requested_at is not None:
            return
        self.requested_at = self.clock()
        for callback in self._callbacks:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(callback)
            else:
                callback()

    def remaining_seconds(self) -> float:
        """Seconds left of the grace period; the whole period before a request."""
        if self.requested_at is None:
            return self.grace_seconds
        elapsed = self.clock() - self.requested_at
        return max(self.grace_seconds - elapsed, 0.0)


class DrainingScheduler(ReconcileScheduler):
    """The reconcile scheduler, keeping track of the runs it started."""

    def __init__(
        self, database: Database, reconciler: Reconciler, refresh_seconds: int
    ) -> None:
        super().__init__(database, reconciler, refresh_seconds)
        self.run_tasks: set[asyncio.Task[object]] = set()

    @property
    def is_scheduling(self) -> bool:
        """Whether the scheduler starts runs: it is started and not paused."""
        return bool(self.scheduler.state == STATE_RUNNING)

    def stop_scheduling(self) -> None:
        """Start no more runs; the running ones go on."""
        # Not shutdown(): APScheduler 3's asyncio executor cancels the running
        # jobs when it shuts down, and a cancelled run records nothing.
        if self.scheduler.state == STATE_RUNNING:
            self.scheduler.pause()
            logger.info("Scheduler paused: the service is stopping")

    async def reconcile(self, slug: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.run_tasks.add(task)
        try:
            await super().reconcile(slug)
        finally:
            if task is not None:
                self.run_tasks.discard(task)

    async def drain(self, timeout_seconds: float) -> None:
        """Stop scheduling, wait for the running runs, then shut the scheduler down.

        Runs still going after ``timeout_seconds`` are cancelled.
        """
        self.stop_scheduling()
        pending = set(self.run_tasks)
        if pending:
            await wait_or_cancel(pending, timeout_seconds)
        self.shutdown()


async def wait_or_cancel(
    pending: Set[asyncio.Task[Any]], timeout_seconds: float
) -> None:
    """Wait for running reconciliations; cancel those left after the timeout."""
    logger.info(
        "Waiting up to %.1f s for %d running reconciliations to stop",
        timeout_seconds,
        len(pending),
    )
    _done, late = await asyncio.wait(pending, timeout=timeout_seconds)
    if not late:
        return
    logger.error(
        "Cancelled %d reconciliations still running at the end of the grace "
        "period; the next start marks them interrupted",
        len(late),
    )
    for task in late:
        task.cancel()
    await asyncio.wait(late, timeout=CANCEL_WAIT_SECONDS)


class RequestedRuns:
    """Runs started by admin API requests, each an asyncio task of this process.

    A request waits only until the run is recorded, so it can return the run's
    id while the run goes on. Shutdown drains these runs like scheduled ones.
    """

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self._tasks: set[asyncio.Task[RunReport]] = set()
        self._by_run: dict[str, asyncio.Task[RunReport]] = {}

    async def start(
        self, slug: str, request: RunRequest
    ) -> tuple[Run, asyncio.Task[RunReport]]:
        """Start a run and return its record once stored, with its task.

        Raises what the run raises before its record exists: NotFoundError for
        an unknown organization or a missing connector, RunInProgressError when
        another run has the organization's lock.
        """
        started: asyncio.Future[Run] = asyncio.get_running_loop().create_future()

        def on_start(run: Run) -> None:
            self._by_run[run.id] = task
            started.set_result(run)

        task = asyncio.create_task(
            self.reconciler.run(slug, request, on_start=on_start),
            name=f"requested run of org {slug}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        waiting: set[asyncio.Future[Any]] = {started, task}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if started.done():
            return started.result(), task
        # The run ended before its record was stored: re-raise why.
        task.result()
        raise RuntimeError(f"the run of org {slug} ended without a record")

    def task_of(self, run_id: str) -> asyncio.Task[RunReport] | None:
        """Return the task of a run that this process is running, or None."""
        return self._by_run.get(run_id)

    def _forget(self, task: asyncio.Task[RunReport]) -> None:
        self._tasks.discard(task)
        for run_id in [key for key, value in self._by_run.items() if value is task]:
            del self._by_run[run_id]
        if not task.cancelled():
            # Marks the exception as retrieved: the reconciler logged it already.
            task.exception()

    async def drain(self, timeout_seconds: float) -> None:
        """Wait for the running runs; cancel those left after the timeout."""
        pending = set(self._tasks)
        if pending:
            await wait_or_cancel(pending, timeout_seconds)
