"""A real ``scim-reconciler serve`` process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

# Generous, because parallel test processes share the CPUs with the server.
STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def scim_url(self) -> str:
        return f"{self.base_url}/scim/v2"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def cli_command() -> list[str]:
    return [sys.executable, "-m", "scim_reconciler"]


@contextmanager
def serve(
    database_url: str, work_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[ServeProcess]:
    """Start ``serve`` on a free port and stop it (SIGTERM) at the end."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SCIM_RECONCILER_")
    }
    env.update(
        {
            "SCIM_RECONCILER_DATABASE_URL": database_url,
            "SCIM_RECONCILER_PUBLIC_BASE_URL": base_url,
            "SCIM_RECONCILER_LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra_env or {})
    log_path = work_dir / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*cli_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
        )
    server = ServeProcess(process, base_url, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_ready(server: ServeProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"serve exited with {server.process.returncode}:\n{server.log()}"
            )
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"serve did not become ready in {STARTUP_TIMEOUT_S} s:\n{server.log()}"
    )
