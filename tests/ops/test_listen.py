"""Where serve and demo listen: the public base URL follows the port unless
configured, and a busy port fails before anything is set up."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.server import cli_command, free_port

pytestmark = pytest.mark.slow


def test_busy_port_fails_before_demo_setup(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]

        result = run_cli(database_url, tmp_path, "demo", "--port", str(port))

    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1 port {port}" in result.stderr
    assert "--port" in result.stderr
    assert "SCIM token" not in result.stdout
    assert not (tmp_path / "scim-reconciler-demo.json").exists()


def test_public_base_url_follows_port(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "SCIM_RECONCILER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db'}",
        "PATH": "/usr/bin:/bin",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*cli_command(), "serve", "--port", str(port)],
            env={**env, "SCIM_RECONCILER_LOG_LEVEL": "INFO"},
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)

    assert f"SCIM base URL {base}/scim/v2" in log_path.read_text()
