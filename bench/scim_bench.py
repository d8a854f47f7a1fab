"""SCIM benchmark: scim-reconciler against scim2-server, on SQLite and PostgreSQL.

    python -m bench.scim_bench --users 1000 --users 100000 \\
        --database sqlite --database postgres

For each database and number of users it:

1. creates a fresh store (a SQLite file, or a new PostgreSQL database that is
   dropped afterwards) with one enterprise organization, a SCIM token and the
   users (see ``bench.seed``; seeding is not measured);
2. starts one ``scim-reconciler serve`` process on 127.0.0.1 and runs the load
   generator (``bench.load``, a separate process) against it: userName-filter
   lookup, get by id, create, PATCH deactivate, and a list page of 100;
3. starts scim2-server's in-memory service under uvicorn with the same users
   (``bench.reference_server``) and runs the same lookup load against it;
4. keeps each server busy with lookups from wrk for a fixed time
   (``bench.saturate``), for the throughput that the server, not the load
   generator, sets, then sends wrk's lookups over one connection, for the
   latency of a lookup that waits behind no other;
5. samples each server's resident set size (RSS) with psutil.

It prints a table per case and the targets, and writes every number to a JSON
file. It exits with status 1 if any request failed; a missed speed or memory
target is reported but does not change the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from sqlalchemy.engine import make_url

from bench.processes import (
    MemorySampler,
    clean_environment,
    free_port,
    start_server,
)
from bench.saturate import WrkMissingError, saturate, wrk_path
from bench.seed import seed_store
from bench.workload import TOKEN_ENV
from scim_reconciler.settings import Settings

logger = logging.getLogger("bench.scim_bench")

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_OUTPUT_DIR = REPOSITORY / "bench" / "results"

# The targets. Lookup p50 at the largest size may be at most 1.5 times that at
# the smallest size.
LOOKUP_SCALING_LIMIT = 1.5
# userName lookups must reach at least 1.5 times scim2-server's throughput.
REFERENCE_SPEEDUP = 1.5
# The service's peak resident set size must stay under 250 MiB.
RSS_LIMIT_MIB = 250.0


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scim_bench",
        description="Measure scim-reconciler's SCIM endpoint against scim2-server.",
    )

    cases = parser.add_argument_group("cases: every size is run on every database")
    cases.add_argument(
        "--users",
        type=int,
        action="append",
        help="Users in the organization; repeat for several sizes (default 1000).",
    )
    cases.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        action="append",
        help="Store to measure; repeat for both (default sqlite).",
    )
    cases.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL server on which a database is created for each case and "
        f"dropped after it (default {DEFAULT_POSTGRES_URL}).",
    )
    cases.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also measure scim2-server's lookups (default on).",
    )

    load = parser.add_argument_group("load")
    load.add_argument(
        "--requests", type=int, default=2000, help="Requests per operation."
    )
    load.add_argument(
        "--warmup", type=int, default=200, help="Unmeasured lookups sent first."
    )
    load.add_argument(
        "--concurrency", type=int, default=8, help="Concurrent connections."
    )
    load.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="Time limit of each operation, in seconds.",
    )
    load.add_argument(
        "--saturation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Measure saturated lookup throughput with wrk over --concurrency "
        "connections (default on; needs wrk).",
    )
    load.add_argument(
        "--saturation-seconds",
        type=float,
        default=10.0,
        help="Duration of the wrk lookups over --concurrency connections, in "
        "seconds (default 10).",
    )
    load.add_argument(
        "--latency-seconds",
        type=float,
        default=5.0,
        help="Duration of the wrk lookups over one connection, in seconds (default 5).",
    )

    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=600.0,
        help="Seconds a server may take to start, seeding included.",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON results file (default bench/results/scim-bench-TIME.json).",
    )
    arguments = parser.parse_args(argv)
    arguments.users = arguments.users or [1000]
    arguments.database = arguments.database or ["sqlite"]
    return arguments


# Stores


@contextmanager
def fresh_store(kind: str, postgres_url: str, work_dir: Path) -> Iterator[str]:
    """Yield the SQLAlchemy URL of an empty store, and delete it afterwards."""
    if kind == "sqlite":
        path = work_dir / f"bench-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite+aiosqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    server = make_url(postgres_url).set(drivername="postgresql")
    name = f"scim_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        url = server.set(drivername="postgresql+asyncpg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(
            _postgres_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )


async def _postgres_version(server_url: str) -> str:
    server = make_url(server_url).set(drivername="postgresql")
    connection = await asyncpg.connect(
        server.render_as_string(hide_password=False), timeout=10
    )
    try:
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


async def _postgres_admin(server: Any, statement: str) -> None:
    connection = await asyncpg.connect(
        server.render_as_string(hide_password=False), timeout=10
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


# Load


def run_load(
    arguments: argparse.Namespace,
    base_url: str,
    token: str,
    users: int,
    operations: str,
    server_pid: int,
) -> dict[str, Any]:
    """Run ``bench.load`` in its own process and return its results."""
    command = [
        sys.executable,
        "-m",
        "bench.load",
        f"--base-url={base_url}",
        f"--users={users}",
        f"--operations={operations}",
        f"--requests={arguments.requests}",
        f"--warmup={arguments.warmup}",
        f"--concurrency={arguments.concurrency}",
        f"--max-seconds={arguments.max_seconds}",
        f"--server-pid={server_pid}",
    ]
    phases = operations.count(",") + 2
    completed = subprocess.run(
        command,
        env=clean_environment({TOKEN_ENV: token}),
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=phases * arguments.max_seconds + 60,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"the load generator exited with status {completed.returncode}:\n"
            f"{completed.stderr}"
        )
    results: dict[str, Any] = json.loads(completed.stdout)
    return results


# The lookups that wrk sends: key in the results, label, and the arguments
# that give their duration and connections.
WRK_RUNS = (
    ("saturation", "wrk lookup", "saturation_seconds", "concurrency"),
    ("latency", "wrk 1 conn", "latency_seconds", None),
)


def run_wrk(
    arguments: argparse.Namespace,
    base_url: str,
    token: str,
    users: int,
    server_pid: int,
) -> dict[str, Any]:
    """Send wrk's lookups over --concurrency connections, then over one."""
    measured = {}
    for key, _label, seconds, connections in WRK_RUNS:
        measured[key] = saturate(
            base_url,
            token,
            users,
            seconds=getattr(arguments, seconds),
            connections=getattr(arguments, connections) if connections else 1,
            work_dir=arguments.work_dir,
            server_pid=server_pid,
        )
    return measured


def wrk_results(server: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return the label and result of each wrk run of a server."""
    return [(label, server[key]) for key, label, *_ in WRK_RUNS if key in server]


def measure_service(
    arguments: argparse.Namespace, database_url: str, token: str, users: int
) -> dict[str, Any]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = clean_environment(
        {
            "SCIM_RECONCILER_DATABASE_URL": database_url,
            "SCIM_RECONCILER_PUBLIC_BASE_URL": base_url,
            "SCIM_RECONCILER_LOG_LEVEL": "WARNING",
        }
    )
    command = [
        sys.executable,
        "-m",
        "scim_reconciler",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with (
        start_server(
            command,
            env,
            f"{base_url}/readyz",
            arguments.work_dir / f"serve-{port}.log",
            arguments.work_dir,
            arguments.startup_timeout,
        ) as server,
        MemorySampler(server.process.pid) as memory,
    ):
        operations = run_load(
            arguments,
            f"{base_url}/scim/v2",
            token,
            users,
            "lookup,get,create,patch,list",
            server.process.pid,
        )
        measured = {"operations": operations}
        if arguments.saturation:
            measured |= run_wrk(
                arguments, f"{base_url}/scim/v2", token, users, server.process.pid
            )
        return {**measured, "rss": memory.summary()}


def measure_reference(arguments: argparse.Namespace, users: int) -> dict[str, Any]:
    port = free_port()
    token = f"bench-{uuid.uuid4().hex}"
    command = [
        sys.executable,
        "-m",
        "bench.reference_server",
        f"--port={port}",
        f"--users={users}",
    ]
    base_url = f"http://127.0.0.1:{port}/v2"
    with (
        start_server(
            command,
            clean_environment({TOKEN_ENV: token}),
            f"{base_url}/ServiceProviderConfig",
            arguments.work_dir / f"reference-{port}.log",
            REPOSITORY,
            arguments.startup_timeout,
        ) as server,
        MemorySampler(server.process.pid) as memory,
    ):
        operations = run_load(
            arguments, base_url, token, users, "lookup", server.process.pid
        )
        measured = {"operations": operations}
        if arguments.saturation:
            measured |= run_wrk(arguments, base_url, token, users, server.process.pid)
        return {**measured, "rss": memory.summary()}


def run_case(arguments: argparse.Namespace, kind: str, users: int) -> dict[str, Any]:
    logger.info("Measuring %s with %d users", kind, users)
    # Other processes on the machine skew every number, and the load average
    # shows how busy the machine was.
    case: dict[str, Any] = {
        "database": kind,
        "users": users,
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    with fresh_store(kind, arguments.postgres_url, arguments.work_dir) as url:
        started = time.perf_counter()
        settings = Settings(database_url=url, public_base_url="http://127.0.0.1")
        token = asyncio.run(seed_store(settings, users))
        case["seed_seconds"] = round(time.perf_counter() - started, 1)
        case["service"] = measure_service(arguments, url, token, users)
    if arguments.reference:
        case["reference"] = measure_reference(arguments, users)
    case["load_average_after"] = round(os.getloadavg()[0], 2)
    return case


def describe_machine(arguments: argparse.Namespace) -> dict[str, Any]:
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    if "postgres" in arguments.database:
        machine["postgresql"] = asyncio.run(_postgres_version(arguments.postgres_url))
    return machine


# Targets and report


def evaluate_targets(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check each target on the cases measured; skip a target with no data."""
    targets = []
    for kind in dict.fromkeys(case["database"] for case in cases):
        sized = sorted(
            (case for case in cases if case["database"] == kind),
            key=lambda case: case["users"],
        )
        small, large = sized[0], sized[-1]
        if large["users"] > small["users"]:
            ratio = _latency(large)["p50_ms"] / _latency(small)["p50_ms"]
            measured_by = (
                "wrk, 1 connection" if "latency" in large["service"] else "bench.load"
            )
            targets.append(
                {
                    "target": f"{kind}: lookup p50 at {large['users']} users within "
                    f"{LOOKUP_SCALING_LIMIT}x of {small['users']} users "
                    f"({measured_by})",
                    "measured": f"{ratio:.2f}x",
                    "met": ratio <= LOOKUP_SCALING_LIMIT,
                }
            )
    for case in cases:
        label = f"{case['database']}, {case['users']} users"
        if "reference" in case:
            ours = _throughput(case["service"])
            theirs = _throughput(case["reference"])
            speedup = ours / theirs if theirs else float("inf")
            measured_by = "wrk" if "saturation" in case["service"] else "bench.load"
            targets.append(
                {
                    "target": f"{label}: lookup throughput at least "
                    f"{REFERENCE_SPEEDUP}x scim2-server's ({measured_by})",
                    "measured": f"{speedup:.2f}x ({ours:.0f} vs {theirs:.0f} req/s)",
                    "met": speedup >= REFERENCE_SPEEDUP,
                }
            )
        peak = case["service"]["rss"]["peak_mib"]
        targets.append(
            {
                "target": f"{label}: service peak RSS under {RSS_LIMIT_MIB:.0f} MiB",
                "measured": f"{peak:.0f} MiB",
                "met": peak < RSS_LIMIT_MIB,
            }
        )
    return targets


def _latency(case: dict[str, Any]) -> dict[str, Any]:
    """Lookups over one connection where wrk measured them, else bench.load's.

    Over several connections the p50 is mostly time spent queued behind other
    requests, so it follows throughput and the machine's load.
    """
    service = case["service"]
    lookup: dict[str, Any] = service.get("latency") or service["operations"]["lookup"]
    return lookup


def _throughput(server: dict[str, Any]) -> float:
    """Saturated lookup throughput where wrk measured it, else bench.load's."""
    measured = server.get("saturation") or server["operations"]["lookup"]
    throughput: float = measured["throughput"]
    return throughput


def format_case(case: dict[str, Any]) -> str:
    lines = [
        f"\n{case['database']}, {case['users']} users "
        f"(seeded in {case['seed_seconds']} s; load average "
        f"{case['load_average_before']} before, {case['load_average_after']} after)",
        f"{'server':<13}{'operation':<11}{'ok':>7}{'errors':>8}{'req/s':>9}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'cpu ms':>9}{'load cpu ms':>13}",
    ]
    for server in ("service", "reference"):
        if server not in case:
            continue
        name = "reconciler" if server == "service" else "scim2-server"
        results = [*case[server]["operations"].items(), *wrk_results(case[server])]
        for operation, result in results:
            lines.append(
                f"{name:<13}{operation:<11}{result['ok']:>7}{result['errors']:>8}"
                f"{result['throughput']:>9.0f}{result['p50_ms']:>9.2f}"
                f"{result['p99_ms']:>9.2f}{result['server_cpu_ms']:>9.2f}"
                f"{_optional(result.get('client_cpu_ms')):>13}"
            )
        rss = case[server]["rss"]
        lines.append(
            f"{name:<13}RSS MiB before {rss['before_mib']}, peak {rss['peak_mib']}, "
            f"after {rss['after_mib']}"
        )
    return "\n".join(lines)


def _optional(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def failed_requests(cases: list[dict[str, Any]]) -> list[str]:
    failures = []
    for case in cases:
        for server in ("service", "reference"):
            measured = case.get(server, {})
            results = [
                *measured.get("operations", {}).items(),
                *wrk_results(measured),
            ]
            for operation, result in results:
                if result["errors"] or not result["ok"]:
                    failures.append(
                        f"{case['database']}, {case['users']} users, {server} "
                        f"{operation}: {result['errors']} errors of "
                        f"{result['requests']} requests; first: {result['first_error']}"
                    )
    return failures


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.saturation:
        try:
            wrk_path()
        except WrkMissingError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # httpx logs every request at INFO, the readiness polls included.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started_at = datetime.now(UTC)
    machine = describe_machine(arguments)
    with tempfile.TemporaryDirectory(prefix="scim-bench-") as work_dir:
        arguments.work_dir = Path(work_dir)
        cases = [
            run_case(arguments, kind, users)
            for kind in arguments.database
            for users in arguments.users
        ]
    targets = evaluate_targets(cases)

    for case in cases:
        print(format_case(case))
    print("\nTargets")
    for target in targets:
        print(
            f"  {'met    ' if target['met'] else 'MISSED '}{target['target']}: "
            f"{target['measured']}"
        )

    output = arguments.output or DEFAULT_OUTPUT_DIR / (
        f"scim-bench-{started_at:%Y%m%dT%H%M%SZ}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        key: getattr(arguments, key)
        for key in (
            "requests",
            "warmup",
            "concurrency",
            "max_seconds",
            "reference",
            "saturation",
            "saturation_seconds",
            "latency_seconds",
        )
    }
    output.write_text(
        json.dumps(
            {
                "started_at": started_at.isoformat(),
                "machine": machine,
                "settings": settings,
                "cases": cases,
                "targets": targets,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nResults written to {output}")

    failures = failed_requests(cases)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
