"""``scim-reconciler config check``: errors name the setting and the fix, and
the effective configuration is printed with secrets masked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scim_reconciler.cli.main import app
from scim_reconciler.reconcile import secrets

PASSWORD = "db-pass-4711"


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Start from no SCIM_RECONCILER_* variable and an empty secrets directory."""
    for name in list(os.environ):
        if name.startswith("SCIM_RECONCILER_"):
            monkeypatch.delenv(name)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    monkeypatch.setenv("SCIM_RECONCILER_SECRETS_DIR", str(secrets_dir))
    monkeypatch.chdir(tmp_path)
    return secrets_dir


def check(*options: str) -> tuple[int, str, str]:
    # A wide terminal keeps rich from wrapping an error across lines.
    result = CliRunner().invoke(
        app, ["config", "check", *options], env={"COLUMNS": "250"}
    )
    return result.exit_code, result.stdout, result.stderr


def check_json(*options: str) -> tuple[int, dict[str, Any]]:
    code, stdout, _stderr = check("--json", *options)
    report: dict[str, Any] = json.loads(stdout)
    return code, report


def test_valid_settings_print_masked_with_sources(
    environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = secrets.new_key()
    (environment / "scim_reconciler_secret_key").write_text(key + "\n")
    monkeypatch.setenv(
        "SCIM_RECONCILER_DATABASE_URL",
        f"postgresql://scim:{PASSWORD}@127.0.0.1:5432/scim",
    )
    config = tmp_path / "settings.toml"
    config.write_text('public_base_url = "https://scim.example.com"\n')
    monkeypatch.setenv("SCIM_RECONCILER_CONFIG_FILE", str(config))

    code, report = check_json()
    _code, table, _stderr = check()

    assert code == 0
    assert report["valid"] is True
    assert report["errors"] == []
    assert report["settings"]["secret_key"] == "****"
    assert PASSWORD not in json.dumps(report)
    assert key not in json.dumps(report)
    assert report["sources"]["secret_key"].startswith("secret file ")
    assert report["sources"]["database_url"] == (
        "environment (SCIM_RECONCILER_DATABASE_URL)"
    )
    assert report["sources"]["public_base_url"].startswith("configuration file ")
    assert report["sources"]["port"] == "default"
    assert PASSWORD not in table
    assert key not in table


def test_invalid_values_name_setting_and_fix(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_RECONCILER_PORT", "eighty")
    monkeypatch.setenv("SCIM_RECONCILER_LOG_LEVEL", "loud")

    code, _stdout, stderr = check()

    assert code == 1
    # Rich may wrap a long message, so the errors are compared unwrapped.
    errors = " ".join(stderr.split()).split("error: ")[1:]
    assert len(errors) == 2, stderr
    port = next(error for error in errors if "SCIM_RECONCILER_PORT" in error)
    assert "expected: TCP port" in port
    level = next(error for error in errors if "SCIM_RECONCILER_LOG_LEVEL" in error)
    assert "use one of DEBUG, INFO" in level


def test_unknown_variable_and_secret_file_are_named(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_RECONCILER_DATABSE_URL", "sqlite:///x.db")
    (environment / "scim_reconciler_secret_kee").write_text("x")
    (environment / "unrelated_secret").write_text("x")

    code, report = check_json()

    assert code == 1
    assert report["valid"] is False
    errors = "\n".join(report["errors"])
    assert "SCIM_RECONCILER_DATABSE_URL" in errors
    assert "scim_reconciler_secret_kee" in errors
    assert "unrelated_secret" not in errors


def test_bad_secret_key_names_new_key_command(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_RECONCILER_SECRET_KEY", "not-a-fernet-key")

    code, report = check_json()

    assert code == 1
    assert len(report["errors"]) == 1
    assert "secret_key" in report["errors"][0]
    assert "connector new-key" in report["errors"][0]
    assert "not-a-fernet-key" not in json.dumps(report)


def test_missing_secrets_directory_is_an_error(
    environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_RECONCILER_SECRETS_DIR", str(tmp_path / "absent"))

    code, report = check_json()

    assert code == 1
    assert "SCIM_RECONCILER_SECRETS_DIR" in report["errors"][0]


def test_database_option_reports_pending_migrations(
    environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SCIM_RECONCILER_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}"
    )

    code, report = check_json("--database")

    assert code == 1
    assert "scim-reconciler migrate" in report["errors"][0]


def test_plain_http_public_url_is_a_warning(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_RECONCILER_PUBLIC_BASE_URL", "http://scim.example.com")

    code, report = check_json()

    assert code == 0
    assert any("https" in warning for warning in report["warnings"])


def test_relative_sqlite_path_is_a_warning(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_RECONCILER_DATABASE_URL", "sqlite:///data/store.db")

    code, report = check_json()

    assert code == 0
    assert any("absolute path" in warning for warning in report["warnings"])
