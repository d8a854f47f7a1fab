"""The reconciliation benchmark at smoke size: it must run all four runs and
count their writes.

Speed and memory targets are not asserted here; a loaded test machine would
make them flaky. This only keeps ``python -m bench.reconcile_bench`` from
rotting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import POSTGRES_ENV, postgres_server_url

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[2]
USERS = 200
TIMEOUT_SECONDS = 300
RUNS = ["first", "no_change", "drift", "no_change_again"]


def run_bench(tmp_path: Path, *options: str) -> dict[str, Any]:
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.reconcile_bench",
            f"--users={USERS}",
            f"--output={output}",
            *options,
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results: dict[str, Any] = json.loads(output.read_text())
    return results


def assert_runs_measured(case: dict[str, Any]) -> None:
    runs = case["runs"]
    assert list(runs) == RUNS
    for name, run in runs.items():
        assert run["status"] == "succeeded", (name, run["error"])
        assert run["seconds"] > 0, name
        assert run["peak_rss_mib"] > 0, name
    assert runs["first"]["by_kind"]["create"] == USERS
    assert runs["first"]["store_rows_changed"]["users"] == USERS
    assert runs["no_change"]["changes"] == 0
    assert runs["no_change"]["store_rows_changed"] == {}
    assert runs["drift"]["changes"] > 0
    assert runs["drift"]["by_kind"]["create"] == case["drifted"]["added"]
    assert runs["no_change_again"]["changes"] == 0


def test_bench_sqlite(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--database=sqlite")

    [case] = results["cases"]
    assert case["database"] == "sqlite"
    assert case["users"] == USERS
    assert_runs_measured(case)
    measured = [target["target"] for target in results["targets"]]
    assert any("writes nothing" in target for target in measured)


def test_bench_postgres(tmp_path: Path) -> None:
    server = postgres_server_url()
    if server is None:
        pytest.skip(f"the PostgreSQL benchmark needs {POSTGRES_ENV}")

    results = run_bench(tmp_path, "--database=postgres", f"--postgres-url={server}")

    [case] = results["cases"]
    assert case["database"] == "postgres"
    assert_runs_measured(case)
    writes = case["runs"]["no_change"]["postgres_row_writes"]
    assert writes["users"] == 0
    assert writes["audit_events"] == 0
    assert case["runs"]["first"]["postgres_row_writes"]["users"] == USERS
