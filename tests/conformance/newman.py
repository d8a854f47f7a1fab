"""Install newman (Postman's command-line runner) and run a collection with it.

newman is pinned by ``tests/conformance/newman/package.json`` and its lock file
and installed with ``npm ci`` into ``.tools/newman`` at the repository root,
once per lock file version.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.conformance.results import REPO_ROOT, AssertionResult

PACKAGE_DIR = Path(__file__).resolve().parent / "newman"
INSTALL_DIR = REPO_ROOT / ".tools" / "newman"
INSTALL_TIMEOUT_S = 300.0
RUN_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_MS = 10_000


class NewmanError(RuntimeError):
    """newman could not be installed or could not run the collection."""


def newman_binary() -> Path:
    return INSTALL_DIR / "node_modules" / ".bin" / "newman"


def install_newman(npm: str) -> Path:
    """Install the pinned newman unless the same lock file is already installed.

    Parallel test processes take turns through a file lock, so that only one
    of them runs ``npm ci`` into the shared folder.
    """
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    with (INSTALL_DIR.parent / "newman.lock").open("w") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        return _install_newman(npm)


def _install_newman(npm: str) -> Path:
    lock = PACKAGE_DIR / "package-lock.json"
    installed_lock = INSTALL_DIR / "package-lock.json"
    binary = newman_binary()
    if (
        binary.exists()
        and installed_lock.exists()
        and installed_lock.read_bytes() == lock.read_bytes()
    ):
        return binary
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PACKAGE_DIR / "package.json", INSTALL_DIR / "package.json")
    shutil.copyfile(lock, installed_lock)
    completed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(INSTALL_DIR)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0 or not binary.exists():
        installed_lock.unlink(missing_ok=True)
        raise NewmanError(
            f"npm ci in {INSTALL_DIR} failed with exit status "
            f"{completed.returncode}:\n{completed.stderr[-2000:]}"
        )
    return binary


@dataclass
class NewmanReport:
    results: list[AssertionResult] = field(default_factory=list)
    requests: int = 0
    assertions_total: int = 0
    script_errors: int = 0

    @property
    def failed(self) -> list[AssertionResult]:
        return [result for result in self.results if not result.passed]

    @property
    def passed(self) -> list[AssertionResult]:
        return [result for result in self.results if result.passed]


def write_inputs(work_dir: Path, base_url: str, token: str) -> tuple[Path, Path]:
    """Write the Postman environment and the iteration data for one run.

    The collection reads ``{{Protocol}}://{{Server}}{{Port}}/{{Api}}`` and the
    bearer ``{{token}}``. Its first request fetches a token from the reference
    server's ``/Token`` endpoint and stores whatever comes back in the
    environment, overwriting the real one. Postman resolves iteration data
    before the environment, so the token is passed there too.
    """
    url = urlsplit(base_url)
    values = {
        "Protocol": url.scheme,
        "Server": url.hostname or "",
        "Port": f":{url.port}" if url.port else "",
        "Api": "scim/v2",
        "token": token,
    }
    environment = {
        "name": "scim-reconciler",
        "values": [
            {"key": key, "value": value, "type": "default", "enabled": True}
            for key, value in values.items()
        ],
    }
    environment_path = work_dir / "newman-environment.json"
    data_path = work_dir / "newman-data.json"
    environment_path.write_text(json.dumps(environment))
    data_path.write_text(json.dumps([{"token": token}]))
    return environment_path, data_path


def _item_names(collection: dict[str, Any]) -> dict[str, str]:
    """Name each request by its folder path, adding "#2", "#3" to repeated names."""
    names: dict[str, str] = {}
    seen: dict[str, int] = {}

    def walk(items: list[dict[str, Any]], folders: tuple[str, ...]) -> None:
        for item in items:
            path = (*folders, item["name"].strip())
            if "item" in item:
                walk(item["item"], path)
                continue
            name = " / ".join(path)
            seen[name] = seen.get(name, 0) + 1
            names[item["id"]] = name if seen[name] == 1 else f"{name} #{seen[name]}"

    walk(collection["item"], ())
    return names


def parse_report(report: dict[str, Any]) -> NewmanReport:
    """Read newman's JSON reporter output: one result per ``pm.test``.

    A test script that throws outside ``pm.test`` is reported as a failed
    ``test-script error`` of its request.
    """
    run = report["run"]
    if run.get("error"):
        raise NewmanError(f"newman stopped the run: {run['error']}")
    names = _item_names(report["collection"])
    parsed = NewmanReport(
        requests=run["stats"]["requests"]["total"],
        assertions_total=run["stats"]["assertions"]["total"],
    )
    for execution in run["executions"]:
        step = names[execution["item"]["id"]]
        for assertion in execution.get("assertions") or []:
            error = assertion.get("error")
            skipped = bool(assertion.get("skipped"))
            if error:
                detail = f"{error.get('name')}: {error.get('message')}"
            else:
                detail = "skipped" if skipped else "passed"
            parsed.results.append(
                AssertionResult(
                    step=step,
                    assertion=assertion["assertion"],
                    passed=error is None and not skipped,
                    detail=detail[:300],
                )
            )
    for failure in run.get("failures") or []:
        if str(failure.get("at", "")).startswith("assertion:"):
            continue
        error = failure.get("error") or {}
        parsed.script_errors += 1
        parsed.results.append(
            AssertionResult(
                step=names.get(failure["source"]["id"], failure["source"]["name"]),
                assertion=f"{failure.get('at', 'script')} error",
                passed=False,
                detail=f"{error.get('name')}: {error.get('message')}"[:300],
            )
        )
    return parsed


def run_collection(
    newman: Path, collection: Path, base_url: str, token: str, work_dir: Path
) -> NewmanReport:
    """Run the whole collection once, in order, and parse the JSON report."""
    environment, data = write_inputs(work_dir, base_url, token)
    export = work_dir / "newman-report.json"
    command = [
        str(newman),
        "run",
        str(collection),
        "--environment",
        str(environment),
        "--iteration-data",
        str(data),
        "--reporters",
        "json",
        "--reporter-json-export",
        str(export),
        "--timeout-request",
        str(REQUEST_TIMEOUT_MS),
        "--color",
        "off",
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    # newman exits with 1 when an assertion fails, which is expected here.
    if completed.returncode not in (0, 1) or not export.exists():
        raise NewmanError(
            f"newman exited with {completed.returncode}:\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}"
        )
    return parse_report(json.loads(export.read_text()))
