"""Connector settings over the admin API: show masked, set, change, check."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy import select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AuditEvent, ConnectorConfig
from tests.admin.api.conftest import OrgAdmin, assert_problem
from tests.support.runs import write_directory

OKTA_TOKEN = "00aSecretOktaApiToken-do-not-show"
OKTA = {
    "kind": "okta",
    "base_url": "https://acme.okta.com",
    "api_token": OKTA_TOKEN,
    "interval_seconds": 1800,
}


async def test_show_before_set_is_404(acme_admin: httpx.AsyncClient) -> None:
    response = await acme_admin.get("/organizations/acme/connector")

    assert_problem(response, 404, "'acme' has no connector", "PUT")


async def test_set_okta_masks_sealed_secret(
    acme_admin: httpx.AsyncClient, database: Database, acme: OrgAdmin
) -> None:
    stored = await acme_admin.put("/organizations/acme/connector", json=OKTA)
    shown = await acme_admin.get("/organizations/acme/connector")

    assert stored.status_code == 200, stored.text
    assert shown.status_code == 200
    body = shown.json()
    assert body["kind"] == "okta"
    assert body["config"]["base_url"] == "https://acme.okta.com"
    assert body["config"]["api_token"] == "encrypted:****"
    assert body["interval_seconds"] == 1800
    assert body["max_deactivations"] == 25
    assert OKTA_TOKEN not in stored.text
    assert OKTA_TOKEN not in shown.text
    async with database.read() as session:
        row = await session.get(ConnectorConfig, acme.tenant.org.id)
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "connector_set")
        )
    assert row is not None
    assert OKTA_TOKEN not in json.dumps(row.config)
    assert event is not None
    assert event.actor == "admin:acme admin"
    assert OKTA_TOKEN not in json.dumps(event.details)


async def test_org_admin_cannot_use_host_files_or_references(
    acme_admin: httpx.AsyncClient, tmp_path: Path, database: Database
) -> None:
    """A reference would read the service's own environment or files."""
    directory = write_directory(tmp_path / "directory.json", [1])
    file_kind = await acme_admin.put(
        "/organizations/acme/connector", json={"kind": "file", "path": str(directory)}
    )
    env_reference = await acme_admin.put(
        "/organizations/acme/connector",
        json={**OKTA, "api_token": {"env": "SCIM_RECONCILER_SECRET_KEY"}},
    )

    assert_problem(file_kind, 422, "'file'", "operator")
    assert_problem(env_reference, 422, "'api_token'", "operators only")
    async with database.read() as session:
        assert (await session.scalars(select(ConnectorConfig))).all() == []


async def test_org_admin_cannot_use_plain_http(
    acme_admin: httpx.AsyncClient, operator: httpx.AsyncClient, database: Database
) -> None:
    """The service, not the admin, sends the requests: a plain http:// address
    could reach a service on its own network, such as a cloud metadata
    endpoint, so only an operator may give one (for the IdP simulator)."""
    okta = {**OKTA, "base_url": "http://169.254.169.254"}
    entra = {
        "kind": "entra",
        "tenant_id": "t",
        "client_id": "c",
        "client_secret": "s",
        "login_url": "http://127.0.0.1:9",
    }

    okta_response = await acme_admin.put("/organizations/acme/connector", json=okta)
    entra_response = await acme_admin.put("/organizations/acme/connector", json=entra)

    assert_problem(okta_response, 422, "base_url", "https://", "operator")
    assert_problem(entra_response, 422, "login_url", "https://", "operator")
    async with database.read() as session:
        assert (await session.scalars(select(ConnectorConfig))).all() == []
    simulator = {**OKTA, "base_url": "http://127.0.0.1:9"}
    by_operator = await operator.put("/organizations/acme/connector", json=simulator)
    assert by_operator.status_code == 200, by_operator.text


async def test_operator_sets_file_connector(
    operator: httpx.AsyncClient, acme: OrgAdmin, tmp_path: Path
) -> None:
    directory = write_directory(tmp_path / "directory.json", [1])

    response = await operator.put(
        "/organizations/acme/connector",
        json={"kind": "file", "path": str(directory), "enabled": False},
    )

    assert response.status_code == 200, response.text
    assert response.json()["config"]["path"] == str(directory)
    assert response.json()["enabled"] is False


async def test_set_rejects_invalid_configuration(
    acme_admin: httpx.AsyncClient, database: Database
) -> None:
    unknown_kind = await acme_admin.put(
        "/organizations/acme/connector", json={"kind": "ldap"}
    )
    missing_url = await acme_admin.put(
        "/organizations/acme/connector", json={"kind": "okta", "api_token": "x"}
    )
    unknown_key = await acme_admin.put(
        "/organizations/acme/connector", json={**OKTA, "colour": "red"}
    )
    bad_interval = await acme_admin.put(
        "/organizations/acme/connector", json={**OKTA, "interval_seconds": 0}
    )
    not_an_object = await acme_admin.put(
        "/organizations/acme/connector", json=[OKTA_TOKEN]
    )

    assert_problem(unknown_kind, 422, "'ldap'", "okta")
    assert_problem(missing_url, 422, "'base_url'")
    assert_problem(unknown_key, 422, "'colour'")
    assert_problem(bad_interval, 422, "interval_seconds")
    body = assert_problem(not_an_object, 422, "body")
    assert OKTA_TOKEN not in json.dumps(body)
    async with database.read() as session:
        assert (await session.scalars(select(ConnectorConfig))).all() == []


async def test_patch_changes_run_settings_only(
    acme_admin: httpx.AsyncClient, database: Database, acme: OrgAdmin
) -> None:
    await acme_admin.put("/organizations/acme/connector", json=OKTA)
    async with database.read() as session:
        before = await session.get(ConnectorConfig, acme.tenant.org.id)
    assert before is not None

    response = await acme_admin.patch(
        "/organizations/acme/connector",
        json={"enabled": False, "max_deactivations": 5},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["enabled"] is False
    assert body["max_deactivations"] == 5
    assert body["interval_seconds"] == 1800
    async with database.read() as session:
        after = await session.get(ConnectorConfig, acme.tenant.org.id)
    assert after is not None
    assert after.config == before.config


async def test_patch_rejects_bad_values(
    acme_admin: httpx.AsyncClient, database: Database, acme: OrgAdmin
) -> None:
    before_set = await acme_admin.patch(
        "/organizations/acme/connector", json={"enabled": False}
    )
    await acme_admin.put("/organizations/acme/connector", json=OKTA)
    out_of_range = await acme_admin.patch(
        "/organizations/acme/connector", json={"max_deactivation_percent": 150}
    )
    idp_key = await acme_admin.patch(
        "/organizations/acme/connector", json={"base_url": "https://evil.example"}
    )
    nothing = await acme_admin.patch("/organizations/acme/connector", json={})

    assert_problem(before_set, 404, "has no connector")
    assert_problem(out_of_range, 422, "max_deactivation_percent")
    assert_problem(idp_key, 422, "body.base_url")
    assert_problem(nothing, 422, "no run setting given")
    async with database.read() as session:
        row = await session.get(ConnectorConfig, acme.tenant.org.id)
    assert row is not None
    assert row.max_deactivation_percent == 10.0


async def test_check_reports_problems_and_records_them(
    operator: httpx.AsyncClient, acme: OrgAdmin, tmp_path: Path, database: Database
) -> None:
    await operator.put(
        "/organizations/acme/connector",
        json={"kind": "file", "path": str(tmp_path / "missing.json")},
    )

    response = await operator.post("/organizations/acme/connector/check")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is False
    assert any("missing.json" in problem for problem in body["problems"])
    assert any("no group is mapped" in problem for problem in body["problems"])
    shown = await operator.get("/organizations/acme/connector")
    assert shown.json()["last_check_problems"] == body["problems"]
    assert shown.json()["last_check_at"] is not None


async def test_check_passes_for_working_connector(
    operator: httpx.AsyncClient, acme: OrgAdmin, tmp_path: Path
) -> None:
    directory = write_directory(tmp_path / "directory.json", [1], [2])
    await operator.put(
        "/organizations/acme/connector", json={"kind": "file", "path": str(directory)}
    )
    await operator.post(
        "/organizations/acme/mappings",
        json={"group": "Dashboard Admins", "role": "global_admin"},
    )

    response = await operator.post("/organizations/acme/connector/check")

    assert response.json() == {
        "ok": True,
        "problems": [],
        "checked_at": response.json()["checked_at"],
    }
