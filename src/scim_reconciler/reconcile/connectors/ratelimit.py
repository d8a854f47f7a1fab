"""A rate-limit budget, so that a run leaves the customer's other integrations
their share of the IdP's rate limit.

IdPs that report their limit (Okta's ``X-Rate-Limit-*``, OneLogin's
``X-RateLimit-*``) report how many requests are left in the current window. When
the budget first sees a window, it reserves ``1 - share`` of what is left for
others and lets the run use the rest. Once the run has used its part, the next
request waits for the window to reset, or fails when that is further away than
``max_wait_seconds``. IdPs that report nothing (Microsoft Graph) are limited
only by their 429 responses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from scim_reconciler.errors import ConnectorUnavailableError
from scim_reconciler.reconcile.connectors.profile import RateLimit

logger = logging.getLogger(__name__)

# OneLogin reports the reset as seconds from now, so the reset time computed
# from two responses of one window can differ by a second or so.
RESET_TOLERANCE_SECONDS = 2.0


@dataclass
class _Window:
    reset_at: float
    # Requests left for everyone, as last reported or counted down by us.
    remaining: int
    # Requests of the window that this run leaves to other integrations.
    reserve: int


class RateLimitBudget:
    """Spends at most ``share`` of the requests an IdP reports as left."""

    def __init__(
        self,
        idp_name: str,
        *,
        share: float,
        max_wait_seconds: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"rate-limit share must be in (0, 1], not {share}")
        self.idp_name = idp_name
        self.share = share
        self.max_wait_seconds = max_wait_seconds
        self._clock = clock
        self._sleep = sleep
        self._windows: dict[str, _Window] = {}
        # Buckets whose requests wait for a reset, so that one warning is logged
        # per wait rather than one per waiting request.
        self._waiting: set[str] = set()

    def record(self, bucket: str, observed: RateLimit) -> None:
        """Update the window of ``bucket`` from a response's rate-limit headers."""
        now = self._clock()
        window = self._windows.get(bucket)
        starts_new = (
            window is None
            or now >= window.reset_at
            or observed.reset_at > window.reset_at + RESET_TOLERANCE_SECONDS
        )
        if window is None or starts_new:
            usable = math.floor(max(observed.remaining, 0) * self.share)
            self._windows[bucket] = _Window(
                reset_at=observed.reset_at,
                remaining=observed.remaining,
                reserve=observed.remaining - usable,
            )
        else:
            window.remaining = min(window.remaining, observed.remaining)

    async def wait_turn(self, bucket: str) -> None:
        """Return when a request to ``bucket`` stays within the budget.

        Raises ConnectorUnavailableError when the budget is used up and the
        window resets later than ``max_wait_seconds`` from now.
        """
        window = self._windows.get(bucket)
        if window is None:
            return
        now = self._clock()
        if now >= window.reset_at:
            del self._windows[bucket]
            return
        if window.remaining > window.reserve:
            # Count the request now, so that concurrent requests see it too.
            window.remaining -= 1
            return

        wait = window.reset_at - now
        if wait > self.max_wait_seconds:
            raise ConnectorUnavailableError(
                f"the run used its share ({self.share:.0%}) of the {self.idp_name} "
                f"rate limit, which resets in {wait:.0f} s, later than "
                f"max_rate_limit_wait_seconds ({self.max_wait_seconds:.0f} s). Retry "
                "later, or raise rate_limit_share or max_rate_limit_wait_seconds."
            )
        if bucket not in self._waiting:
            logger.warning(
                "%s rate-limit budget used (%d left, %d kept for other "
                "integrations); waiting %.1f s for the window to reset",
                self.idp_name,
                window.remaining,
                window.reserve,
                wait,
            )
        self._waiting.add(bucket)
        try:
            await self._sleep(wait)
        finally:
            self._waiting.discard(bucket)
        self._windows.pop(bucket, None)
