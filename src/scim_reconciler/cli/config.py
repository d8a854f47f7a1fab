"""The ``config`` commands: check the settings and show where each comes from."""

from __future__ import annotations

import asyncio
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.fernet import Fernet
from pydantic import SecretStr
from rich.table import Table
from sqlalchemy.engine import make_url

from scim_reconciler.cli.common import JsonOption, State, err, out, print_json
from scim_reconciler.settings import (
    CONFIG_FILE_ENV,
    ENV_PREFIX,
    Settings,
    SettingsError,
    load_settings,
    secrets_directory,
)

config_app = typer.Typer(help="Check the service's settings.", no_args_is_help=True)

MASK = "****"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _config_file() -> Path | None:
    if State.config is not None:
        return State.config
    named = os.environ.get(CONFIG_FILE_ENV)
    return Path(named) if named else None


def setting_sources(config_file: Path | None) -> dict[str, str]:
    """Name where each setting's value comes from, in order of precedence."""
    toml_keys: set[str] = set()
    if config_file is not None and config_file.is_file():
        toml_keys = set(tomllib.loads(config_file.read_text()))
    secrets_dir = secrets_directory()
    secret_files = (
        {path.name.lower(): path for path in secrets_dir.iterdir()}
        if secrets_dir is not None and secrets_dir.is_dir()
        else {}
    )
    environment = {name.upper() for name in os.environ}
    sources = {}
    for name in Settings.model_fields:
        env_name = f"{ENV_PREFIX}{name.upper()}"
        secret_file = secret_files.get(env_name.lower())
        if env_name in environment:
            sources[name] = f"environment ({env_name})"
        elif secret_file is not None:
            sources[name] = f"secret file {secret_file}"
        elif name in toml_keys:
            sources[name] = f"configuration file {config_file}"
        else:
            sources[name] = "default"
    return sources


def masked_settings(settings: Settings) -> dict[str, Any]:
    """Return the effective settings with every secret masked."""
    values = settings.model_dump(mode="json")
    for name in Settings.model_fields:
        if isinstance(getattr(settings, name), SecretStr):
            values[name] = MASK
    values["database_url"] = make_url(settings.database_url).render_as_string(
        hide_password=True
    )
    return values


def check_settings(settings: Settings) -> Findings:
    """Find problems that each setting's own validation cannot see."""
    findings = Findings()
    if settings.secret_key is not None:
        try:
            Fernet(settings.secret_key.get_secret_value().encode())
        except ValueError:
            findings.errors.append(
                f"invalid setting secret_key ({ENV_PREFIX}SECRET_KEY): it is not a "
                "Fernet key (32 bytes in urlsafe base64); generate one with "
                "`scim-reconciler connector new-key`"
            )
    base = make_url(settings.database_url)
    # The default is relative on purpose: a trial keeps its data where it runs.
    is_default = settings.database_url == Settings.model_fields["database_url"].default
    if (
        base.get_backend_name() == "sqlite"
        and not Path(base.database or "").is_absolute()
        and not is_default
    ):
        findings.warnings.append(
            f"database_url names the SQLite file {base.database!r} relative to the "
            "working directory; give an absolute path so that every command uses "
            "the same file"
        )
    url = settings.public_base_url
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    if url.startswith("http://") and host not in LOOPBACK_HOSTS:
        findings.warnings.append(
            f"public_base_url {url!r} is not https: IdPs would send SCIM tokens "
            "unencrypted; serve behind TLS and set an https:// URL"
        )
    return findings


async def _check_database(settings: Settings) -> str | None:
    """Return None when the database is reachable and migrated, else the fix."""
    from scim_reconciler.db.engine import open_database
    from scim_reconciler.db.migrate import is_at_head

    database = open_database(settings.database_url, pool_size=1)
    shown = masked_settings(settings)["database_url"]
    try:
        async with asyncio.timeout(10):
            at_head = await is_at_head(database)
    except Exception as exc:  # what failed is reported, whatever it was
        return (
            f"cannot reach the database at {shown}: {type(exc).__name__}: {exc}; "
            "check database_url and that the server is up"
        )
    finally:
        await database.dispose()
    if not at_head:
        return (
            f"the database at {shown} is not at the newest schema: run "
            "`scim-reconciler migrate` or start `serve` with migrate_on_start"
        )
    return None


@config_app.command("check")
def config_check(
    database: Annotated[
        bool,
        typer.Option(
            "--database",
            help="Also connect to the database and check its schema revision.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate the settings and print the effective configuration.

    Secrets are masked. Exits with status 1 when a setting is invalid, naming
    the setting and the fix.
    """
    try:
        settings = load_settings(State.config)
    except SettingsError as exc:
        _report_errors(list(exc.problems), as_json)
        raise typer.Exit(1) from None
    findings = check_settings(settings)
    if database and not findings.errors:
        problem = asyncio.run(_check_database(settings))
        if problem is not None:
            findings.errors.append(problem)
    values = masked_settings(settings)
    sources = setting_sources(_config_file())
    if as_json:
        print_json(
            {
                "valid": not findings.errors,
                "errors": findings.errors,
                "warnings": findings.warnings,
                "settings": values,
                "sources": sources,
            }
        )
    else:
        _print_table(values, sources)
        for warning in findings.warnings:
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        for error in findings.errors:
            err.print(f"[red]error:[/red] {error}", highlight=False)
        if not findings.errors:
            out.print("The configuration is valid.")
    if findings.errors:
        raise typer.Exit(1)


def _report_errors(problems: list[str], as_json: bool) -> None:
    if as_json:
        print_json({"valid": False, "errors": problems, "warnings": []})
        return
    for problem in problems:
        err.print(f"[red]error:[/red] {problem}", highlight=False)


def _print_table(values: dict[str, Any], sources: dict[str, str]) -> None:
    table = Table("Setting", "Value", "Source")
    for name, value in values.items():
        if name == "roles":
            shown = ", ".join(role["slug"] for role in value)
        else:
            shown = "" if value is None else str(value)
        table.add_row(name, shown, sources.get(name, "default"))
    out.print(table)
