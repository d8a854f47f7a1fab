"""One reconciliation run of ``bench.reconcile_bench``, in its own process.

    python -m bench.reconcile_worker DATABASE_URL ORG

It prints what it measured as one JSON object. It imports only what the run
needs, so that its peak RSS is that of a process running a reconciliation,
not of the benchmark's own modules.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

from scim_reconciler.db.engine import open_database
from scim_reconciler.reconcile.runs import Reconciler, RunRequest

MIB = 1024 * 1024


def peak_rss_mib() -> float:
    """Return this process's peak RSS so far, in MiB.

    On Linux it reads ``VmHWM`` from /proc/self/status. ``ru_maxrss`` is no
    use there, because exec keeps the parent's peak in it when that is larger.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MIB
    except OSError:
        pass
    # Without /proc, fall back to ru_maxrss, which the BSDs report in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB


async def reconcile(url: str, org: str) -> dict[str, Any]:
    """Reconcile the organization once and return the measures of the run."""
    database = open_database(url)
    try:
        rss_before = peak_rss_mib()
        started = time.perf_counter()
        cpu_started = time.process_time()
        report = await Reconciler(database, None, owner="bench").run(org, RunRequest())
        cpu_seconds = time.process_time() - cpu_started
        seconds = time.perf_counter() - started
    finally:
        await database.dispose()
    counts = report.run.counts
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "status": report.run.status.value,
        "error": report.run.error,
        "changes": len(report.changes),
        "by_kind": {kind: n for kind, n in counts["by_kind"].items() if n},
        "by_status": {status: n for status, n in counts["by_status"].items() if n},
        "drift": report.run.drift,
        "rss_before_mib": round(rss_before, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def main(argv: list[str] | None = None) -> int:
    url, org = argv if argv is not None else sys.argv[1:]
    print(json.dumps(asyncio.run(reconcile(url, org))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
