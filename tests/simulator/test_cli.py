"""``python -m scim_reconciler.simulator`` as a process: its first output line
is a connector configuration that the registry accepts and that works."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from scim_reconciler.reconcile import secrets
from scim_reconciler.reconcile.connectors.registry import parse_config
from tests.support.idp import numbered_users, write_directory

pytestmark = pytest.mark.slow

# Upper bound of each wait on the simulator process, in seconds.
PROCESS_WAIT_S = 30.0


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    groups = [{"id": "g1", "name": "Engineering", "members": ["u1", "u2"]}]
    return write_directory(tmp_path / "directory.json", numbered_users(3), groups)


@asynccontextmanager
async def simulator_process(*args: str) -> AsyncIterator[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scim_reconciler.simulator",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), PROCESS_WAIT_S)
        if not line:
            assert process.stderr is not None
            error = await asyncio.wait_for(process.stderr.read(), PROCESS_WAIT_S)
            pytest.fail(f"simulator exited without output: {error.decode()}")
        yield json.loads(line)
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), PROCESS_WAIT_S)


async def test_first_line_is_usable_okta_configuration(directory: Path) -> None:
    async with simulator_process("okta", "--directory", str(directory)) as announced:
        connector = announced["connector"]
        parsed = parse_config(connector, secrets.new_key())
        async with httpx.AsyncClient(timeout=PROCESS_WAIT_S) as client:
            response = await client.get(
                f"{connector['base_url']}/api/v1/groups/g1/users",
                headers={"Authorization": f"SSWS {connector['api_token']}"},
            )

    assert announced["idp"] == "okta"
    assert announced["base_url"].startswith("http://127.0.0.1:")
    assert parsed.kind == "okta"
    assert response.status_code == 200
    assert [user["id"] for user in response.json()] == ["u1", "u2"]


@pytest.mark.parametrize("idp", ["entra", "onelogin"])
async def test_first_line_parses_for_oauth_idps(idp: str, directory: Path) -> None:
    async with simulator_process(idp, "--directory", str(directory)) as announced:
        parsed = parse_config(announced["connector"], secrets.new_key())

    assert parsed.kind == idp
    assert set(parsed.config["client_secret"]) == {"encrypted"}


async def test_bad_fault_spec_exits_with_message(directory: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scim_reconciler.simulator",
        "okta",
        "--directory",
        str(directory),
        "--fault",
        "explode",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, error = await asyncio.wait_for(process.communicate(), PROCESS_WAIT_S)

    assert process.returncode == 1
    assert output == b""
    assert b"fault kind 'explode' is not known" in error
