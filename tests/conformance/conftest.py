"""Fixtures for the external compliance suites: where their files are, the
Node.js tools they need, and a real ``serve`` process with a SCIM token.

The suites are not part of the repository: they are read from
``shared/conformance`` beside the clone. Without that folder (or without
Node.js) these tests are skipped, except under ``CI=true``, where it is a
failure.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.results import REPO_ROOT
from tests.conftest import Tenant
from tests.support.databases import in_ci
from tests.support.served import ServedTenant, serve_tenant

CONFORMANCE_DIR = REPO_ROOT.parent / "shared" / "conformance"


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (under CI=true this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE_DIR.is_dir():
        _unavailable(
            f"the external SCIM compliance suites are not at {CONFORMANCE_DIR}; "
            "put the shared folder beside the clone to run them"
        )
    return CONFORMANCE_DIR


@pytest.fixture(scope="session")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        _unavailable("Node.js (node) is not on PATH")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        _unavailable("npm is not on PATH")
    assert found is not None
    return found


@pytest.fixture
def served_tenant(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> Iterator[ServedTenant]:
    """A ``serve`` process on the test database, and the tenant's SCIM token."""
    with serve_tenant(database_url, tenant.token, tmp_path) as served:
        yield served
