"""Service settings, read from the environment and an optional TOML file.

Every setting has an environment variable named ``SCIM_RECONCILER_`` plus the
setting in capitals, for example ``SCIM_RECONCILER_DATABASE_URL``. A TOML file
named by ``SCIM_RECONCILER_CONFIG_FILE`` (or ``--config`` on the command line)
supplies the same keys in lower case; the environment wins over the file.
"""

from __future__ import annotations

import os
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "SCIM_RECONCILER_"
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG_FILE"
# Variables under this prefix configure the test suite, not the service.
TEST_ENV_PREFIX = f"{ENV_PREFIX}TEST_"
DEFAULT_DATABASE_PATH = Path("scim-reconciler.db")


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
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    migrate_on_start: bool = True
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest SCIM request body, in bytes."
    )
    max_results: int = Field(
        default=1000, ge=1, description="Largest page a SCIM list returns."
    )
    database_pool_size: int = Field(default=10, ge=1)
    roles: list[RoleDefinition] = Field(
        default_factory=lambda: list(DEFAULT_ROLE_CATALOG),
        description="Dashboard role catalog: slug and display name of each role.",
    )
    log_level: str = "INFO"
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

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"public_base_url {value!r} must start with http:// or https://"
            )
        return value.rstrip("/")

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
        config_file = _config_file.get() or os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, Path(config_file)))
        return tuple(sources)


# The file named by --config; a context variable so that tests and embedding
# callers never leak it into the process environment.
_config_file: ContextVar[Path | None] = ContextVar("config_file", default=None)


class SettingsError(Exception):
    """Raised when the settings cannot be read; the message names each bad key."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings, naming every invalid key and how to fix it."""
    from pydantic import ValidationError

    unknown = sorted(
        name
        for name in os.environ
        if name.startswith(ENV_PREFIX)
        and name.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields
        and name != CONFIG_FILE_ENV
        and not name.startswith(TEST_ENV_PREFIX)
    )
    if unknown:
        raise SettingsError(
            f"unknown environment variable {unknown[0]}: check its spelling "
            "against the settings listed in docs/configuration.md"
        )
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
        lines = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            env_name = f"{ENV_PREFIX}{str(error['loc'][0]).upper()}"
            if error["type"] == "extra_forbidden":
                lines.append(f"unknown setting {key!r}: remove it or fix its spelling")
            else:
                lines.append(f"invalid setting {key} ({env_name}): {error['msg']}")
        raise SettingsError("; ".join(lines)) from None
    except Exception as exc:  # a malformed TOML file
        raise SettingsError(f"configuration file could not be read: {exc}") from None
    finally:
        if chosen is not None:
            _config_file.reset(chosen)
