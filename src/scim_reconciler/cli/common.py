"""Helpers shared by the command-line modules: settings, database, output."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Column

from scim_reconciler.db.engine import Database
from scim_reconciler.errors import ReconcilerError
from scim_reconciler.settings import Settings, SettingsError, load_settings

T = TypeVar("T")

out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON value.")]


class State:
    config: Path | None = None


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


def settings() -> Settings:
    try:
        return load_settings(State.config)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def id_column(header: str = "Id") -> Column:
    """Return a table column that never shortens the ids other commands take."""
    return Column(header, no_wrap=True, min_width=36)


def time_column(header: str) -> Column:
    """Return a table column for times printed by ``when``, wrapped when narrow."""
    return Column(header, overflow="fold")


def listen_settings(
    config: Settings, host: str | None, port: int | None
) -> tuple[Settings, str, int]:
    """Resolve where to listen, and check that the address is free.

    When public_base_url is not configured, it follows the port (and a host
    other than every interface), so that the printed SCIM base URL and the
    URLs in responses point at this process.
    """
    host = host or config.host
    port = config.port if port is None else port
    if port != 0:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            # As uvicorn does, so that connections still closing do not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise fail(
                    f"cannot listen on {host} port {port}: {exc.strerror}. Stop "
                    "what uses it, or pass another port with --port"
                ) from None
    if "public_base_url" not in config.model_fields_set and port != 0:
        display_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        if ":" in display_host:
            display_host = f"[{display_host}]"
        config = config.model_copy(
            update={"public_base_url": f"http://{display_host}:{port}"}
        )
    return config, host, port


def new_event_loop() -> asyncio.AbstractEventLoop:
    """Create a uvloop loop where uvloop is installed, as `serve` runs on one."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(work: Callable[[Database], Awaitable[T]], *, migrate_first: bool = True) -> T:
    """Run ``work`` against the configured database, migrated to head first."""
    from scim_reconciler.db.migrate import prepare_database

    config = settings()

    async def main() -> T:
        database = await prepare_database(config, run_migrations=migrate_first)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(main())
    except ReconcilerError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot reach the database at {_safe_url(config)}: {exc}") from None


def _safe_url(config: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(config.database_url).render_as_string(hide_password=True)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot serialize {type(value).__name__}")


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"
