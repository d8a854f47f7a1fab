"""Connector secrets: a reference to an environment variable or file, or a value
encrypted with the service's secret key. A secret is never stored in plain text.

In a stored connector configuration a secret is one of::

    {"env": "OKTA_API_TOKEN"}        read from the environment at run time
    {"file": "/run/secrets/okta"}    read from a file at run time
    {"encrypted": "gAAAA..."}        Fernet token made with settings.secret_key
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from scim_reconciler.errors import ConnectorConfigError, InvalidInputError


def new_key() -> str:
    return Fernet.generate_key().decode()


def _fernet(secret_key: str | None) -> Fernet:
    if not secret_key:
        raise InvalidInputError(
            "storing a secret needs SCIM_RECONCILER_SECRET_KEY; generate one with "
            "`scim-reconciler connector new-key`, or give the secret as "
            '{"env": NAME} or {"file": PATH} instead'
        )
    try:
        return Fernet(secret_key.encode())
    except ValueError:
        raise InvalidInputError(
            "SCIM_RECONCILER_SECRET_KEY is not a valid key: it must be 32 bytes "
            "in urlsafe base64; `scim-reconciler connector new-key` makes one"
        ) from None


def seal(name: str, value: Any, secret_key: str | None) -> dict[str, str]:
    """Turn a secret given in a configuration into its stored form."""
    if isinstance(value, dict):
        if set(value) == {"env"} and isinstance(value["env"], str) and value["env"]:
            return {"env": value["env"]}
        if set(value) == {"file"} and isinstance(value["file"], str) and value["file"]:
            return {"file": value["file"]}
        if set(value) == {"encrypted"} and isinstance(value["encrypted"], str):
            return {"encrypted": value["encrypted"]}
        raise InvalidInputError(
            f'secret {name!r} must be a string, {{"env": NAME}} or {{"file": PATH}}'
        )
    if not isinstance(value, str) or not value:
        raise InvalidInputError(
            f'secret {name!r} must be a non-empty string, {{"env": NAME}} or '
            '{"file": PATH}'
        )
    token = _fernet(secret_key).encrypt(value.encode()).decode()
    return {"encrypted": token}


def reveal(name: str, stored: Any, secret_key: str | None) -> str:
    """Read a stored secret at run time; errors name the secret, never its value."""
    if not isinstance(stored, dict):
        raise ConnectorConfigError(f"secret {name!r} is stored in an unknown form")
    if "env" in stored:
        value = os.environ.get(stored["env"], "")
        if not value:
            raise ConnectorConfigError(
                f"secret {name!r} refers to environment variable {stored['env']}, "
                "which is not set"
            )
        return value
    if "file" in stored:
        try:
            return Path(stored["file"]).read_text().strip()
        except OSError as exc:
            raise ConnectorConfigError(
                f"secret {name!r} refers to file {stored['file']}, which cannot be "
                f"read: {exc.strerror}"
            ) from None
    if "encrypted" in stored:
        if not secret_key:
            raise ConnectorConfigError(
                f"secret {name!r} is stored encrypted, and decrypting it needs the "
                "SCIM_RECONCILER_SECRET_KEY it was stored with: set that key for "
                "this process too"
            )
        try:
            return _fernet(secret_key).decrypt(stored["encrypted"].encode()).decode()
        except InvalidToken:
            raise ConnectorConfigError(
                f"secret {name!r} cannot be decrypted with SCIM_RECONCILER_SECRET_KEY: "
                "the key changed since it was stored; set the secret again"
            ) from None
        except InvalidInputError as exc:
            raise ConnectorConfigError(str(exc)) from None
    raise ConnectorConfigError(f"secret {name!r} is stored in an unknown form")


def mask(stored: Any) -> str:
    """Describe a stored secret without revealing it."""
    if isinstance(stored, dict):
        if "env" in stored:
            return f"env:{stored['env']}"
        if "file" in stored:
            return f"file:{stored['file']}"
        if "encrypted" in stored:
            return "encrypted:****"
    return "****"
