"""``scim-reconciler demo``: a trial with no IdP account and no database server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from scim_reconciler.cli.common import listen_settings, out, run, settings
from scim_reconciler.cli.reconcile import changes_table, print_counts
from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import ConnectorConfig, Plan, RoleMapping, RunTrigger
from scim_reconciler.demo import DEMO_ORG, MAPPINGS, write_directory
from scim_reconciler.reconcile.connectors.registry import parse_config
from scim_reconciler.reconcile.model import Plan as ChangePlan
from scim_reconciler.reconcile.runs import Reconciler, RunReport, RunRequest
from scim_reconciler.services import mappings, organizations, tokens
from scim_reconciler.text import comparison_key


async def _prepare(database: Database, directory: Path) -> str:
    """Create what the demo needs if missing, and return a new token's secret.

    The demo organization, its file connector and its mappings are created once;
    ``directory`` must exist already.
    """
    async with database.write() as session:
        found = await organizations.list_organizations(session)
        org = next((item for item in found if item.slug == DEMO_ORG), None)
        if org is None:
            org = await organizations.create_organization(
                session, DEMO_ORG, "Demo Organization", Plan.enterprise
            )
        new = await tokens.create_token(
            session,
            org,
            name=f"Demo token {utcnow():%Y-%m-%d %H:%M}",
            expires_in_days=30,
        )
        if await session.get(ConnectorConfig, org.id) is None:
            parsed = parse_config(
                {
                    "kind": "file",
                    "path": str(directory),
                    "interval_seconds": 300,
                    "jitter_seconds": 30,
                    "max_deactivation_percent": 50,
                },
                None,
            )
            session.add(
                ConnectorConfig(
                    org_id=org.id,
                    kind=parsed.kind,
                    config=parsed.config,
                    enabled=parsed.run.enabled,
                    interval_seconds=parsed.run.interval_seconds,
                    jitter_seconds=parsed.run.jitter_seconds,
                    max_deactivations=parsed.run.max_deactivations,
                    max_deactivation_percent=parsed.run.max_deactivation_percent,
                    updated_at=utcnow(),
                )
            )
        mapped = set(
            (
                await session.scalars(
                    select(RoleMapping.group_key).where(RoleMapping.org_id == org.id)
                )
            ).all()
        )
        for group, role, limited_to in MAPPINGS:
            if comparison_key(group) not in mapped:
                await mappings.add_mapping(
                    session, org, group=group, role_slug=role, limited_to=limited_to
                )
        return new.secret


def demo(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    directory: Annotated[
        Path,
        typer.Option(
            help="Directory file that stands in for the IdP; created if missing."
        ),
    ] = Path("scim-reconciler-demo.json"),
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve after the first run.")
    ] = True,
) -> None:
    """Set up a demo organization, reconcile it from a directory file, and serve."""
    config = settings()
    if serve:
        # Checked first, so that a busy port fails before the demo prints a
        # token that nothing will serve.
        config, host, port = listen_settings(config, host, port)
    secret_key = config.secret_key.get_secret_value() if config.secret_key else None
    directory = directory.resolve()
    if not directory.exists():
        write_directory(directory)

    def show_plan(plan: ChangePlan) -> None:
        if plan.changes:
            out.print(
                changes_table(
                    plan.changes, "Plan for the demo organization", applying=True
                )
            )
        else:
            out.print("The demo organization is in line with its directory file.")

    async def work(database: Database) -> tuple[str, RunReport]:
        secret = await _prepare(database, directory)
        reconciler = Reconciler(database, secret_key, owner="demo")
        report = await reconciler.run(
            DEMO_ORG, RunRequest(trigger=RunTrigger.manual), on_plan=show_plan
        )
        return secret, report

    secret, report = run(work)
    print_counts(report)
    out.print()
    out.print(f"Organization:   {DEMO_ORG} (enterprise plan)")
    out.print(f"SCIM base URL:  {config.scim_base_url}")
    out.print(f"SCIM token:     {secret}", highlight=False)
    out.print("The token is shown only this once; store it in your IdP now.")
    out.print(f"Directory file: {directory} stands in for the IdP.")
    out.print(
        "Edit it (remove a member, deactivate a user) and preview the drift with "
        f"`scim-reconciler reconcile {DEMO_ORG} --dry-run`."
    )
    if serve:
        from scim_reconciler.cli.main import serve_app

        assert host is not None and port is not None
        serve_app(config, host, port)
