"""Fewer full garbage collections while a run keeps a large plan in memory.

A run of 100k users keeps millions of objects alive (the snapshot, the stored
state and the plan), almost none of them in reference cycles. With CPython's
default thresholds (700, 10, 10) the collector scans all of them again each
time the long-lived objects grow by a quarter. In a first run of 100k users
with bench/reconcile_bench.py, those scans took about half the planning time.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Allocations between young collections during a run; the middle and oldest
# generations keep CPython's factor of 10 between them.
RUN_THRESHOLDS = (100_000, 10, 10)


class _Thresholds:
    """The thresholds to restore when the last of the concurrent runs ends."""

    def __init__(self) -> None:
        self.runs = 0
        self.saved: tuple[int, int, int] = gc.get_threshold()


_state = _Thresholds()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's thresholds for the duration of a run.

    The thresholds belong to the whole process, so concurrent runs share the
    raised ones and the last run to end restores those it found.
    """
    if _state.runs == 0:
        _state.saved = gc.get_threshold()
        gc.set_threshold(*RUN_THRESHOLDS)
    _state.runs += 1
    try:
        yield
    finally:
        _state.runs -= 1
        if _state.runs == 0:
            gc.set_threshold(*_state.saved)
