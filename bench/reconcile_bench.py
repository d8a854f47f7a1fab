"""Reconciliation benchmark: the run engine on SQLite and PostgreSQL.

    python -m bench.reconcile_bench --users 10000 --users 100000 \\
        --database sqlite --database postgres

For each database and number of users it:

1. creates a fresh store (a SQLite file, or a new PostgreSQL database that is
   dropped afterwards) with one enterprise organization, a SCIM token, one
   group-to-role mapping per group and a file connector. Its deactivation
   limits are lifted, so that no change is held;
2. writes a directory file of the users in one group per 100 users, each user
   in 1 to 5 groups chosen at random (seeded, so every case is the same);
3. runs four reconciliations, each in a fresh process: the first run (every
   user is created), a run with nothing to change, a run after 1% of the users
   drifted (new, removed, deactivated, moved between groups, renamed), and a
   run with nothing to change again;
4. records for each run (``bench.reconcile_worker``) the wall-clock and CPU
   time ``Reconciler.run`` took, the changes by kind, the peak resident set
   size (RSS) of the process, and the rows it wrote to the store's user,
   group, membership, email and audit tables: counted from the tables
   themselves, and on PostgreSQL also from ``pg_stat_user_tables``.

It prints a table per case and the targets, and writes every number to a JSON
file. It exits with status 1 if a run failed or planned changes where none were
due; a missed speed or memory target is reported but does not change the exit
status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from bench.processes import clean_environment
from bench.scim_bench import DEFAULT_OUTPUT_DIR, DEFAULT_POSTGRES_URL, fresh_store
from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.migrate import prepare_database
from scim_reconciler.db.models import (
    AuditEvent,
    ConnectorConfig,
    Group,
    GroupMember,
    Plan,
    Role,
    User,
    UserEmail,
)
from scim_reconciler.services import organizations, tokens
from scim_reconciler.services.mappings import add_mapping
from scim_reconciler.settings import Settings

logger = logging.getLogger("bench.reconcile_bench")

REPOSITORY = Path(__file__).resolve().parents[1]
ORG = "bench"
USERS_PER_GROUP = 100
SEED = 20260301
# Runs of 100k users must stay within these; the no-change run of 100k users
# may take at most 12 times the one of 10k users.
TARGET_SECONDS = {"first": 60.0, "no_change": 10.0, "drift": 15.0}
RSS_LIMIT_MIB = 400.0
SCALING_LIMIT = 12.0
TARGET_USERS = 100_000
SCALING_USERS = (10_000, 100_000)
# Tables whose rows are the store's state; the run record (runs, run_changes)
# is written by every run and counted apart.
STORE_TABLES = ("users", "user_emails", "groups", "group_members", "audit_events")
RUNS = ("first", "no_change", "drift", "no_change_again")
WORKER_TIMEOUT_SECONDS = 1800.0
STATS_WAIT_SECONDS = 10.0


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reconcile_bench",
        description="Measure reconciliation runs on SQLite and PostgreSQL.",
    )
    parser.add_argument(
        "--users",
        type=int,
        action="append",
        help="Users in the directory file; repeat for several sizes (default 10000).",
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        action="append",
        help="Store to measure; repeat for both (default sqlite).",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL server on which a database is created for each case and "
        f"dropped after it (default {DEFAULT_POSTGRES_URL}).",
    )
    parser.add_argument(
        "--drift-percent",
        type=float,
        default=1.0,
        help="Percent of the users that change before the drift run (default 1).",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON results file (default bench/results/reconcile-bench-TIME.json).",
    )
    arguments = parser.parse_args(argv)
    arguments.users = arguments.users or [10_000]
    arguments.database = arguments.database or ["sqlite"]
    return arguments


# The directory file


def make_directory(users: int, seed: int = SEED) -> dict[str, Any]:
    """Return a directory of ``users`` users in one group per 100 users."""
    rng = random.Random(seed)
    group_count = max(1, users // USERS_PER_GROUP)
    members: list[list[str]] = [[] for _ in range(group_count)]
    entries = []
    for number in range(1, users + 1):
        entries.append(directory_user(number))
        for group in rng.sample(
            range(group_count), min(rng.randint(1, 5), group_count)
        ):
            members[group].append(f"u{number}")
    groups = [
        {"id": f"g{index}", "name": f"Group {index}", "members": listed}
        for index, listed in enumerate(members)
    ]
    return {"users": entries, "groups": groups}


def directory_user(number: int) -> dict[str, Any]:
    return {
        "id": f"u{number}",
        "userName": f"user{number}@example.com",
        "email": f"user{number}@example.com",
        "givenName": f"Given{number}",
        "familyName": f"Family{number}",
        "active": True,
    }


def drift(document: dict[str, Any], percent: float, seed: int = SEED) -> dict[str, int]:
    """Change ``percent`` of the users in place, as missed pushes would leave them.

    Of the drifted users a fifth each are renamed (familyName), moved to
    another group, deactivated in the IdP, removed from every group, or are new
    users joining a group. Returns how many users each kind of drift touched.
    """
    rng = random.Random(seed + 1)
    users = document["users"]
    groups = document["groups"]
    count = max(5, round(len(users) * percent / 100))
    per_kind = count // 5
    chosen = rng.sample(range(len(users)), 4 * per_kind)
    renamed, moved, deactivated, removed = (
        chosen[start : start + per_kind] for start in range(0, 4 * per_kind, per_kind)
    )
    for index in renamed:
        users[index]["familyName"] += " Drifted"
    for index in deactivated:
        users[index]["active"] = False
    removed_ids = {users[index]["id"] for index in removed}
    moved_ids = {users[index]["id"] for index in moved}
    for group in groups:
        group["members"] = [
            member
            for member in group["members"]
            if member not in removed_ids and member not in moved_ids
        ]
    for user_id in sorted(moved_ids):
        rng.choice(groups)["members"].append(user_id)
    for number in range(len(users) + 1, len(users) + per_kind + 1):
        users.append(directory_user(number))
        rng.choice(groups)["members"].append(f"u{number}")
    return {
        "renamed": per_kind,
        "moved": per_kind,
        "deactivated": per_kind,
        "removed": per_kind,
        "added": per_kind,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document))


# The store


async def prepare_store(url: str, directory: Path, groups: int) -> None:
    """Migrate the store and create the organization with its mappings."""
    settings = Settings(database_url=url)  # type: ignore[call-arg]
    database = await prepare_database(settings, run_migrations=True)
    try:
        async with database.write() as session:
            org = await organizations.create_organization(
                session, ORG, "Benchmark", Plan.enterprise
            )
            await tokens.create_token(session, org, name="Benchmark", expires_in_days=1)
            roles = sorted((await session.scalars(select(Role.slug))).all())
            for index in range(groups):
                await add_mapping(
                    session, org, group=f"g{index}", role_slug=roles[index % len(roles)]
                )
            session.add(
                ConnectorConfig(
                    org_id=org.id,
                    kind="file",
                    config={"path": str(directory), "page_size": 500},
                    enabled=True,
                    interval_seconds=3600,
                    jitter_seconds=0,
                    max_deactivations=10**9,
                    max_deactivation_percent=100.0,
                    updated_at=utcnow(),
                )
            )
    finally:
        await database.dispose()


async def count_rows(url: str) -> dict[str, int]:
    """Count the store's rows and sum the versions that every change bumps."""
    database = open_store(url)
    try:
        async with database.read() as session:
            counts = {}
            for name, model in (
                ("users", User),
                ("user_emails", UserEmail),
                ("groups", Group),
                ("group_members", GroupMember),
                ("audit_events", AuditEvent),
            ):
                counts[name] = (
                    await session.scalar(select(func.count()).select_from(model)) or 0
                )
            for name, model in (("user_versions", User), ("group_versions", Group)):
                counts[name] = (
                    await session.scalar(
                        select(func.coalesce(func.sum(model.version), 0))
                    )
                    or 0
                )
        return counts
    finally:
        await database.dispose()


async def postgres_writes(url: str, runs_at_least: int = 0) -> dict[str, int]:
    """Return rows inserted, updated and deleted per table since the stats reset.

    PostgreSQL counts them per backend and publishes them when a transaction
    ends or the backend exits. Every run writes its ``runs`` row twice (start
    and finish), so the totals are read again until ``runs`` reaches
    ``runs_at_least``, for at most ``STATS_WAIT_SECONDS``.
    """
    database = open_store(url)
    names = ", ".join(f"'{name}'" for name in (*STORE_TABLES, "runs", "run_changes"))
    query = text(
        "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
        f"WHERE relname IN ({names})"
    )
    deadline = time.monotonic() + STATS_WAIT_SECONDS
    try:
        while True:
            async with database.read() as session:
                await session.execute(text("SELECT pg_stat_clear_snapshot()"))
                current = {
                    name: int(count) for name, count in await session.execute(query)
                }
            if current.get("runs", 0) >= runs_at_least:
                return current
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL did not publish the run's row counts within "
                    f"{STATS_WAIT_SECONDS} s, so its writes cannot be counted"
                )
            await asyncio.sleep(0.1)
    finally:
        await database.dispose()


def open_store(url: str) -> Database:
    from scim_reconciler.db.engine import open_database

    return open_database(url, pool_size=1)


# One run, in its own process


def run_worker(url: str, log_path: Path) -> dict[str, Any]:
    """Run one reconciliation in a fresh process and return what it measured."""
    command = [sys.executable, "-m", "bench.reconcile_worker", url, ORG]
    with log_path.open("ab") as log:
        finished = subprocess.run(
            command,
            env=clean_environment({"SCIM_RECONCILER_LOG_LEVEL": "WARNING"}),
            cwd=REPOSITORY,
            stdout=subprocess.PIPE,
            stderr=log,
            timeout=WORKER_TIMEOUT_SECONDS,
            check=False,
        )
    if finished.returncode != 0:
        raise RuntimeError(
            f"the run exited with status {finished.returncode}; its log: "
            f"{log_path.read_text(errors='replace')}"
        )
    result: dict[str, Any] = json.loads(finished.stdout)
    return result


# Cases


def run_case(arguments: argparse.Namespace, kind: str, users: int) -> dict[str, Any]:
    """Measure the four runs of one store and size."""
    work_dir: Path = arguments.work_dir
    directory = work_dir / f"directory-{kind}-{users}.json"
    document = make_directory(users)
    write_json(directory, document)
    groups = len(document["groups"])
    log_path = work_dir / f"runs-{kind}-{users}.log"
    case: dict[str, Any] = {"database": kind, "users": users, "groups": groups}
    with fresh_store(kind, arguments.postgres_url, work_dir) as url:
        asyncio.run(prepare_store(url, directory, groups))
        runs: dict[str, Any] = {}
        for name in RUNS:
            if name == "drift":
                case["drifted"] = drift(document, arguments.drift_percent)
                write_json(directory, document)
            rows_before = asyncio.run(count_rows(url))
            stats_before = (
                asyncio.run(postgres_writes(url)) if kind == "postgres" else {}
            )
            logger.info("%s, %d users: %s run", kind, users, name)
            result = run_worker(url, log_path)
            # Other processes on the machine slow the run; record how busy it was.
            result["load_average_1m"] = round(os.getloadavg()[0], 2)
            rows_after = asyncio.run(count_rows(url))
            result["store_rows_changed"] = {
                key: rows_after[key] - rows_before[key]
                for key in rows_after
                if rows_after[key] != rows_before[key]
            }
            if kind == "postgres":
                stats_after = asyncio.run(
                    postgres_writes(url, stats_before.get("runs", 0) + 2)
                )
                result["postgres_row_writes"] = {
                    table: stats_after.get(table, 0) - stats_before.get(table, 0)
                    for table in stats_after
                }
            runs[name] = result
        case["runs"] = runs
    return case


def store_writes(run: dict[str, Any]) -> int:
    """Return the rows a run wrote to the store's tables, by the best count."""
    if "postgres_row_writes" in run:
        return sum(run["postgres_row_writes"].get(table, 0) for table in STORE_TABLES)
    return sum(abs(delta) for delta in run["store_rows_changed"].values())


def evaluate_targets(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    targets = []
    for case in cases:
        label = f"{case['database']}, {case['users']} users"
        runs = case["runs"]
        for name in ("no_change", "no_change_again"):
            targets.append(
                {
                    "target": f"{label}: {name} run writes nothing to the store",
                    "measured": f"{store_writes(runs[name])} rows",
                    "met": store_writes(runs[name]) == 0,
                }
            )
        if case["users"] != TARGET_USERS:
            continue
        for name, limit in TARGET_SECONDS.items():
            targets.append(
                {
                    "target": f"{label}: {name} run at most {limit:g} s",
                    "measured": f"{runs[name]['seconds']:.1f} s",
                    "met": runs[name]["seconds"] <= limit,
                }
            )
        peak = max(run["peak_rss_mib"] for run in runs.values())
        targets.append(
            {
                "target": f"{label}: peak RSS at most {RSS_LIMIT_MIB:g} MiB",
                "measured": f"{peak:.0f} MiB",
                "met": peak <= RSS_LIMIT_MIB,
            }
        )
    by_size = {(case["database"], case["users"]): case for case in cases}
    for kind in sorted({case["database"] for case in cases}):
        small, large = (by_size.get((kind, users)) for users in SCALING_USERS)
        if small is None or large is None:
            continue
        ratio = (
            large["runs"]["no_change"]["seconds"]
            / small["runs"]["no_change"]["seconds"]
        )
        targets.append(
            {
                "target": f"{kind}: no-change run of {SCALING_USERS[1]} users at most "
                f"{SCALING_LIMIT:g}x the one of {SCALING_USERS[0]}",
                "measured": f"{ratio:.1f}x",
                "met": ratio <= SCALING_LIMIT,
            }
        )
    return targets


def problems(cases: list[dict[str, Any]]) -> list[str]:
    """Return the runs that failed or that planned changes where none were due."""
    found = []
    for case in cases:
        label = f"{case['database']}, {case['users']} users"
        for name, run in case["runs"].items():
            if run["status"] != "succeeded":
                found.append(f"{label}: {name} run {run['status']}: {run['error']}")
            elif name.startswith("no_change") and run["changes"]:
                found.append(f"{label}: {name} run planned {run['changes']} changes")
    return found


def format_case(case: dict[str, Any]) -> str:
    lines = [
        f"\n{case['database']}, {case['users']} users in {case['groups']} groups",
        f"  {'run':<16}{'seconds':>9}{'CPU s':>8}{'changes':>9}{'peak RSS':>10}"
        f"{'load':>6}  store writes",
    ]
    for name, run in case["runs"].items():
        lines.append(
            f"  {name:<16}{run['seconds']:>9.2f}{run['cpu_seconds']:>8.2f}"
            f"{run['changes']:>9}{run['peak_rss_mib']:>8.0f} M"
            f"{run['load_average_1m']:>6.1f}  {store_writes(run)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started_at = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as work_dir:
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
        f"reconcile-bench-{started_at:%Y%m%dT%H%M%SZ}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "started_at": started_at.isoformat(),
                "settings": {"drift_percent": arguments.drift_percent},
                "cases": cases,
                "targets": targets,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nResults written to {output}")
    found = problems(cases)
    for problem in found:
        print(f"FAILED {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
