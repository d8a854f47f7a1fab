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
from collections.abc import Callable

from apscheduler.schedulers.base import STATE_RUNNING

from scim_reconciler.db.engine import Database
from scim_reconciler.reconcile.runs import Reconciler
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
            await self._wait_or_cancel(pending, timeout_seconds)
        self.shutdown()

    async def _wait_or_cancel(
        self, pending: set[asyncio.Task[object]], timeout_seconds: float
    ) -> None:
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
