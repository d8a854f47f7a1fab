"""Settings: environment, TOML file, and errors that name the bad key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from scim_reconciler.settings import Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]


def test_example_config_is_valid() -> None:
    values = tomllib.loads((REPO / "config" / "example.toml").read_text())

    settings = Settings(**values)

    assert settings.public_base_url == "https://scim.example.com"


def test_every_setting_is_documented() -> None:
    documented = (REPO / "docs" / "configuration.md").read_text()

    missing = [name for name in Settings.model_fields if f"`{name}`" not in documented]

    assert missing == []


def test_unknown_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_RECONCILER_DATABSE_URL", "sqlite:///x.db")

    with pytest.raises(SettingsError, match="SCIM_RECONCILER_DATABSE_URL"):
        load_settings()


def test_toml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('public_base_url = "https://from-file.example"\nport = 9000\n')
    monkeypatch.setenv("SCIM_RECONCILER_PORT", "9100")

    settings = load_settings(config)

    assert settings.public_base_url == "https://from-file.example"
    assert settings.port == 9100


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_invalid_value_names_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_RECONCILER_PORT", "eighty")

    with pytest.raises(SettingsError, match="SCIM_RECONCILER_PORT"):
        load_settings()


def test_libpq_postgres_url_gets_async_driver() -> None:
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:5432/test")

    assert settings.database_url == "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def test_unsupported_database_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="mysql"):
        Settings(database_url="mysql://root@localhost/x")


def test_role_catalog_must_keep_global_admin() -> None:
    with pytest.raises(ValueError, match="global_admin"):
        Settings(roles=[{"slug": "viewer", "name": "Viewer"}])  # type: ignore[list-item]


def test_secret_file_supplies_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scim_reconciler_secret_key").write_text("from-file\n")
    monkeypatch.setenv("SCIM_RECONCILER_SECRETS_DIR", str(tmp_path))

    settings = load_settings()

    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "from-file"


def test_environment_wins_over_secret_file_over_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "scim_reconciler_port").write_text("9200")
    (secrets_dir / "scim_reconciler_max_results").write_text("50")
    config = tmp_path / "settings.toml"
    config.write_text("port = 9000\nmax_results = 10\nmax_body_bytes = 4096\n")
    monkeypatch.setenv("SCIM_RECONCILER_SECRETS_DIR", str(secrets_dir))
    monkeypatch.setenv("SCIM_RECONCILER_PORT", "9100")

    settings = load_settings(config)

    assert settings.port == 9100
    assert settings.max_results == 50
    assert settings.max_body_bytes == 4096


def test_log_level_is_checked_and_normalized() -> None:
    assert Settings(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValueError, match="use one of DEBUG"):
        Settings(log_level="loud")


def test_forwarded_allow_ips_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_RECONCILER_FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.0.2.1")
    assert load_settings().forwarded_allow_ips == ["10.0.0.0/8", "192.0.2.1"]

    monkeypatch.setenv("SCIM_RECONCILER_FORWARDED_ALLOW_IPS", "proxy.internal")
    with pytest.raises(SettingsError, match=r"'proxy\.internal' is not an IP address"):
        load_settings()
