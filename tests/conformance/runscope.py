"""Run a Runscope API-test export against a live SCIM server.

A Runscope export is a JSON object whose ``steps`` are requests (method, URL,
headers, body, assertions, variables to extract, scripts) and pauses. This
runner sends every request with httpx, evaluates every assertion and script,
and returns one result for each. A failed assertion never stops the run.

Comparisons follow Runscope's assertion documentation
(https://www.runscope.com/docs/api-testing/assertions): a JSON property is a
path in JavaScript notation, so ``emails.value`` on a list finds nothing.
Scripts run in Node.js with ``response``, ``variables``, ``assert`` and ``log``
defined as Runscope defines them.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conformance.results import AssertionResult

SCRIPT_TIMEOUT_S = 20.0

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class _Missing:
    """The value of a JSON path that leads nowhere (JavaScript's undefined)."""

    def __repr__(self) -> str:
        return "undefined"


MISSING: Any = _Missing()


@dataclass
class RunReport:
    results: list[AssertionResult] = field(default_factory=list)
    pauses_skipped: int = 0

    @property
    def failed(self) -> list[AssertionResult]:
        return [result for result in self.results if not result.passed]

    @property
    def passed(self) -> list[AssertionResult]:
        return [result for result in self.results if result.passed]


@dataclass(frozen=True)
class Response:
    status: int
    elapsed_ms: float
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return MISSING


def substitute(template: str, variables: Mapping[str, str]) -> str:
    """Fill ``{{name}}`` placeholders, leaving unknown names as written."""

    def replace(match: re.Match[str]) -> str:
        return variables.get(match.group(1), match.group(0))

    return _VARIABLE.sub(replace, template)


def resolve(document: Any, path: str) -> Any:
    """Follow a JavaScript-style path such as ``Resources[0].name.givenName``."""
    current = document
    for name, index in _PATH_PART.findall(path):
        if index:
            position = int(index)
            if not isinstance(current, list) or position >= len(current):
                return MISSING
            current = current[position]
        elif isinstance(current, dict) and name in current:
            current = current[name]
        else:
            return MISSING
    return current


def as_text(value: Any) -> str:
    """Render a JSON value the way JavaScript's String() does for scalars."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is MISSING or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _is_empty(value: Any) -> bool:
    return value is MISSING or value is None or value in ("", [], {})


def compare(comparison: str, actual: Any, target: str | None) -> bool:
    """Apply one Runscope comparison to the actual value and the target value."""
    if comparison == "not_empty":
        return not _is_empty(actual)
    if comparison == "empty":
        return _is_empty(actual)
    if comparison == "is_a_number":
        return isinstance(actual, int | float) and not isinstance(actual, bool)
    if comparison in ("equal", "not_equal"):
        equal = actual is not MISSING and as_text(actual) == (target or "")
        return equal if comparison == "equal" else not equal
    if comparison in ("equal_number", "is_less_than", "is_greater_than"):
        left, right = _number(actual), _number(target)
        if left is None or right is None:
            return False
        if comparison == "equal_number":
            return left == right
        return left < right if comparison == "is_less_than" else left > right
    if comparison in ("contains", "does_not_contain"):
        if isinstance(actual, list):
            found = any(as_text(item) == target for item in actual)
        else:
            found = actual is not MISSING and (target or "") in as_text(actual)
        return found if comparison == "contains" else not found
    if comparison == "has_value":
        return isinstance(actual, list) and any(
            as_text(item) == as_text(target) for item in actual
        )
    if comparison == "has_key":
        return isinstance(actual, dict) and (target or "") in actual
    raise ValueError(f"comparison {comparison!r} is not supported by this runner")


def describe(assertion: Mapping[str, Any]) -> str:
    """Name an assertion: source, property, comparison and target value."""
    parts = [assertion["source"]]
    if assertion.get("property"):
        parts.append(assertion["property"])
    parts.append(assertion["comparison"])
    if assertion.get("value") is not None:
        parts.append(str(assertion["value"]))
    return " ".join(parts)


def _actual(source: str, prop: str | None, response: Response) -> Any:
    if source == "response_status":
        return response.status
    if source == "response_time":
        return response.elapsed_ms
    if source == "response_json":
        return resolve(response.json(), prop or "")
    if source == "response_text":
        return response.text
    if source == "response_headers":
        return response.headers.get(prop or "", MISSING)
    raise ValueError(f"assertion source {source!r} is not supported by this runner")


def evaluate(
    step: str,
    assertion: Mapping[str, Any],
    response: Response,
    variables: Mapping[str, str],
) -> AssertionResult:
    target = assertion.get("value")
    if isinstance(target, str):
        target = substitute(target, variables)
    source = assertion["source"]
    actual = _actual(source, assertion.get("property"), response)
    passed = compare(assertion["comparison"], actual, target)
    detail = f"actual {as_text(actual) if actual is not MISSING else 'undefined'}"
    return AssertionResult(
        step=step,
        assertion=describe(assertion),
        passed=passed,
        detail=detail[:300],
        # Runscope's own response-time limits depend on the machine and the
        # network, not on the SCIM behaviour under test.
        informational=source == "response_time",
    )


_SCRIPT_HARNESS = textwrap.dedent(
    """
    const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const response = input.response;
    const store = new Map(Object.entries(input.variables));
    const variables = {
      get: (name) => store.get(name),
      set: (name, value) => store.set(name, String(value)),
    };
    const assert = require("assert");
    const log = (...values) => console.error(...values);
    try {
      new Function("response", "variables", "assert", "log", input.script)(
        response, variables, assert, log);
      const outcome = { passed: true, variables: Object.fromEntries(store) };
      console.log(JSON.stringify(outcome));
    } catch (error) {
      console.log(JSON.stringify({ passed: false, message: String(error) }));
    }
    """
)


def run_script(
    node: str, script: str, response: Response, variables: dict[str, str]
) -> tuple[bool, str]:
    """Run one Runscope script in Node.js and keep the variables it sets."""
    # NOTE: Runscope offers the Chai assertion library as ``assert``; Node's
    # assert module has the same ok/equal/strictEqual calls but not all of Chai.
    payload = {
        "script": script,
        "variables": variables,
        "response": {
            "status": response.status,
            "body": response.text,
            "headers": dict(response.headers),
            "response_time_ms": response.elapsed_ms,
        },
    }
    completed = subprocess.run(
        [node, "-e", _SCRIPT_HARNESS],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        return False, f"node exited with {completed.returncode}: {completed.stderr}"
    outcome = json.loads(lines[-1])
    if outcome["passed"]:
        variables.update(outcome["variables"])
        return True, "script passed"
    return False, f"script failed: {outcome['message']}"


def _headers(
    raw: Mapping[str, Any] | None, variables: Mapping[str, str]
) -> list[tuple[str, str]]:
    headers = []
    for name, value in (raw or {}).items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            headers.append((name, substitute(str(item), variables)))
    return headers


def send(
    http: httpx.Client, step: Mapping[str, Any], variables: Mapping[str, str]
) -> Response:
    body = step.get("body") or ""
    started = time.perf_counter()
    reply = http.request(
        step["method"],
        substitute(step["url"], variables),
        headers=_headers(step.get("headers"), variables),
        content=substitute(body, variables).encode() if body else None,
    )
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return Response(reply.status_code, elapsed_ms, reply.text, reply.headers)


def run_export(
    export_path: Path,
    variables: dict[str, str],
    node: str,
    timeout_s: float = 10.0,
) -> RunReport:
    """Run every request step of an export in order, sharing ``variables``.

    Pauses are skipped: they only space the requests out for Runscope's
    scheduler and change nothing on the server.
    """
    export = json.loads(export_path.read_text())
    report = RunReport()
    with httpx.Client(timeout=timeout_s) as http:
        for number, step in enumerate(export["steps"], start=1):
            if step.get("step_type") == "pause":
                report.pauses_skipped += 1
                continue
            if step.get("step_type") != "request":
                raise ValueError(f"step {number} has unknown type {step['step_type']}")
            name = (step.get("note") or f"step {number}").strip()
            response = send(http, step, variables)
            for assertion in step.get("assertions") or []:
                report.results.append(evaluate(name, assertion, response, variables))
            for extraction in step.get("variables") or []:
                value = _actual(extraction["source"], extraction["property"], response)
                if value is not MISSING:
                    variables[extraction["name"]] = as_text(value)
            for index, script in enumerate(step.get("scripts") or [], start=1):
                passed, detail = run_script(node, script, response, variables)
                report.results.append(
                    AssertionResult(name, f"script {index}", passed, detail)
                )
    return report
