"""Admin access: operator keys, organization admin credentials, console
sessions and sign-in throttling, against a real database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from scim_reconciler.admin import credentials, sessions
from scim_reconciler.admin.principal import (
    authenticate_secret,
    new_operator_key,
    record_use,
)
from scim_reconciler.admin.throttle import SignInThrottle
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AdminCredential, AdminSession, AuditEvent
from scim_reconciler.settings import Settings, SettingsError, load_settings
from tests.conftest import make_settings, make_tenant
from tests.support.cli import run_cli


async def test_operator_key_signs_in_as_operator(database_url: str) -> None:
    key, key_hash = new_operator_key()
    settings = make_settings(database_url, operator_key_hashes=[key_hash])
    database_settings = make_settings(database_url)

    from scim_reconciler.db.migrate import prepare_database

    database = await prepare_database(database_settings, run_migrations=True)
    try:
        async with database.read() as session:
            principal = await authenticate_secret(session, settings, key)
            stranger = await authenticate_secret(session, settings, key + "x")
    finally:
        await database.dispose()

    assert principal is not None
    assert principal.is_operator
    assert principal.sees(12345)
    assert principal.name == "operator:" + key_hash.removeprefix("sha256:")[:8]
    assert stranger is None


async def test_credential_scoped_to_one_organization(
    database: Database, settings: Settings
) -> None:
    acme = await make_tenant(database, "acme")
    other = await make_tenant(database, "other")
    async with database.write() as session:
        new = await credentials.create_credential(
            session, acme.org, name="Ada Lovelace"
        )

    async with database.read() as session:
        stored = await session.scalar(select(AdminCredential))
        principal = await authenticate_secret(session, settings, new.secret)
        events = (await session.scalars(select(AuditEvent.action))).all()

    assert stored is not None
    assert new.secret not in stored.secret_hash
    assert stored.secret_hash != new.secret
    assert principal is not None
    assert principal.kind == "org_admin"
    assert principal.name == "admin:Ada Lovelace"
    assert principal.org_slug == "acme"
    assert principal.sees(acme.org.id)
    assert not principal.sees(other.org.id)
    assert "admin_credential_created" in events


async def test_record_use_once_a_minute(database: Database, settings: Settings) -> None:
    acme = await make_tenant(database, "acme")
    async with database.write() as session:
        new = await credentials.create_credential(session, acme.org, name="Ada")
    async with database.write() as session:
        principal = await authenticate_secret(session, settings, new.secret)
        assert principal is not None
        await record_use(session, principal)
    async with database.read() as session:
        first = await session.scalar(select(AdminCredential.last_used_at))
    async with database.write() as session:
        await record_use(session, principal)
    async with database.read() as session:
        second = await session.scalar(select(AdminCredential.last_used_at))

    assert first is not None
    assert second == first


async def test_credential_name_is_checked(database: Database) -> None:
    acme = await make_tenant(database, "acme")
    async with database.write() as session:
        with pytest.raises(Exception, match="credential name '' is not valid"):
            await credentials.create_credential(session, acme.org, name="  ")


async def test_revoking_a_credential_ends_its_sessions(
    database: Database, settings: Settings
) -> None:
    acme = await make_tenant(database, "acme")
    async with database.write() as session:
        new = await credentials.create_credential(session, acme.org, name="Ada")
        principal = await authenticate_secret(session, settings, new.secret)
        assert principal is not None
        started = await sessions.start_session(
            session, principal, lifetime=timedelta(hours=1)
        )
    async with database.read() as session:
        loaded = await sessions.load_session(session, settings, started.cookie_value)
    assert loaded is not None
    assert loaded.principal == principal
    assert loaded.csrf_token == started.csrf_token

    async with database.write() as session:
        await credentials.revoke_credential(
            session, acme.org, new.credential.id, actor="operator:test"
        )
    async with database.read() as session:
        after = await sessions.load_session(session, settings, started.cookie_value)
        again = await authenticate_secret(session, settings, new.secret)
        left = await session.scalar(select(func.count()).select_from(AdminSession))

    assert after is None
    assert again is None
    assert left == 0


async def test_revoking_an_unknown_credential_names_it(database: Database) -> None:
    acme = await make_tenant(database, "acme")
    async with database.write() as session:
        with pytest.raises(Exception, match="'nope' not found in organization 'acme'"):
            await credentials.revoke_credential(session, acme.org, "nope")


async def test_session_expires_and_ends_on_sign_out(
    database: Database, settings: Settings
) -> None:
    key, key_hash = new_operator_key()
    operator_settings = settings.model_copy(update={"operator_key_hashes": [key_hash]})
    async with database.write() as session:
        principal = await authenticate_secret(session, operator_settings, key)
        assert principal is not None
        expired = await sessions.start_session(
            session, principal, lifetime=timedelta(seconds=-1)
        )
        current = await sessions.start_session(
            session, principal, lifetime=timedelta(hours=1)
        )
    async with database.read() as session:
        assert (
            await sessions.load_session(
                session, operator_settings, expired.cookie_value
            )
            is None
        )
        assert (
            await sessions.load_session(
                session, operator_settings, current.cookie_value
            )
            is not None
        )
        # The key's hash left the settings: its sessions end.
        assert (
            await sessions.load_session(session, settings, current.cookie_value) is None
        )
        stored = (await session.scalars(select(AdminSession.id_hash))).all()
    assert current.cookie_value not in stored

    async with database.write() as session:
        await sessions.end_session(session, current.cookie_value)
    async with database.read() as session:
        assert (
            await sessions.load_session(
                session, operator_settings, current.cookie_value
            )
            is None
        )


def test_throttle_blocks_until_window_passes() -> None:
    now = [1000.0]
    throttle = SignInThrottle(3, 60, clock=lambda: now[0])

    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
        now[0] += 1

    wait = throttle.retry_after("10.0.0.1")
    assert wait == pytest.approx(57.0)
    assert throttle.retry_after("10.0.0.2") is None
    now[0] += 57.5
    assert throttle.retry_after("10.0.0.1") is None


def test_throttle_forgets_failures_after_success() -> None:
    throttle = SignInThrottle(2, 60, clock=lambda: 0.0)
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")

    assert throttle.retry_after("a") is None


def test_operator_key_hashes_accept_a_list_or_commas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = new_operator_key()[1], new_operator_key()[1]
    monkeypatch.setenv("SCIM_RECONCILER_OPERATOR_KEY_HASHES", f"{first}, {second}")
    assert load_settings().operator_key_hashes == [first, second]

    monkeypatch.setenv("SCIM_RECONCILER_OPERATOR_KEY_HASHES", json.dumps([first]))
    assert load_settings().operator_key_hashes == [first]


def test_key_hashes_reject_plain_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, _hash = new_operator_key()
    monkeypatch.setenv("SCIM_RECONCILER_OPERATOR_KEY_HASHES", key)

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert "operator key hash" in str(raised.value)
    assert key not in str(raised.value)


def test_admin_key_commands(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    created = run_cli(
        database_url, tmp_path, "org", "create", "acme", "--name", "A", "--plan", "free"
    )
    assert created.returncode == 0, created.stderr

    created_key = run_cli(
        database_url, tmp_path, "admin-key", "create", "acme", "--name", "Ada", "--json"
    )
    assert created_key.returncode == 0, created_key.stderr
    credential = json.loads(created_key.stdout)
    assert credential["secret"].startswith("scimr_admin_")

    listed = run_cli(database_url, tmp_path, "admin-key", "list", "acme", "--json")
    listed_credentials = json.loads(listed.stdout)
    assert [(c["id"], c["status"]) for c in listed_credentials] == [
        (credential["id"], "active")
    ]
    assert credential["secret"] not in listed.stdout

    revoked = run_cli(
        database_url, tmp_path, "admin-key", "revoke", "acme", credential["id"]
    )
    assert revoked.returncode == 0, revoked.stderr
    listed = run_cli(database_url, tmp_path, "admin-key", "list", "acme", "--json")
    assert json.loads(listed.stdout)[0]["status"] == "revoked"

    missing = run_cli(database_url, tmp_path, "admin-key", "list", "nope")
    assert missing.returncode == 1
    assert "organization 'nope' not found" in missing.stderr


def test_operator_key_new_prints_hash(tmp_path: Path) -> None:
    generated = run_cli(
        f"sqlite+aiosqlite:///{tmp_path}/x.db",
        tmp_path,
        "operator-key",
        "new",
        "--json",
    )
    assert generated.returncode == 0, generated.stderr
    printed = json.loads(generated.stdout)

    from scim_reconciler.admin.principal import operator_key_hash

    assert printed["hash"] == operator_key_hash(printed["key"])
    settings = Settings(operator_key_hashes=[printed["hash"]])
    assert settings.operator_key_hashes == [printed["hash"]]


def test_ids_stay_whole_in_narrow_tables(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    run_cli(
        database_url,
        tmp_path,
        "org",
        "create",
        "acme",
        "--name",
        "A",
        "--plan",
        "enterprise",
    )
    created_token = run_cli(
        database_url,
        tmp_path,
        "token",
        "create",
        "acme",
        "--name",
        "Okta",
        "--expires-in-days",
        "30",
        "--json",
    )
    token_id = json.loads(created_token.stdout)["id"]

    listed = run_cli(
        database_url, tmp_path, "token", "list", "acme", extra_env={"COLUMNS": "80"}
    )

    assert listed.returncode == 0, listed.stderr
    assert token_id in listed.stdout
