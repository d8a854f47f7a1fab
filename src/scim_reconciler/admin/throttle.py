"""Throttling of failed sign-ins, per client address.

Each process counts the failures it saw in a sliding window; an address that
reaches the limit waits until its oldest failure leaves the window. With
several replicas an address gets the limit once per replica, which still stops
guessing: keys and credentials carry 256 random bits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

# Addresses tracked at most; the oldest are forgotten first, so that a flood of
# addresses cannot grow the memory of the process without bound.
MAX_TRACKED = 10_000


class SignInThrottle:
    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        horizon = self._clock() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def retry_after(self, client: str) -> float | None:
        """Seconds ``client`` must wait before signing in again, or None."""
        failures = self._recent(client)
        if failures is None or len(failures) < self._max_failures:
            return None
        return max(failures[0] + self._window - self._clock(), 0.001)

    def failed(self, client: str) -> None:
        failures = self._recent(client)
        if failures is None:
            if len(self._failures) >= MAX_TRACKED:
                del self._failures[next(iter(self._failures))]
            failures = self._failures[client] = deque()
        failures.append(self._clock())
        while len(failures) > self._max_failures:
            failures.popleft()

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
