"""Stored connector secrets: sealed with the secret key, revealed at run time."""

from __future__ import annotations

import pytest

from scim_reconciler.errors import ConnectorConfigError, InvalidInputError
from scim_reconciler.reconcile import secrets


def test_sealed_secret_reveals_with_its_key() -> None:
    key = secrets.new_key()
    stored = secrets.seal("api_token", "s3cret", key)

    assert "s3cret" not in str(stored)
    assert secrets.reveal("api_token", stored, key) == "s3cret"


def test_reveal_without_key_names_the_missing_key() -> None:
    stored = secrets.seal("api_token", "s3cret", secrets.new_key())

    with pytest.raises(ConnectorConfigError) as raised:
        secrets.reveal("api_token", stored, None)

    message = str(raised.value)
    assert "decrypting it needs the SCIM_RECONCILER_SECRET_KEY" in message
    assert "storing" not in message


def test_reveal_with_another_key_says_the_key_changed() -> None:
    stored = secrets.seal("api_token", "s3cret", secrets.new_key())

    with pytest.raises(ConnectorConfigError, match="the key changed"):
        secrets.reveal("api_token", stored, secrets.new_key())


def test_seal_without_key_names_the_fix() -> None:
    with pytest.raises(InvalidInputError, match="connector new-key"):
        secrets.seal("api_token", "s3cret", None)
