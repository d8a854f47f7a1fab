"""Microsoft's SCIM test collection (Postman, run by newman) against ``serve``.

Microsoft publishes this collection with its SCIM reference code. Some of its
assertions test that code's own behaviour rather than RFC 7644; those, and the
failures that follow from them, are listed in docs/compliance.md with the
reason for each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.newman import install_newman, run_collection
from tests.conformance.results import describe_difference, documented_failures
from tests.support.served import ServedTenant

HEADING = "### Microsoft SCIM test collection: known failures"
COLLECTION_NAME = "entra-scim-postman-collection.json"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def newman(npm: str, node: str) -> Path:
    return install_newman(npm)


def test_entra_collection_failures_are_documented(
    served_tenant: ServedTenant, conformance_dir: Path, newman: Path, tmp_path: Path
) -> None:
    """Every ``pm.test`` passes except the documented ones."""
    report = run_collection(
        newman,
        conformance_dir / COLLECTION_NAME,
        served_tenant.server.base_url,
        served_tenant.token,
        tmp_path,
    )

    assert report.requests > 0
    assert report.assertions_total == len(report.results) - report.script_errors
    known = documented_failures(HEADING)
    assert {result.key for result in report.failed} == known, describe_difference(
        report.failed, known
    )
