"""A ``serve`` process together with the SCIM token of one organization."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import ServeProcess, serve


@dataclass(frozen=True)
class ServedTenant:
    server: ServeProcess
    # Kept out of repr, so a failing test's traceback does not print it.
    token: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def serve_tenant(
    database_url: str, token: str, work_dir: Path
) -> Iterator[ServedTenant]:
    """Start ``serve`` on the database and pair it with the organization's token."""
    with serve(database_url, work_dir) as server:
        yield ServedTenant(server, token)
