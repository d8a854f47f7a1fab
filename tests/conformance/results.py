"""Assertion results of the external suites, and the known failures that
docs/compliance.md lists for each suite.

The tests compare the failures of a run with the documented table, so a
regression and a fix both fail the test until the table is updated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPLIANCE_DOC = REPO_ROOT / "docs" / "compliance.md"


@dataclass(frozen=True)
class AssertionResult:
    """The outcome of one assertion or script of one request of a suite."""

    step: str
    assertion: str
    passed: bool
    detail: str
    informational: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.step, self.assertion)


def _cells(row: str) -> list[str]:
    return [
        cell.strip().strip("`").strip() for cell in row.strip().strip("|").split("|")
    ]


def documented_failures(
    heading: str, doc: Path = COMPLIANCE_DOC
) -> set[tuple[str, str]]:
    """Read the (step, assertion) pairs from the table under ``heading``.

    The table's first two columns name the step and the assertion, each in
    backticks. The header row and the separator row are skipped.
    """
    lines = doc.read_text().splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        raise LookupError(f"{doc} has no heading {heading!r}") from None
    found: set[tuple[str, str]] = set()
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if not line.startswith("|") or line.startswith("| ---"):
            continue
        step, assertion = _cells(line)[:2]
        if (step, assertion) != ("Step", "Assertion"):
            found.add((step, assertion))
    return found


def describe_difference(
    failed: Iterable[AssertionResult], known: set[tuple[str, str]]
) -> str:
    """Explain how the failures of a run differ from the documented ones."""
    by_key = {result.key: result for result in failed}
    lines = []
    for key in sorted(by_key.keys() - known):
        result = by_key[key]
        lines.append(f"new failure: {key[0]} / {key[1]}: {result.detail}")
    for key in sorted(known - by_key.keys()):
        lines.append(
            f"documented as failing but passed or did not run: {key[0]} / {key[1]}"
        )
    return "\n".join(lines)
