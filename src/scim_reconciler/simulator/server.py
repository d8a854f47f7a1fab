"""Run a simulated IdP on 127.0.0.1 under uvicorn.

On start it prints one JSON line on standard output before anything else:
``{"idp": ..., "base_url": ..., "connector": {...}}``, where ``connector`` is
a complete connector configuration (kind, base URL, credentials) that
``scim-reconciler connector set ORG --config FILE`` accepts as it is.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from scim_reconciler.reconcile.connectors.directory import read_directory
from scim_reconciler.simulator.base import Clock, IdpSimulator, SimulatorOptions, Sleep
from scim_reconciler.simulator.entra import EntraSimulator
from scim_reconciler.simulator.okta import OktaSimulator
from scim_reconciler.simulator.onelogin import OneLoginSimulator

# Loopback only: the simulator's credentials are printed for anyone to use.
HOST = "127.0.0.1"
IDPS = ("okta", "entra", "onelogin")


def make_simulator(
    idp: str,
    directory_path: Path,
    options: SimulatorOptions,
    *,
    okta_auth: str = "ssws",
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
) -> IdpSimulator:
    """Build the simulator of ``idp`` serving the directory file's content.

    Raises ConnectorConfigError for a directory file that cannot be read, and
    ValueError for an unknown IdP or a bad fault spec.
    """
    directory = read_directory(directory_path)
    if idp == "okta":
        return OktaSimulator(
            directory, options, auth=okta_auth, clock=clock, sleep=sleep
        )
    if idp == "entra":
        return EntraSimulator(directory, options, clock=clock, sleep=sleep)
    if idp == "onelogin":
        return OneLoginSimulator(directory, options, clock=clock, sleep=sleep)
    raise ValueError(f"IdP {idp!r} is not simulated: choose one of {', '.join(IDPS)}")


def bind(port: int) -> socket.socket:
    """Bind a listening socket on the loopback address; port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. uvicorn writes a response's headers
    # and body separately, and with Nagle's algorithm the body then waits for
    # the client's delayed ACK of the headers: about 40 ms per response on Linux.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((HOST, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def announcement(simulator: IdpSimulator, base_url: str) -> dict[str, Any]:
    """Return the first output line's content: the connector configuration."""
    return {
        "idp": simulator.name,
        "base_url": base_url,
        "connector": simulator.connector_config(base_url),
    }


def new_server(
    simulator: IdpSimulator, sock: socket.socket, log_level: str = "warning"
) -> tuple[uvicorn.Server, str]:
    """Create a uvicorn server for ``simulator`` on ``sock``; return it and its URL."""
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        simulator.app(),
        log_level=log_level,
        server_header=False,
        # The simulators send their own Date, from the clock they are given.
        date_header=False,
        lifespan="off",
        # A timeout fault keeps its handler asleep after the client gave up;
        # shutting down does not wait for it longer than this, in seconds.
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config), f"http://{HOST}:{port}"


def serve(
    simulator: IdpSimulator,
    port: int,
    *,
    log_level: str = "warning",
    output: TextIO = sys.stdout,
) -> None:
    """Print the connector configuration, then serve until interrupted."""
    sock = bind(port)
    server, base_url = new_server(simulator, sock, log_level)
    output.write(json.dumps(announcement(simulator, base_url)) + "\n")
    output.flush()
    asyncio.run(server.serve(sockets=[sock]))
