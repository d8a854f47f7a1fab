"""Connector kinds: how each is configured, validated, stored and built.

A connector configuration is a flat mapping (a TOML or JSON file, or command-line
options) with ``kind``, the kind's own keys, and the run settings shared by all
kinds (``enabled``, ``interval_seconds``, ``jitter_seconds``,
``max_deactivations``, ``max_deactivation_percent``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scim_reconciler.errors import InvalidInputError
from scim_reconciler.reconcile import secrets
from scim_reconciler.reconcile.connectors.base import Connector
from scim_reconciler.reconcile.connectors.idp_settings import (
    EntraSettings,
    OktaSettings,
    OneLoginSettings,
)


class RunSettings(BaseModel):
    """Schedule and safety limits of an organization's runs."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Seconds between scheduled runs. Values below a minute suit tests and the
    # simulator; against a real IdP they spend its rate limit for little gain.
    interval_seconds: int = Field(default=3600, ge=1, le=7 * 86400)
    jitter_seconds: int = Field(default=300, ge=0, le=86400)
    max_deactivations: int = Field(default=25, ge=0)
    max_deactivation_percent: float = Field(default=10.0, ge=0, le=100)


class FileSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="Directory file (JSON) to read.")
    page_size: int = Field(default=500, ge=1, le=10_000)


@dataclass(frozen=True)
class ConnectorKind:
    name: str
    settings: type[BaseModel]
    secret_fields: tuple[str, ...]
    build: Callable[[dict[str, Any], dict[str, str]], Connector]


def _build_file(config: dict[str, Any], _secrets: dict[str, str]) -> Connector:
    from scim_reconciler.reconcile.connectors.directory import DirectoryConnector

    return DirectoryConnector(Path(config["path"]), page_size=config["page_size"])


def _build_okta(config: dict[str, Any], revealed: dict[str, str]) -> Connector:
    from scim_reconciler.reconcile.connectors.okta import OktaConnector

    return OktaConnector(OktaSettings.model_validate({**config, **revealed}), revealed)


def _build_entra(config: dict[str, Any], revealed: dict[str, str]) -> Connector:
    from scim_reconciler.reconcile.connectors.entra import EntraConnector

    return EntraConnector(
        EntraSettings.model_validate({**config, **revealed}), revealed
    )


def _build_onelogin(config: dict[str, Any], revealed: dict[str, str]) -> Connector:
    from scim_reconciler.reconcile.connectors.onelogin import OneLoginConnector

    settings = OneLoginSettings.model_validate({**config, **revealed})
    return OneLoginConnector(settings, revealed)


KINDS: dict[str, ConnectorKind] = {
    "file": ConnectorKind("file", FileSettings, (), _build_file),
    "okta": ConnectorKind(
        "okta", OktaSettings, ("api_token", "private_key"), _build_okta
    ),
    "entra": ConnectorKind(
        "entra", EntraSettings, ("client_secret", "client_certificate"), _build_entra
    ),
    "onelogin": ConnectorKind(
        "onelogin", OneLoginSettings, ("client_secret",), _build_onelogin
    ),
}

RUN_KEYS = tuple(RunSettings.model_fields)


def _describe(exc: ValidationError, kind: str) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(configuration)"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r} for kind {kind}")
        elif error["type"] == "missing":
            problems.append(f"missing key {key!r} for kind {kind}")
        else:
            problems.append(f"{key}: {error['msg']}")
    return "invalid connector configuration: " + "; ".join(problems)


@dataclass(frozen=True)
class ParsedConfig:
    kind: str
    config: dict[str, Any]
    run: RunSettings


def parse_config(raw: dict[str, Any], secret_key: str | None) -> ParsedConfig:
    """Validate a connector configuration and seal its secrets for storage."""
    kind_name = raw.get("kind")
    if not isinstance(kind_name, str) or kind_name not in KINDS:
        choices = ", ".join(sorted(KINDS))
        raise InvalidInputError(
            f"connector kind {kind_name!r} is not known: choose one of {choices}"
        )
    kind = KINDS[kind_name]
    run_values = {key: raw[key] for key in RUN_KEYS if key in raw}
    own = {
        key: value
        for key, value in raw.items()
        if key != "kind" and key not in RUN_KEYS
    }
    sealed = {
        name: secrets.seal(name, own.pop(name), secret_key)
        for name in kind.secret_fields
        if name in own and own[name] is not None
    }
    try:
        run = RunSettings.model_validate(run_values)
        validated = kind.settings.model_validate(
            {**own, **{name: "sealed" for name in sealed}}
        )
    except ValidationError as exc:
        raise InvalidInputError(_describe(exc, kind_name)) from None
    config = validated.model_dump(mode="json")
    config.update(sealed)
    return ParsedConfig(kind_name, config, run)


def build_connector(
    kind_name: str, config: dict[str, Any], secret_key: str | None
) -> Connector:
    kind = KINDS.get(kind_name)
    if kind is None:
        raise InvalidInputError(f"connector kind {kind_name!r} is not known")
    revealed = {
        name: secrets.reveal(name, config[name], secret_key)
        for name in kind.secret_fields
        if name in config
    }
    return kind.build(config, revealed)


def masked(kind_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Return the configuration with every secret replaced by its description."""
    kind = KINDS.get(kind_name)
    secret_fields = kind.secret_fields if kind else ()
    return {
        key: secrets.mask(value) if key in secret_fields else value
        for key, value in config.items()
    }
