"""Connector settings of an organization: set, show (secrets masked) and check.

The command line and the admin API both call these, so a connector set either
way is validated, sealed and audited the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    ConnectorConfig,
    Organization,
    RoleMapping,
    Source,
)
from scim_reconciler.errors import InvalidInputError, NotFoundError
from scim_reconciler.reconcile.connectors.registry import (
    KINDS,
    RUN_KEYS,
    RunSettings,
    build_connector,
    masked,
    parse_config,
)
from scim_reconciler.services import audit

# Kinds that read a file on the service's host. Only an operator may set them,
# because the path is read with the service's own permissions.
HOST_FILE_KINDS = frozenset({"file"})
# Keys of the IdP kinds that contain an address the service sends requests to.
URL_KEYS = ("base_url", "login_url")


@dataclass(frozen=True)
class ConnectorView:
    """A stored connector as shown to an administrator: secrets masked."""

    org: str
    kind: str
    config: dict[str, Any]
    enabled: bool
    interval_seconds: int
    jitter_seconds: int
    max_deactivations: int
    max_deactivation_percent: float
    last_check_at: datetime | None
    last_check_problems: list[str] | None
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "kind": self.kind,
            "config": self.config,
            "enabled": self.enabled,
            "interval_seconds": self.interval_seconds,
            "jitter_seconds": self.jitter_seconds,
            "max_deactivations": self.max_deactivations,
            "max_deactivation_percent": self.max_deactivation_percent,
            "last_check_at": self.last_check_at,
            "last_check_problems": self.last_check_problems,
        }


def view(organization: Organization, row: ConnectorConfig) -> ConnectorView:
    return ConnectorView(
        org=organization.slug,
        kind=row.kind,
        config=masked(row.kind, row.config),
        enabled=row.enabled,
        interval_seconds=row.interval_seconds,
        jitter_seconds=row.jitter_seconds,
        max_deactivations=row.max_deactivations,
        max_deactivation_percent=row.max_deactivation_percent,
        last_check_at=row.last_check_at,
        last_check_problems=row.last_check_problems,
        updated_at=row.updated_at,
    )


def check_inline_secrets(raw: dict[str, Any]) -> None:
    """Reject what only an operator may configure: host files, secret references
    and plain http:// addresses.

    A secret given as ``{"env": NAME}`` or ``{"file": PATH}`` is read from the
    service's own environment or files, and the connector sends it to the IdP
    address of the same configuration. An ``{"encrypted": ...}`` value could be
    copied from elsewhere. So an organization admin gives each secret as its
    plain value, which is stored encrypted.

    The service sends the IdP requests from its own network, so an http://
    address could reach a service there, such as a cloud metadata endpoint.
    Only operators give one, for the IdP simulator.
    """
    kind = raw.get("kind")
    if kind in HOST_FILE_KINDS:
        raise InvalidInputError(
            f"connector kind {kind!r} reads a file on the service's host, so only "
            "an operator can set it: choose okta, entra or onelogin"
        )
    # NOTE: an https:// address on the service's own network still passes;
    # only the deployment's egress rules keep the service from reaching it.
    for key in URL_KEYS:
        url = raw.get(key)
        if isinstance(url, str) and not url.lower().startswith("https://"):
            raise InvalidInputError(
                f"{key} {url!r} is not valid: give an https:// address, because "
                "only an operator can set an http:// one (for the IdP simulator)"
            )
    secret_fields = KINDS[kind].secret_fields if kind in KINDS else ()
    for name in secret_fields:
        if isinstance(raw.get(name), dict):
            raise InvalidInputError(
                f"secret {name!r} must be given as its value: references to the "
                "service's environment or files, and encrypted values, are for "
                "operators only"
            )


async def get_connector(
    session: AsyncSession, organization: Organization
) -> ConnectorConfig:
    row = await session.get(ConnectorConfig, organization.id)
    if row is None:
        raise NotFoundError(
            f"organization {organization.slug!r} has no connector: set one with "
            f"`scim-reconciler connector set {organization.slug} --kind file "
            "--path FILE` or PUT /admin/v1/organizations/"
            f"{organization.slug}/connector"
        )
    return row


async def set_connector(
    session: AsyncSession,
    organization: Organization,
    raw: dict[str, Any],
    secret_key: str | None,
    *,
    actor: str,
) -> ConnectorConfig:
    """Validate a whole connector configuration, seal its secrets and store it.

    ``raw`` is the flat mapping that docs/configuration.md and the connectors'
    READMEs describe; it replaces the stored configuration entirely.
    """
    if "kind" not in raw:
        raise InvalidInputError(
            "the connector kind is missing: give kind, one of "
            + ", ".join(sorted(KINDS))
        )
    parsed = parse_config(raw, secret_key)
    row = await session.get(ConnectorConfig, organization.id)
    if row is None:
        row = ConnectorConfig(org_id=organization.id)
        session.add(row)
    row.kind = parsed.kind
    row.config = parsed.config
    _store_run_settings(row, parsed.run)
    row.last_check_at = None
    row.last_check_problems = None
    row.updated_at = utcnow()
    audit.record(
        session,
        org_id=organization.id,
        source=Source.admin,
        action="connector_set",
        resource_type="Connector",
        resource_id=organization.slug,
        actor=actor,
        details={
            "kind": parsed.kind,
            "config": masked(parsed.kind, parsed.config),
            **parsed.run.model_dump(),
        },
    )
    return row


async def update_run_settings(
    session: AsyncSession,
    organization: Organization,
    changes: dict[str, Any],
    *,
    actor: str,
) -> ConnectorConfig:
    """Change some run settings (schedule and limits), keeping the rest.

    The IdP settings and secrets stay as stored, so they need not be given again.
    """
    if not changes:
        raise InvalidInputError(
            f"no run setting given: give at least one of {', '.join(RUN_KEYS)}"
        )
    unknown = sorted(set(changes) - set(RUN_KEYS))
    if unknown:
        raise InvalidInputError(
            f"{', '.join(repr(key) for key in unknown)} cannot be changed here: "
            f"give only {', '.join(RUN_KEYS)}, or set the whole connector"
        )
    row = await get_connector(session, organization)
    current = {key: getattr(row, key) for key in RUN_KEYS}
    # Stored secrets are sealed already, and parse_config keeps sealed values
    # as they are, so validating the whole configuration again needs no key.
    merged = parse_config({"kind": row.kind, **row.config, **current, **changes}, None)
    _store_run_settings(row, merged.run)
    row.updated_at = utcnow()
    audit.record(
        session,
        org_id=organization.id,
        source=Source.admin,
        action="connector_updated",
        resource_type="Connector",
        resource_id=organization.slug,
        actor=actor,
        details=dict(changes),
    )
    return row


def _store_run_settings(row: ConnectorConfig, run: RunSettings) -> None:
    row.enabled = run.enabled
    row.interval_seconds = run.interval_seconds
    row.jitter_seconds = run.jitter_seconds
    row.max_deactivations = run.max_deactivations
    row.max_deactivation_percent = run.max_deactivation_percent


@dataclass(frozen=True)
class CheckResult:
    checked_at: datetime
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


async def check_connector(
    database: Database, organization: Organization, secret_key: str | None
) -> CheckResult:
    """Check the credential, the permissions and that every mapped group resolves.

    Problems are returned, not raised, and recorded on the connector with the
    time of the check. The IdP is read outside any database transaction.
    """
    async with database.read() as session:
        row = await get_connector(session, organization)
        references = sorted(
            set(
                (
                    await session.scalars(
                        select(RoleMapping.group).where(
                            RoleMapping.org_id == organization.id
                        )
                    )
                ).all()
            )
        )
    problems = await _problems(row, references, secret_key)
    if not references:
        problems.append(
            "no group is mapped to a role: add one with "
            f"`scim-reconciler mapping add {organization.slug}`"
        )
    checked_at = utcnow()
    async with database.write() as session:
        stored = await session.get(ConnectorConfig, organization.id)
        if stored is not None:
            stored.last_check_at = checked_at
            stored.last_check_problems = problems
    return CheckResult(checked_at, problems)


async def _problems(
    row: ConnectorConfig, references: list[str], secret_key: str | None
) -> list[str]:
    try:
        connector = build_connector(row.kind, row.config, secret_key)
    except Exception as exc:  # every configuration problem is reported, not raised
        return [str(exc)]
    problems: list[str] = []
    try:
        problems.extend(await connector.check())
        for reference in references:
            try:
                await connector.resolve_group(reference)
            except Exception as exc:
                problems.append(f"mapped group {reference!r}: {exc}")
    finally:
        await connector.close()
    return problems
