"""An organization's connector: how its IdP is read, the schedule and the limits."""

from __future__ import annotations

from fastapi import APIRouter

from scim_reconciler.db.models import ConnectorConfig
from scim_reconciler.reconcile.connectors.registry import masked
from scim_reconciler.services import connectors

from .dependencies import DatabaseDep, OrganizationDep, PrincipalDep, SettingsDep
from .organizations import ORG_PATH
from .problems import problem_responses
from .schemas import CheckOut, ConnectorIn, ConnectorOut, RunSettingsUpdate

router = APIRouter()

CONNECTOR_PATH = ORG_PATH + "/connector"


def connector_out(row: ConnectorConfig) -> ConnectorOut:
    shown = masked(row.kind, row.config)
    return ConnectorOut(
        kind=row.kind,
        config=shown,
        enabled=row.enabled,
        interval_seconds=row.interval_seconds,
        jitter_seconds=row.jitter_seconds,
        max_deactivations=row.max_deactivations,
        max_deactivation_percent=row.max_deactivation_percent,
        last_check_at=row.last_check_at,
        last_check_problems=row.last_check_problems,
        updated_at=row.updated_at,
    )


def _secret_key(settings: SettingsDep) -> str | None:
    return settings.secret_key.get_secret_value() if settings.secret_key else None


@router.get(
    CONNECTOR_PATH,
    summary="Show the connector, every secret masked",
    response_model=ConnectorOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def show_connector(
    organization: OrganizationDep, database: DatabaseDep
) -> ConnectorOut:
    async with database.read() as session:
        row = await connectors.get_connector(session, organization)
    return connector_out(row)


@router.put(
    CONNECTOR_PATH,
    summary="Set the whole connector configuration",
    response_model=ConnectorOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def set_connector(
    body: ConnectorIn,
    organization: OrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> ConnectorOut:
    raw = body.model_dump()
    if not principal.is_operator:
        connectors.check_inline_secrets(raw)
    async with database.write() as session:
        row = await connectors.set_connector(
            session, organization, raw, _secret_key(settings), actor=principal.name
        )
    return connector_out(row)


@router.patch(
    CONNECTOR_PATH,
    summary="Change the schedule or the safety limits, keeping the rest",
    response_model=ConnectorOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def update_connector(
    body: RunSettingsUpdate,
    organization: OrganizationDep,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> ConnectorOut:
    async with database.write() as session:
        row = await connectors.update_run_settings(
            session,
            organization,
            body.model_dump(exclude_unset=True),
            actor=principal.name,
        )
    return connector_out(row)


@router.post(
    CONNECTOR_PATH + "/check",
    summary="Check the credential, the permissions and every mapped group",
    response_model=CheckOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def check_connector(
    organization: OrganizationDep, database: DatabaseDep, settings: SettingsDep
) -> CheckOut:
    result = await connectors.check_connector(
        database, organization, _secret_key(settings)
    )
    return CheckOut(
        ok=result.ok, problems=result.problems, checked_at=result.checked_at
    )
