"""Service settings, read from the environment, secret files and a TOML file.

Every setting has an environment variable named ``SCIM_RECONCILER_`` plus the
setting in capitals, for example ``SCIM_RECONCILER_DATABASE_URL``. A file in the
secrets directory named the same way in lower case supplies a setting too, for
example ``/run/secrets/scim_reconciler_secret_key``. So does a TOML file named
by ``SCIM_RECONCILER_CONFIG_FILE`` (or ``--config`` on the command line), with
the keys in lower case. The environment wins over a secret file, and a secret
file wins over the TOML file.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "SCIM_RECONCILER_"
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG_FILE"
SECRETS_DIR_ENV = f"{ENV_PREFIX}SECRETS_DIR"
# Docker and Docker Compose mount secrets here; read only when it exists.
DEFAULT_SECRETS_DIR = Path("/run/secrets")
# Variables that locate the settings rather than being settings themselves.
LOCATION_ENVS = frozenset({CONFIG_FILE_ENV, SECRETS_DIR_ENV})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Variables under this prefix configure the test suite, not the service.
TEST_ENV_PREFIX = f"{ENV_PREFIX}TEST_"
DEFAULT_DATABASE_PATH = Path("scim-reconciler.db")
OPERATOR_KEY_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


class RoleDefinition(BaseModel):
    """One entry of the dashboard role catalog."""

    slug: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    name: str = Field(min_length=1, max_length=200)


DEFAULT_ROLE_CATALOG: tuple[RoleDefinition, ...] = tuple(
    RoleDefinition(slug=slug, name=name)
    for slug, name in (
        ("global_admin", "Global Administrator"),
        ("org_settings_admin", "Organization Settings Admin"),
        ("analytics_admin", "Analytics Admin"),
        ("course_management_admin", "Course Management Admin"),
        ("groups_admin", "Groups Admin"),
        ("announcements_admin", "Announcements Admin"),
        ("codes_admin", "Codes Admin"),
        ("api_admin", "API Admin"),
        ("live_training_admin", "Live Training Admin"),
    )
)


class Settings(BaseSettings):
    """Settings of the service and the command line."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        secrets_dir=None,
    )

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{DEFAULT_DATABASE_PATH}",
        description="SQLAlchemy URL: sqlite+aiosqlite:///PATH or "
        "postgresql+asyncpg://USER@HOST/DB.",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Address clients use to reach the service; meta.location and "
        "the SCIM base URL are built from it, never from the Host header.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address `serve` listens on; 0.0.0.0 in a container.",
    )
    port: int = Field(
        default=8000, ge=0, le=65535, description="TCP port `serve` listens on."
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Upgrade the schema when `serve` starts; false when "
        "`scim-reconciler migrate` runs as a separate step.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest SCIM request body, in bytes."
    )
    max_results: int = Field(
        default=1000, ge=1, description="Largest page a SCIM list returns."
    )
    database_pool_size: int = Field(
        default=10, ge=1, description="Database connections each process keeps."
    )
    database_pool_pre_ping: bool = Field(
        default=True,
        description="Test a pooled PostgreSQL connection that sat unused for more "
        "than a second before a request uses it, and replace it if the database "
        "dropped it.",
    )
    roles: list[RoleDefinition] = Field(
        default_factory=lambda: list(DEFAULT_ROLE_CATALOG),
        description="Dashboard role catalog: slug and display name of each role.",
    )
    log_level: str = Field(
        default="INFO", description="One of DEBUG, INFO, WARNING, ERROR, CRITICAL."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="json (one JSON object a line), console (readable), or auto: "
        "console when standard error is a terminal, json otherwise.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (urlsafe base64 of 32 bytes) that encrypts "
        "connector secrets stored in the database; `scim-reconciler connector "
        "new-key` makes one.",
    )
    scheduler_enabled: bool = Field(
        default=True, description="Run scheduled reconciliations in `serve`."
    )
    scheduler_refresh_seconds: int = Field(
        default=60,
        ge=1,
        description="How often `serve` looks for organizations added or changed.",
    )
    shutdown_grace_seconds: int = Field(
        default=20,
        ge=1,
        le=3600,
        description="Seconds `serve` takes at most, after SIGTERM, to finish "
        "requests and the current batch of a running apply before it exits.",
    )
    metrics_enabled: bool = Field(
        default=True, description="Serve Prometheus metrics at /metrics."
    )
    operator_key_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SHA-256 hashes (sha256:HEX) of the operator API keys that "
        "sign in to the admin API and console for every organization; "
        "`scim-reconciler operator-key new` makes a key and its hash. In the "
        "environment: a JSON list or hashes separated by commas.",
    )
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks of the proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto headers `serve` trusts, for the client address "
        "(sign-in throttling, logs) and the scheme; empty trusts none.",
    )
    admin_session_minutes: int = Field(
        default=480,
        ge=5,
        le=43200,
        description="Minutes a console session lasts after sign-in.",
    )
    sign_in_max_failures: int = Field(
        default=10,
        ge=1,
        description="Failed sign-ins from one client address that block it for "
        "the rest of sign_in_window_seconds.",
    )
    sign_in_window_seconds: int = Field(
        default=300,
        ge=1,
        description="Window, in seconds, over which failed sign-ins are counted.",
    )

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"public_base_url {value!r} must start with http:// or https://"
            )
        return value.rstrip("/")

    @field_validator("operator_key_hashes", "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("operator_key_hashes")
    @classmethod
    def _check_key_hashes(cls, value: list[str]) -> list[str]:
        hashes = [item.strip().lower() for item in value]
        for item in hashes:
            if not OPERATOR_KEY_HASH.match(item):
                excerpt = item if len(item) <= 16 else item[:12] + "..."
                raise ValueError(
                    f"operator key hash {excerpt!r} is not valid: give sha256: and "
                    "64 hexadecimal digits, as `scim-reconciler operator-key new` "
                    "prints them, never the key itself"
                )
        return hashes

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        proxies = [item.strip() for item in value]
        for item in proxies:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips entry {item!r} is not an IP address or "
                    "network: give addresses such as 10.0.0.5 or 10.0.0.0/8, or * "
                    "to trust every peer"
                ) from None
        return proxies

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            choices = ", ".join(LOG_LEVELS)
            raise ValueError(
                f"log_level {value!r} is not a level: use one of {choices}"
            )
        return level

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # Operators paste libpq URLs; the async driver is the only one installed.
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        if not value.startswith(("sqlite+aiosqlite:///", "postgresql+asyncpg://")):
            raise ValueError(
                f"database_url {value!r} is not supported: use "
                "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB"
            )
        return value

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, value: list[RoleDefinition]) -> list[RoleDefinition]:
        slugs = [role.slug for role in value]
        duplicates = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if duplicates:
            raise ValueError(f"role slugs must be unique, repeated: {duplicates}")
        if "global_admin" not in slugs:
            raise ValueError("the role catalog must keep the global_admin role")
        return value

    @property
    def scim_base_url(self) -> str:
        return f"{self.public_base_url}/scim/v2"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = secrets_directory()
        if secrets_dir is not None:
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir))
        config_file = _config_file.get() or os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, Path(config_file)))
        return tuple(sources)


def secrets_directory() -> Path | None:
    """Return the secrets directory to read, or None when there is none.

    ``SCIM_RECONCILER_SECRETS_DIR`` names one; otherwise /run/secrets is read
    when it exists.
    """
    named = os.environ.get(SECRETS_DIR_ENV)
    if named:
        return Path(named)
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


# The file named by --config; a context variable so that tests and embedding
# callers never leak it into the process environment.
_config_file: ContextVar[Path | None] = ContextVar("config_file", default=None)


class SettingsError(Exception):
    """Raised when the settings cannot be read; the message names each bad key.

    ``problems`` lists each problem as one sentence; the message joins them.
    """

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _location_problems() -> list[str]:
    """Check the variables and files that locate the settings, before reading."""
    problems = [
        f"unknown environment variable {name}: check its spelling against the "
        "settings listed in docs/configuration.md"
        for name in sorted(os.environ)
        if name.startswith(ENV_PREFIX)
        and name.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields
        and name not in LOCATION_ENVS
        and not name.startswith(TEST_ENV_PREFIX)
    ]
    named = os.environ.get(SECRETS_DIR_ENV)
    if named and not Path(named).is_dir():
        problems.append(
            f"secrets directory {named!r} named by {SECRETS_DIR_ENV} not found: "
            "mount it or unset the variable"
        )
        return problems
    secrets_dir = secrets_directory()
    if secrets_dir is None:
        return problems
    prefix = ENV_PREFIX.lower()
    for path in sorted(secrets_dir.iterdir()):
        name = path.name.lower()
        if name.startswith(prefix) and name.removeprefix(prefix) not in (
            Settings.model_fields
        ):
            problems.append(
                f"unknown secret file {path}: name it {prefix}<setting> after a "
                "setting listed in docs/configuration.md"
            )
    return problems


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings, naming every invalid key and how to fix it."""
    from pydantic import ValidationError

    problems = _location_problems()
    if problems:
        raise SettingsError(*problems)
    chosen: Token[Path | None] | None = None
    if config_file is not None:
        if not config_file.is_file():
            raise SettingsError(
                f"configuration file {str(config_file)!r} not found: "
                "check the path given to --config"
            )
        chosen = _config_file.set(config_file)
    elif (named := os.environ.get(CONFIG_FILE_ENV)) and not Path(named).is_file():
        raise SettingsError(
            f"configuration file {named!r} named by {CONFIG_FILE_ENV} not found"
        )
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(*_describe_errors(exc)) from None
    except Exception as exc:  # a malformed TOML file
        raise SettingsError(f"configuration file could not be read: {exc}") from None
    finally:
        if chosen is not None:
            _config_file.reset(chosen)


def _describe_errors(exc: Any) -> list[str]:
    """Turn a pydantic ValidationError into one sentence per invalid setting."""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        name = str(error["loc"][0]) if error["loc"] else ""
        env_name = f"{ENV_PREFIX}{name.upper()}"
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting {key!r}: remove it or fix its spelling")
            continue
        line = f"invalid setting {key} ({env_name}): {error['msg']}"
        field = Settings.model_fields.get(name)
        # The project's own validators already name the fix. Pydantic's type
        # errors do not, so they get the setting's description.
        if error["type"] != "value_error" and field and field.description:
            line += f"; expected: {field.description}"
        lines.append(line)
    return lines
