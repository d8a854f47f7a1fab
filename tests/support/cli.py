"""Run the ``scim-reconciler`` command line as a subprocess, as operators do."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.support.server import cli_command

CLI_TIMEOUT_S = 60.0


def run_cli(
    database_url: str,
    work_dir: Path,
    *arguments: str,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one command against ``database_url`` and return its exit status and output.

    The environment keeps no ``SCIM_RECONCILER_*`` variable of the test run, so
    the command reads only the database URL given here and ``extra_env``.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SCIM_RECONCILER_")
    }
    env["SCIM_RECONCILER_DATABASE_URL"] = database_url
    env.update(extra_env or {})
    # A wide terminal keeps rich from wrapping a secret across lines.
    env["COLUMNS"] = (extra_env or {}).get("COLUMNS", "250")
    return subprocess.run(
        [*cli_command(), *arguments],
        env=env,
        cwd=work_dir,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
