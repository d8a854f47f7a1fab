"""A seeded demo for the console's browser tests and screenshots.

The organization "northwind" reads its IdP from a directory file (the demo's
people and groups), maps three groups to roles and has run one reconciliation.
``with_history`` adds older runs and a held deactivation, so that every page
of the console has something to show.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from scim_reconciler.admin import credentials
from scim_reconciler.admin.principal import new_operator_key
from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.migrate import prepare_database, sync_role_catalog
from scim_reconciler.db.models import (
    Plan,
    Run,
    RunMode,
    RunStatus,
    RunTrigger,
)
from scim_reconciler.demo import MAPPINGS, write_directory
from scim_reconciler.reconcile.runs import Reconciler, RunRequest, counts_of
from scim_reconciler.services import connectors, mappings, organizations, tokens
from scim_reconciler.settings import Settings

ORG = "northwind"
# The IdP user that leaves every mapped group when ``remove_member`` runs.
LEAVER_ID = "00u6"
LEAVER_USER_NAME = "barbara.liskov@example.com"
# (days ago, drift) of the older scheduled runs that ``with_history`` adds.
PAST_DRIFT = ((26, 2), (21, 1), (17, 4), (12, 1), (8, 3), (5, 6), (3, 1), (1, 2))


@dataclass(frozen=True)
class DemoSeed:
    database_url: str
    directory: Path
    org: str
    # Kept out of repr, so a failing test's traceback does not print them.
    operator_key: str = field(repr=False)
    operator_key_hash: str = field(repr=False)
    admin_secret: str = field(repr=False)
    scim_token: str = field(repr=False)

    def serve_env(self) -> dict[str, str]:
        """Settings for a ``serve`` of the demo: its operator key, no scheduler."""
        return {
            "SCIM_RECONCILER_OPERATOR_KEY_HASHES": self.operator_key_hash,
            "SCIM_RECONCILER_SCHEDULER_ENABLED": "false",
        }


def remove_member(directory: Path, idp_user_id: str = LEAVER_ID) -> None:
    """Take an IdP user out of every group of the directory file."""
    document = json.loads(directory.read_text())
    for group in document["groups"]:
        group["members"] = [
            member for member in group["members"] if member != idp_user_id
        ]
    directory.write_text(json.dumps(document, indent=2) + "\n")


async def seed_demo(
    database_url: str, work_dir: Path, *, with_history: bool = False
) -> DemoSeed:
    """Create the demo in a new database and run its first reconciliation."""
    settings = Settings(database_url=database_url)  # type: ignore[call-arg]
    database = await prepare_database(settings, run_migrations=True)
    try:
        await sync_role_catalog(database, settings.roles)
        directory = work_dir / "northwind-idp.json"
        write_directory(directory)
        operator_key, operator_hash = new_operator_key()
        admin_secret, scim_token = await _organizations(database, directory)
        reconciler = Reconciler(database, None, owner="demo")
        await reconciler.run(ORG, RunRequest(trigger=RunTrigger.manual))
        if with_history:
            await _history(database, reconciler, directory)
    finally:
        await database.dispose()
    return DemoSeed(
        database_url=database_url,
        directory=directory,
        org=ORG,
        operator_key=operator_key,
        operator_key_hash=operator_hash,
        admin_secret=admin_secret,
        scim_token=scim_token,
    )


async def _organizations(database: Database, directory: Path) -> tuple[str, str]:
    """Create the organizations; return the admin credential and SCIM token."""
    async with database.write() as session:
        org = await organizations.create_organization(
            session, ORG, "Northwind Learning", Plan.enterprise
        )
        await organizations.create_organization(
            session, "contoso", "Contoso University", Plan.professional
        )
        await organizations.create_organization(
            session, "fabrikam", "Fabrikam Academy", Plan.starter
        )
        old = await tokens.create_token(
            session, org, name="Okta Staging", expires_in_days=90
        )
        await tokens.revoke_token(session, org, old.token.id)
        scim = await tokens.create_token(
            session, org, name="Okta Production", expires_in_days=365
        )
        admin = await credentials.create_credential(session, org, name="Ada Lovelace")
        await connectors.set_connector(
            session,
            org,
            {
                "kind": "file",
                "path": str(directory),
                "interval_seconds": 3600,
                "jitter_seconds": 300,
            },
            None,
            actor="operator",
        )
        for group, role, limited_to in MAPPINGS:
            await mappings.add_mapping(
                session, org, group=group, role_slug=role, limited_to=limited_to
            )
    return admin.secret, scim.secret


async def _history(database: Database, reconciler: Reconciler, directory: Path) -> None:
    """Add older scheduled runs, a preview, and a run with a held deactivation."""
    now = utcnow()
    async with database.write() as session:
        org = await organizations.get_organization(session, ORG)
        for days_ago, drift in PAST_DRIFT:
            started = now - timedelta(days=days_ago, hours=3)
            counts = counts_of(())
            counts["by_kind"]["membership_change"] = drift
            counts["by_status"]["applied"] = drift
            session.add(
                Run(
                    id=str(uuid.uuid4()),
                    org_id=org.id,
                    trigger=RunTrigger.schedule,
                    mode=RunMode.apply,
                    status=RunStatus.succeeded,
                    scope={"user": None, "group": None},
                    started_at=started,
                    finished_at=started + timedelta(seconds=2),
                    counts=counts,
                    drift=drift,
                    error=None,
                    summary={},
                    owner="demo",
                )
            )
    remove_member(directory)
    await reconciler.run(ORG, RunRequest(trigger=RunTrigger.manual, dry_run=True))
    await reconciler.run(ORG, RunRequest(trigger=RunTrigger.schedule))
