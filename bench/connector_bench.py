"""IdP connector benchmark: how close a snapshot comes to the fastest read that
the IdP's paging, latency, concurrency and rate limit allow.

    python -m bench.connector_bench --idp okta --idp entra --idp onelogin

For each IdP it:

1. writes a directory file of ``--groups`` groups with ``--members`` members
   each, drawn from ``--users`` users (by default 1,000 groups of 100 members:
   100,000 memberships);
2. starts ``scim-reconciler simulate IDP`` on 127.0.0.1 with ``--latency-ms``
   added to every response and ``--rate-limit`` requests per
   ``--rate-limit-window`` seconds;
3. stores the connector configuration that the simulator prints the way
   ``connector set`` does, builds the connector from it, and times
   ``take_snapshot`` over every group, each mapped by its id, as a run reads
   them;
4. compares the time with the lower bound set by the number of requests, the
   latency, the connector's concurrency and its rate-limit budget, and counts
   the responses by status on the connector's HTTP client.

Targets: every snapshot within 1.25x of its lower bound, and no 429 from an
IdP that reports its rate limit (Okta and OneLogin), because the connector
spends at most ``rate_limit_share`` of what the IdP reports as left. Microsoft
Graph reports nothing, so its 429s are counted but not a target. The exit
status is 1 when a snapshot fails; a missed target is reported only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvloop

from bench.processes import clean_environment
from scim_reconciler.reconcile import secrets
from scim_reconciler.reconcile.connectors.base import Connector
from scim_reconciler.reconcile.connectors.registry import (
    build_connector,
    parse_config,
)
from scim_reconciler.reconcile.snapshot import take_snapshot

logger = logging.getLogger("bench.connector_bench")

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT_DIR = REPOSITORY / "bench" / "results"
IDPS = ("okta", "entra", "onelogin")
# Largest page each simulated IdP serves, as the IdP documents it.
MAX_PAGE_SIZE = {"okta": 1000, "entra": 999, "onelogin": 100}
# IdPs whose responses report the requests left in the window.
REPORTS_RATE_LIMIT = {"okta", "onelogin"}
# Snapshots read this many groups at a time (take_snapshot's default, which
# runs use).
SNAPSHOT_CONCURRENCY = 4
# Targets.
BOUND_RATIO_LIMIT = 1.25
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.connector_bench",
        description="Time IdP connector snapshots against the IdP simulator.",
    )
    parser.add_argument(
        "--idp",
        choices=IDPS,
        action="append",
        help="IdP to simulate; repeat for several (default okta).",
    )

    # The directory file
    parser.add_argument("--groups", type=int, default=1000, help="Mapped groups.")
    parser.add_argument(
        "--members", type=int, default=100, help="Members of each group."
    )
    parser.add_argument(
        "--users",
        type=int,
        default=20_000,
        help="Users that the memberships are spread over.",
    )

    # The simulator
    parser.add_argument(
        "--page-size",
        type=int,
        help="Largest page the simulator serves (default: the IdP's maximum).",
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=20,
        help="Delay the simulator adds to every response, in milliseconds.",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=2400,
        help="Requests the simulator allows per window; 0 turns the limit off.",
    )
    parser.add_argument(
        "--rate-limit-window",
        type=float,
        default=60.0,
        help="Length of the simulator's rate-limit window, in seconds.",
    )

    # The connector and the measurement
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=4,
        help="The connector's max_concurrency (requests in flight).",
    )
    parser.add_argument(
        "--rate-limit-share",
        type=float,
        default=0.5,
        help="The connector's rate_limit_share (share of what is left it may use).",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Snapshots per IdP, each from a fresh simulator; the fastest counts.",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON results file (default bench/results/connector-bench-TIME.json).",
    )
    arguments = parser.parse_args(argv)
    arguments.idp = arguments.idp or ["okta"]
    return arguments


# The directory


def user_id(idp: str, number: int) -> str:
    if idp == "okta":
        return f"00u{number:017d}"
    if idp == "entra":
        return f"00000000-0000-4000-8000-{number:012d}"
    return str(1_000_000 + number)


def group_id(idp: str, number: int) -> str:
    """Return an id that the IdP's connector resolves as an id, not a name."""
    if idp == "okta":
        return f"00g{number:017d}"
    if idp == "entra":
        return f"00000000-0000-4000-9000-{number:012d}"
    return str(100_000 + number)


def write_directory(
    path: Path, idp: str, groups: int, members: int, users: int
) -> list[str]:
    """Write the directory file and return the group ids, the mapped references.

    Group ``g`` has the ``members`` users that follow user ``g * members``
    (modulo ``users``), so every user belongs to about the same number of groups.
    """
    if members > users:
        raise ValueError(f"--members ({members}) must not exceed --users ({users})")
    user_list = [
        {
            "id": user_id(idp, number),
            "userName": f"user{number}@example.com",
            "email": f"user{number}@example.com",
            "givenName": "Given",
            "familyName": f"Family{number}",
            "active": number % 10 != 0,
        }
        for number in range(users)
    ]
    group_list = [
        {
            "id": group_id(idp, number),
            "name": f"Group {number}",
            "members": [
                user_id(idp, (number * members + offset) % users)
                for offset in range(members)
            ],
        }
        for number in range(groups)
    ]
    path.write_text(json.dumps({"users": user_list, "groups": group_list}))
    return [group["id"] for group in group_list]


# The lower bound


@dataclass(frozen=True)
class Bound:
    """The fastest snapshot that the IdP and the connector's limits allow."""

    requests: int
    latency_seconds: float
    rate_limited_seconds: float

    @property
    def seconds(self) -> float:
        return max(self.latency_seconds, self.rate_limited_seconds)


def requests_by_bucket(
    idp: str, groups: int, members: int, page_size: int
) -> dict[str, int]:
    """Count a snapshot's requests per rate-limit window of the simulated IdP.

    One lookup per group (mapped by id), ceil(members / page size) member
    pages per group, one user-details request per OneLogin page, and one token
    request for the OAuth IdPs (the Okta simulator prints an API token). Okta
    limits each endpoint family on its own; the other two simulators count
    every request in one window. Each connector's README lists its requests.
    """
    pages = groups * max(1, math.ceil(members / page_size))
    if idp == "okta":
        return {"/api/v1/groups/{id}": groups, "/api/v1/groups/{id}/users": pages}
    if idp == "entra":
        return {"all": 1 + groups + pages}
    return {"all": 1 + groups + 2 * pages}


def rate_limited_bound(
    buckets: dict[str, int],
    *,
    latency: float,
    concurrency: int,
    budget: int,
    window: float,
) -> float:
    """Bound the time of requests that may spend ``budget`` per window and bucket.

    A bucket of R requests needs k = ceil(R / budget) windows. With K the most
    windows of any bucket, each bucket's requests beyond its first (K - 1)
    budgets cannot start before K - 1 windows have passed, and then they share
    the concurrency. A window starts with its bucket's first request, as the
    simulator's fixed windows do, so no earlier start is possible.
    """
    if budget <= 0:
        return 0.0
    windows = max(math.ceil(count / budget) for count in buckets.values())
    if windows <= 1:
        return 0.0
    after = sum(max(0, count - (windows - 1) * budget) for count in buckets.values())
    return (windows - 1) * window + math.ceil(after / concurrency) * latency


def lower_bound(
    buckets: dict[str, int],
    *,
    latency: float,
    concurrency: int,
    budget: int | None,
    window: float,
) -> Bound:
    """Bound a snapshot's wall time from below.

    Each request takes at least ``latency`` and at most ``concurrency`` are in
    flight, so the snapshot takes at least ceil(requests / concurrency)
    latencies. The rate limit bounds it too (see ``rate_limited_bound``).
    """
    requests = sum(buckets.values())
    latency_seconds = math.ceil(requests / concurrency) * latency
    rate_limited = 0.0
    if budget is not None:
        rate_limited = rate_limited_bound(
            buckets,
            latency=latency,
            concurrency=concurrency,
            budget=budget,
            window=window,
        )
    return Bound(requests, latency_seconds, rate_limited)


# One case


@dataclass
class StatusCounter:
    """Responses seen by the connector's HTTP client, by status."""

    by_status: dict[int, int]

    async def __call__(self, response: httpx.Response) -> None:
        status = response.status_code
        self.by_status[status] = self.by_status.get(status, 0) + 1


class CpuClock:
    """CPU time (user and system) that a process spends between start and stop."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.started = 0.0
        self.seconds = 0.0

    def _now(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self.started = self._now()

    def stop(self) -> None:
        self.seconds = self._now() - self.started


async def start_simulator(
    arguments: argparse.Namespace, idp: str, directory: Path, log_path: Path
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """Start ``scim-reconciler simulate`` and return it with its first line."""
    options = [
        "--directory", str(directory), "--port", "0",
        "--latency-ms", str(arguments.latency_ms),
        "--rate-limit", str(arguments.rate_limit),
        "--rate-limit-window", str(arguments.rate_limit_window),
    ]  # fmt: skip
    if arguments.page_size:
        options += ["--page-size", str(arguments.page_size)]
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scim_reconciler", "simulate", idp, *options,
            stdout=asyncio.subprocess.PIPE, stderr=log,
            env=clean_environment({}), cwd=REPOSITORY,
        )  # fmt: skip
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT_S)
    if not line:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        raise RuntimeError(
            f"simulate {idp} exited with status {process.returncode} before "
            f"printing its configuration; see {log_path}"
        )
    announced: dict[str, Any] = json.loads(line)
    return process, announced


async def stop_simulator(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)


def build_counted_connector(
    arguments: argparse.Namespace, announced: dict[str, Any], counter: StatusCounter
) -> Connector:
    """Build the connector as a run does, from the sealed configuration."""
    key = secrets.new_key()
    raw = {
        **announced["connector"],
        "max_concurrency": arguments.max_concurrency,
        "rate_limit_share": arguments.rate_limit_share,
        # A rate-limit window may be longer than the default wait of 60 s, up to
        # the setting's maximum of an hour.
        "max_rate_limit_wait_seconds": min(
            3600.0, max(60.0, arguments.rate_limit_window + 5)
        ),
    }
    parsed = parse_config(raw, key)
    connector = build_connector(parsed.kind, parsed.config, key)
    # Every IdP connector sends through one httpx client, its HTTP seam.
    client: httpx.AsyncClient = connector.http.client  # type: ignore[attr-defined]
    client.event_hooks = {"request": [], "response": [counter]}
    return connector


@dataclass
class Measurement:
    """One timed snapshot."""

    seconds: float
    memberships: int
    responses_by_status: dict[int, int]
    connector_cpu_seconds: float
    simulator_cpu_seconds: float
    error: str | None


async def measure_snapshot(
    arguments: argparse.Namespace,
    idp: str,
    directory: Path,
    references: list[str],
    log_path: Path,
) -> Measurement:
    """Start a fresh simulator, time one snapshot of every group, stop it."""
    process, announced = await start_simulator(arguments, idp, directory, log_path)
    counter = StatusCounter({})
    error = None
    memberships = 0
    simulator_cpu = CpuClock(psutil.Process(process.pid))
    own_cpu = CpuClock(psutil.Process())
    try:
        connector = build_counted_connector(arguments, announced, counter)
        started = time.perf_counter()
        simulator_cpu.start()
        own_cpu.start()
        try:
            snapshot = await take_snapshot(connector, references)
            memberships = sum(len(group.member_ids) for group in snapshot.groups)
        except Exception as exc:  # reported in the results, and in the exit status
            logger.exception("The %s snapshot failed", idp)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            elapsed = time.perf_counter() - started
            simulator_cpu.stop()
            own_cpu.stop()
            await connector.close()
    finally:
        await stop_simulator(process)
    return Measurement(
        elapsed,
        memberships,
        counter.by_status,
        own_cpu.seconds,
        simulator_cpu.seconds,
        error,
    )


async def run_case(
    arguments: argparse.Namespace, idp: str, work_dir: Path
) -> dict[str, Any]:
    """Measure ``--repeat`` snapshots of one IdP and report the fastest."""
    directory = work_dir / f"{idp}-directory.json"
    references = write_directory(
        directory, idp, arguments.groups, arguments.members, arguments.users
    )
    page_size = min(arguments.page_size or MAX_PAGE_SIZE[idp], MAX_PAGE_SIZE[idp])
    buckets = requests_by_bucket(idp, arguments.groups, arguments.members, page_size)
    budget = None
    if arguments.rate_limit > 0:
        share = arguments.rate_limit_share if idp in REPORTS_RATE_LIMIT else 1.0
        budget = math.floor(arguments.rate_limit * share)
    bound = lower_bound(
        buckets,
        latency=arguments.latency_ms / 1000,
        concurrency=min(arguments.max_concurrency, SNAPSHOT_CONCURRENCY),
        budget=budget,
        window=arguments.rate_limit_window,
    )

    load_before = os.getloadavg()[0]
    runs = [
        await measure_snapshot(
            arguments, idp, directory, references, work_dir / f"{idp}-{n}.log"
        )
        for n in range(arguments.repeat)
    ]
    load_after = os.getloadavg()[0]
    failed = [run for run in runs if run.error]
    fastest = min(runs, key=lambda run: run.seconds)
    rate_limited = sum(run.responses_by_status.get(429, 0) for run in runs)
    return {
        "idp": idp,
        "groups": arguments.groups,
        "members_per_group": arguments.members,
        "memberships": fastest.memberships,
        "page_size": page_size,
        "seconds": round(fastest.seconds, 3),
        "all_seconds": [round(run.seconds, 3) for run in runs],
        "bound": {**asdict(bound), "seconds": bound.seconds},
        "ratio": round(fastest.seconds / bound.seconds, 3) if bound.seconds else None,
        "requests_expected": bound.requests,
        "requests_sent": sum(fastest.responses_by_status.values()),
        "responses_by_status": {
            str(status): count
            for status, count in sorted(fastest.responses_by_status.items())
        },
        # Over every run, not only the fastest.
        "rate_limited_429": rate_limited,
        "cpu_seconds": {
            "connector": round(fastest.connector_cpu_seconds, 3),
            "simulator": round(fastest.simulator_cpu_seconds, 3),
        },
        "budget_per_window": budget,
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "error": failed[0].error if failed else None,
    }


# Report


def evaluate_targets(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    targets = []
    for case in cases:
        if case["error"]:
            continue
        ratio = case["ratio"]
        targets.append(
            {
                "target": f"{case['idp']}: snapshot within {BOUND_RATIO_LIMIT}x of "
                "the lower bound",
                "measured": f"{ratio}x",
                "met": ratio is not None and ratio <= BOUND_RATIO_LIMIT,
            }
        )
        if case["idp"] in REPORTS_RATE_LIMIT:
            targets.append(
                {
                    "target": f"{case['idp']}: no 429 within the connector's budget",
                    "measured": f"{case['rate_limited_429']} responses 429",
                    "met": case["rate_limited_429"] == 0,
                }
            )
    return targets


def format_case(case: dict[str, Any]) -> str:
    bound = case["bound"]
    lines = [
        f"\n{case['idp']}: {case['groups']} groups x {case['members_per_group']} "
        f"members, {case['memberships']} memberships read, page size "
        f"{case['page_size']}",
        f"  snapshot      {case['seconds']:.2f} s (fastest of {case['all_seconds']})",
        f"  lower bound   {bound['seconds']:.2f} s (latency "
        f"{bound['latency_seconds']:.2f} s, rate limit "
        f"{bound['rate_limited_seconds']:.2f} s)",
        f"  ratio         {case['ratio']}x",
        f"  requests      {case['requests_sent']} sent, {case['requests_expected']} "
        "expected",
        f"  by status     {case['responses_by_status']}",
        f"  CPU           {case['cpu_seconds']['connector']:.2f} s connector, "
        f"{case['cpu_seconds']['simulator']:.2f} s simulator",
        f"  budget        {case['budget_per_window']} requests per window",
        f"  load average  {case['load_average'][0]} before, "
        f"{case['load_average'][1]} after",
    ]
    if case["error"]:
        lines.append(f"  ERROR         {case['error']}")
    return "\n".join(lines)


async def run_all(arguments: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="connector-bench-") as work_dir:
        return [await run_case(arguments, idp, Path(work_dir)) for idp in arguments.idp]


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # httpx logs every request at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started_at = datetime.now(UTC)
    # uvloop, because scheduled runs use the loop of `serve`, which uvicorn
    # sets to uvloop.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        cases = runner.run(run_all(arguments))
    targets = evaluate_targets(cases)

    print(
        f"Python {platform.python_version()} on {platform.machine()} with "
        f"{os.cpu_count()} CPUs, started {started_at:%Y-%m-%d %H:%M} UTC"
    )
    for case in cases:
        print(format_case(case))
    print("\nTargets")
    for target in targets:
        print(
            f"  {'met    ' if target['met'] else 'MISSED '}{target['target']}: "
            f"{target['measured']}"
        )

    output = arguments.output or DEFAULT_OUTPUT_DIR / (
        f"connector-bench-{started_at:%Y%m%dT%H%M%SZ}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        key: getattr(arguments, key)
        for key in (
            "groups", "members", "users", "page_size", "latency_ms", "rate_limit",
            "rate_limit_window", "max_concurrency", "rate_limit_share", "repeat",
        )
    }  # fmt: skip
    output.write_text(
        json.dumps(
            {
                "started_at": started_at.isoformat(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "settings": settings,
                "cases": cases,
                "targets": targets,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nResults written to {output}")
    failed = [case["idp"] for case in cases if case["error"]]
    for idp in failed:
        print(f"FAILED the {idp} snapshot", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
