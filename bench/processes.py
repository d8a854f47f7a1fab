"""Server processes of the benchmark and the sampling of their memory."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

READY_POLL_SECONDS = 0.1
STOP_TIMEOUT_SECONDS = 15.0
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def start_server(
    command: list[str],
    env: Mapping[str, str],
    ready_url: str,
    log_path: Path,
    cwd: Path,
    startup_timeout: float,
) -> Iterator[Server]:
    """Start a server, wait until ``ready_url`` returns 200, and stop it at the end.

    The server gets SIGTERM first, so that it shuts down as in production, and
    SIGKILL only if it has not exited after ``STOP_TIMEOUT_SECONDS``.
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=dict(env), stdout=log, stderr=subprocess.STDOUT, cwd=cwd
        )
    server = Server(process, log_path)
    try:
        _wait_ready(server, ready_url, startup_timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


def _wait_ready(server: Server, ready_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the server exited with status {server.process.returncode} "
                f"before it was ready; its log:\n{server.log()}"
            )
        try:
            if httpx.get(ready_url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(READY_POLL_SECONDS)
    raise RuntimeError(
        f"the server was not ready at {ready_url} after {timeout:.0f} s; "
        f"its log:\n{server.log()}"
    )


class MemorySampler:
    """Sample a process's resident set size (RSS) in a thread, in MiB.

    ``peak`` is the largest sample, so a peak shorter than the sampling
    interval can be missed.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.before = self.current()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> float:
        return self.process.memory_info().rss / MIB

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peak = max(self.peak, self.current())
            except psutil.NoSuchProcess:
                return

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        """Return RSS before the load, at its peak, and now, in MiB."""
        after = self.current()
        return {
            "before_mib": round(self.before, 1),
            "peak_mib": round(max(self.peak, after), 1),
            "after_mib": round(after, 1),
        }


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """Return this process's environment without service settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SCIM_RECONCILER_")
    }
    env.update(extra)
    return env
