"""Helpers for IdP connector tests: a fake clock, directory files, and a
simulated IdP served over real loopback HTTP, inside the test's event loop or
as a ``scim-reconciler simulate`` process."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from scim_reconciler.reconcile.connectors.base import Connector, MemberPage
from scim_reconciler.reconcile.connectors.entra import EntraConnector
from scim_reconciler.reconcile.connectors.http import Timing
from scim_reconciler.reconcile.connectors.idp_settings import (
    EntraSettings,
    OktaSettings,
    OneLoginSettings,
)
from scim_reconciler.reconcile.connectors.okta import OktaConnector
from scim_reconciler.reconcile.connectors.onelogin import OneLoginConnector
from scim_reconciler.reconcile.connectors.registry import KINDS
from scim_reconciler.reconcile.model import IdpGroup, IdpUser
from scim_reconciler.simulator.base import IdpSimulator, SimulatorOptions
from scim_reconciler.simulator.server import (
    announcement,
    bind,
    make_simulator,
    new_server,
)
from tests.support.server import cli_command

# Upper bound of any wait on the simulator server in these tests, in seconds.
SERVER_WAIT_S = 10.0
START = 1_800_000_000.0


class FakeClock:
    """Wall-clock time that only moves when code sleeps or a test advances it."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def timing(self) -> Timing:
        return Timing(clock=self.time, sleep=self.sleep)


def write_directory(
    path: Path,
    users: list[dict[str, Any]],
    groups: list[dict[str, Any]],
) -> Path:
    path.write_text(json.dumps({"users": users, "groups": groups}))
    return path


def numbered_users(count: int, prefix: str = "u") -> list[dict[str, Any]]:
    """Users {prefix}1 to {prefix}N; prefix "" gives numeric ids like OneLogin's."""
    return [
        {
            "id": f"{prefix}{index}",
            "userName": f"user{index}@example.com",
            "email": f"user{index}@example.com",
            "givenName": f"Given{index}",
            "familyName": f"Family{index}",
            "active": index % 5 != 0,
        }
        for index in range(1, count + 1)
    ]


def idp_user_id(idp: str, number: int) -> str:
    """Return user id ``number`` shaped as ``idp`` shapes user ids."""
    if idp == "okta":
        return f"00u{number:017d}"
    if idp == "entra":
        return f"00000000-0000-4000-8000-{number:012d}"
    return str(40_000 + number)


def idp_group_id(idp: str, number: int) -> str:
    """Return group id ``number`` shaped as ``idp`` shapes group ids.

    Connectors look a mapped group up by id only when the reference looks like
    one of the IdP's ids (Okta ``00g`` and 17 characters, an Entra object id,
    a OneLogin number), and by name otherwise.
    """
    if idp == "okta":
        return f"00g{number:017d}"
    if idp == "entra":
        return f"00000000-0000-4000-9000-{number:012d}"
    return str(700_000 + number)


async def all_members(connector: Connector, group: IdpGroup) -> list[MemberPage]:
    return [page async for page in connector.members(group)]


def users_of(pages: list[MemberPage]) -> list[IdpUser]:
    return [member for page in pages for member in page if isinstance(member, IdpUser)]


def build_from_announcement(
    announced: dict[str, Any], clock: FakeClock | None = None, **overrides: Any
) -> Connector:
    """Build the connector that the simulator's printed configuration describes."""
    config = dict(announced["connector"])
    kind_name = config.pop("kind")
    kind = KINDS[kind_name]
    config.update(overrides)
    secrets = {name: config[name] for name in kind.secret_fields if name in config}
    timing = clock.timing if clock else None
    if kind_name == "okta":
        return OktaConnector(
            OktaSettings.model_validate(config), secrets, timing=timing
        )
    if kind_name == "entra":
        entra = EntraSettings.model_validate(config)
        return EntraConnector(entra, secrets, timing=timing)
    onelogin = OneLoginSettings.model_validate(config)
    return OneLoginConnector(onelogin, secrets, timing=timing)


@asynccontextmanager
async def served(simulator: IdpSimulator) -> AsyncIterator[dict[str, Any]]:
    """Serve ``simulator`` on 127.0.0.1 and yield its announcement line."""
    sock = bind(0)
    server, base_url = new_server(simulator, sock)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(SERVER_WAIT_S):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield announcement(simulator, base_url)
    finally:
        server.should_exit = True
        async with asyncio.timeout(SERVER_WAIT_S):
            await task
        sock.close()


def simulator_for(
    idp: str,
    directory: Path,
    clock: FakeClock,
    *,
    okta_auth: str = "ssws",
    **options: Any,
) -> IdpSimulator:
    return make_simulator(
        idp,
        directory,
        SimulatorOptions(**options),
        okta_auth=okta_auth,
        clock=clock.time,
        sleep=clock.sleep,
    )


@asynccontextmanager
async def simulator_process(
    idp: str, directory: Path, log_path: Path, *options: str
) -> AsyncIterator[dict[str, Any]]:
    """Run ``scim-reconciler simulate IDP`` and yield its first output line, parsed.

    The process reads ``directory`` once, when it starts. Its standard error
    goes to ``log_path``, which a failure to start quotes.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SCIM_RECONCILER_")
    }
    arguments = [idp, "--directory", str(directory), "--port", "0", *options]
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *cli_command(),
            "simulate",
            *arguments,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=env,
        )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), SERVER_WAIT_S * 3)
        if not line:
            await asyncio.wait_for(process.wait(), SERVER_WAIT_S)
            log = await asyncio.to_thread(log_path.read_text, errors="replace")
            raise RuntimeError(
                f"simulate {idp} exited with {process.returncode} before its first "
                f"line:\n{log}"
            )
        announced: dict[str, Any] = json.loads(line)
        yield announced
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), SERVER_WAIT_S)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), SERVER_WAIT_S)
