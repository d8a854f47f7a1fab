"""Load generator: send SCIM requests to one server and print latency statistics.

It runs as its own process, so that it shares neither the server's event loop
nor its CPU time and memory accounting:

    BENCH_SCIM_TOKEN=... python -m bench.load --base-url URL --users N

It runs the operations in order (lookup, get, create, patch, list), each with
at most ``--requests`` requests and ``--max-seconds`` seconds, over at most
``--concurrency`` keep-alive connections, and prints one JSON object with a
result per operation on standard output. Each operation feeds the next: get
reads the ids that lookup found, and patch deactivates the users that create
made, each once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psutil

from bench.workload import PAGE_SIZE, TOKEN_ENV, deactivate_body, user_body, user_name

OPERATIONS = ("lookup", "get", "create", "patch", "list")
CREATED_PREFIX = "bench-created"
ERROR_EXCERPT_CHARS = 300

# One request: send it with the client and return an error message, or None.
Request = Callable[[httpx.AsyncClient, int], Awaitable[str | None]]


@dataclass
class Result:
    """Counts and latencies of one operation; latencies in milliseconds."""

    operation: str
    requests: int = 0
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    throughput: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    server_cpu_ms: float | None = None
    client_cpu_ms: float | None = None
    first_error: str | None = None
    latencies: list[float] = field(default_factory=list, repr=False)

    def finish(self, seconds: float) -> None:
        self.seconds = seconds
        self.throughput = self.ok / seconds if seconds > 0 else 0.0
        ordered = sorted(self.latencies)
        self.p50_ms = percentile(ordered, 0.50)
        self.p99_ms = percentile(ordered, 0.99)

    def summary(self) -> dict[str, Any]:
        found = asdict(self)
        del found["latencies"]
        return found


def percentile(ordered: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of an ascending list (0.0 if empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


async def run_operation(
    client: httpx.AsyncClient,
    name: str,
    request: Request,
    total: int,
    concurrency: int,
    max_seconds: float,
) -> Result:
    """Send ``total`` requests from ``concurrency`` workers, stopping at the deadline.

    Request ``i`` goes to whichever worker is free next. A request that raises
    a transport error counts as an error with the exception as its message.
    """
    result = Result(name)
    next_index = 0
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker() -> None:
        nonlocal next_index
        while next_index < total and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            sent = time.perf_counter()
            try:
                error = await request(client, index)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            elapsed_ms = (time.perf_counter() - sent) * 1000
            result.requests += 1
            if error is None:
                result.ok += 1
                result.latencies.append(elapsed_ms)
            else:
                result.errors += 1
                result.first_error = result.first_error or error

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.finish(time.perf_counter() - started)
    return result


def _unexpected(response: httpx.Response, expected: int) -> str | None:
    if response.status_code == expected:
        return None
    excerpt = response.text[:ERROR_EXCERPT_CHARS]
    return (
        f"{response.request.method} {response.request.url.path} returned "
        f"{response.status_code}, expected {expected}: {excerpt}"
    )


class Workload:
    """The requests of each operation, and the ids one operation passes on."""

    def __init__(self, users: int, seed: int) -> None:
        self.users = users
        self.random = random.Random(seed)
        self.found_ids: list[str] = []
        self.created_ids: list[str] = []

    def requests(self) -> dict[str, Request]:
        return {
            "lookup": self.lookup,
            "get": self.get,
            "create": self.create,
            "patch": self.patch,
            "list": self.list_page,
        }

    async def lookup(self, client: httpx.AsyncClient, index: int) -> str | None:
        expected_name = user_name(self.random.randrange(self.users))
        response = await client.get(
            "/Users", params={"filter": f'userName eq "{expected_name}"'}
        )
        error = _unexpected(response, 200)
        if error:
            return error
        resources = response.json().get("Resources") or []
        if len(resources) != 1:
            return (
                f"filter userName eq {expected_name!r} matched {len(resources)} "
                "users, expected 1"
            )
        self.found_ids.append(resources[0]["id"])
        return None

    async def get(self, client: httpx.AsyncClient, index: int) -> str | None:
        user_id = self.random.choice(self.found_ids)
        return _unexpected(await client.get(f"/Users/{user_id}"), 200)

    async def create(self, client: httpx.AsyncClient, index: int) -> str | None:
        response = await client.post(
            "/Users", json=user_body(index, prefix=CREATED_PREFIX)
        )
        error = _unexpected(response, 201)
        if error is None:
            self.created_ids.append(response.json()["id"])
        return error

    async def patch(self, client: httpx.AsyncClient, index: int) -> str | None:
        user_id = self.created_ids[index]
        response = await client.patch(f"/Users/{user_id}", json=deactivate_body())
        error = _unexpected(response, 200)
        if error is None and response.json().get("active") is not False:
            return f"PATCH of User {user_id} left it active"
        return error

    async def list_page(self, client: httpx.AsyncClient, index: int) -> str | None:
        pages = max(1, math.ceil(self.users / PAGE_SIZE))
        start_index = 1 + PAGE_SIZE * self.random.randrange(pages)
        response = await client.get(
            "/Users", params={"startIndex": start_index, "count": PAGE_SIZE}
        )
        error = _unexpected(response, 200)
        if error is None and not response.json().get("Resources"):
            return f"the page at startIndex {start_index} is empty"
        return error


def _cpu_seconds(server: psutil.Process | None) -> float:
    if server is None:
        return 0.0
    times = server.cpu_times()
    return float(times.user + times.system)


async def run(arguments: argparse.Namespace, token: str) -> dict[str, Any]:
    workload = Workload(arguments.users, arguments.seed)
    server = psutil.Process(arguments.server_pid) if arguments.server_pid else None
    limits = httpx.Limits(
        max_connections=arguments.concurrency,
        max_keepalive_connections=arguments.concurrency,
    )
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(
        base_url=arguments.base_url,
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=arguments.timeout,
    ) as client:
        # Warm-up: open the connections and fill the server's caches.
        await run_operation(
            client,
            "warmup",
            workload.lookup,
            arguments.warmup,
            arguments.concurrency,
            arguments.max_seconds,
        )
        workload.found_ids.clear()

        for name in arguments.operations:
            total = arguments.requests
            if name == "get" and not workload.found_ids:
                raise SystemExit("get needs ids: run lookup before it")
            if name == "patch":
                total = min(total, len(workload.created_ids))
            request = workload.requests()[name]
            cpu_before = _cpu_seconds(server)
            client_cpu_before = time.process_time()
            result = await run_operation(
                client,
                name,
                request,
                total,
                arguments.concurrency,
                arguments.max_seconds,
            )
            if result.requests:
                # The load generator shares the machine's CPUs with the server.
                client_cpu = time.process_time() - client_cpu_before
                result.client_cpu_ms = client_cpu * 1000 / result.requests
            if server is not None and result.requests:
                cpu = _cpu_seconds(server) - cpu_before
                result.server_cpu_ms = cpu * 1000 / result.requests
            results[name] = result.summary()
    return results


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Send SCIM requests to one server and print latency statistics "
        f"as JSON. The bearer token comes from the {TOKEN_ENV} variable.",
    )

    server = parser.add_argument_group("server")
    server.add_argument(
        "--base-url", required=True, help="SCIM base URL, e.g. http://HOST:PORT/v2."
    )
    server.add_argument(
        "--users", type=int, required=True, help="Number of seeded users."
    )
    server.add_argument(
        "--server-pid",
        type=int,
        help="Process id of the server, to report its CPU time per request.",
    )

    load = parser.add_argument_group("load")
    load.add_argument(
        "--operations",
        type=lambda text: [item.strip() for item in text.split(",") if item.strip()],
        default=list(OPERATIONS),
        help="Comma-separated operations to run, in order; default "
        f"{','.join(OPERATIONS)}.",
    )
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
        "--timeout", type=float, default=30.0, help="Request timeout, in seconds."
    )
    load.add_argument(
        "--seed", type=int, default=1, help="Seed of the random user choice."
    )

    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.operations if name not in OPERATIONS]
    if unknown:
        parser.error(f"unknown operations {unknown}: choose from {list(OPERATIONS)}")
    return arguments


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise SystemExit(f"{TOKEN_ENV} is not set: give the SCIM bearer token in it")
    results = asyncio.run(run(arguments, token))
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
