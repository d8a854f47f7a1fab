"""The SCIM benchmark at smoke size: it must run and report every operation.

Speed and memory targets are not asserted here; a loaded test machine would
make them flaky. This only keeps ``python -m bench.scim_bench`` from rotting.
The saturated lookups need wrk (Debian's package, which scripts/test installs);
without it they are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import POSTGRES_ENV, in_ci, postgres_server_url

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[2]
SERVICE_OPERATIONS = {"lookup", "get", "create", "patch", "list"}
USERS = 50
REQUESTS = 20
TIMEOUT_SECONDS = 180


def saturation_options() -> list[str]:
    """Run wrk for one second, or skip it where wrk is missing outside CI."""
    if shutil.which("wrk") is None:
        if in_ci():
            pytest.fail(
                "CI=true needs wrk for the saturated lookups: apt-get install wrk"
            )
        return ["--no-saturation"]
    return ["--saturation-seconds=1", "--latency-seconds=1"]


def run_bench(tmp_path: Path, *options: str) -> dict[str, Any]:
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.scim_bench",
            f"--users={USERS}",
            f"--requests={REQUESTS}",
            "--warmup=5",
            "--concurrency=4",
            f"--output={output}",
            *saturation_options(),
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


def assert_all_succeeded(operations: dict[str, Any], expected: set[str]) -> None:
    assert set(operations) == expected
    for name, result in operations.items():
        assert result["errors"] == 0, (name, result["first_error"])
        assert result["ok"] == REQUESTS, name
        assert result["p50_ms"] > 0, name
        assert result["p99_ms"] >= result["p50_ms"], name
        assert result["throughput"] > 0, name


def assert_saturated(server: dict[str, Any]) -> None:
    """wrk's lookups all found their user, where wrk ran."""
    if "--no-saturation" in saturation_options():
        assert "saturation" not in server
        assert "latency" not in server
        return
    for key, connections in (("saturation", 4), ("latency", 1)):
        result = server[key]
        assert result["connections"] == connections, key
        assert result["errors"] == 0, (key, result["first_error"])
        assert result["ok"] == result["requests"] > 0, key
        assert result["throughput"] > 0, key
        assert result["p99_ms"] >= result["p50_ms"] > 0, key


def test_bench_sqlite_with_reference(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--database=sqlite")

    [case] = results["cases"]
    assert case["database"] == "sqlite"
    assert case["users"] == USERS
    assert_all_succeeded(case["service"]["operations"], SERVICE_OPERATIONS)
    assert_all_succeeded(case["reference"]["operations"], {"lookup"})
    assert_saturated(case["service"])
    assert_saturated(case["reference"])
    assert case["service"]["rss"]["peak_mib"] > 0
    assert case["reference"]["rss"]["peak_mib"] > 0
    measured = {target["target"] for target in results["targets"]}
    assert any("scim2-server" in target for target in measured)
    assert any("RSS" in target for target in measured)


def test_bench_postgres(tmp_path: Path) -> None:
    server = postgres_server_url()
    if server is None:
        pytest.skip(f"the PostgreSQL benchmark needs {POSTGRES_ENV}")

    results = run_bench(
        tmp_path, "--database=postgres", f"--postgres-url={server}", "--no-reference"
    )

    [case] = results["cases"]
    assert case["database"] == "postgres"
    assert_all_succeeded(case["service"]["operations"], SERVICE_OPERATIONS)
    assert_saturated(case["service"])
    assert "reference" not in case


def test_bench_without_wrk_names_the_fix(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.scim_bench", "--users=5"],
        cwd=REPOSITORY,
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 2
    assert "wrk is not installed" in completed.stderr
    assert "apt-get install wrk" in completed.stderr
    assert "--no-saturation" in completed.stderr
