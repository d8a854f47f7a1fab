"""The IdP connector benchmark at a smoke size: every IdP's snapshot completes
and the results file has what docs/benchmarks.md reports. Timings are never
checked, because they depend on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import connector_bench

pytestmark = pytest.mark.slow


def test_connector_bench_smoke(tmp_path: Path) -> None:
    output = tmp_path / "results.json"

    status = connector_bench.main(
        [
            "--idp", "okta", "--idp", "entra", "--idp", "onelogin",
            "--groups", "3", "--members", "5", "--users", "10",
            "--page-size", "2", "--latency-ms", "1",
            "--rate-limit", "100", "--rate-limit-window", "60",
            "--output", str(output),
        ]
    )  # fmt: skip

    results = json.loads(output.read_text())
    cases = {case["idp"]: case for case in results["cases"]}
    assert status == 0
    assert set(cases) == {"okta", "entra", "onelogin"}
    for idp, case in cases.items():
        assert case["error"] is None, idp
        assert case["memberships"] == 15, idp
        assert case["requests_sent"] == case["requests_expected"], idp
        assert case["rate_limited_429"] == 0, idp
        assert case["bound"]["seconds"] > 0, idp
        assert case["ratio"] is not None, idp
    targets = [target["target"] for target in results["targets"]]
    assert any(target.startswith("okta: no 429") for target in targets)
