"""The ``scim-reconciler`` command: serve, migrate and manage organizations.

Every command that prints data takes ``--json`` and then prints one JSON value
on standard output; errors go to standard error with exit status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select

from scim_reconciler.cli.common import (
    JsonOption,
    State,
    fail,
    id_column,
    listen_settings,
    out,
    print_json,
    run,
    settings,
    time_column,
    when,
)
from scim_reconciler.cli.config import config_app
from scim_reconciler.clock import utcnow
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import User
from scim_reconciler.errors import ReconcilerError
from scim_reconciler.services import mappings, organizations, tokens
from scim_reconciler.services.roles_query import effective_roles
from scim_reconciler.settings import Settings

app = typer.Typer(
    help="Keep dashboard users and roles in line with the identity provider.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
org_app = typer.Typer(help="Create and list organizations.", no_args_is_help=True)
token_app = typer.Typer(
    help="Generate, list and revoke SCIM tokens.", no_args_is_help=True
)
mapping_app = typer.Typer(
    help="Map IdP groups to dashboard roles.", no_args_is_help=True
)
users_app = typer.Typer(help="Look at dashboard users.", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(token_app, name="token")
app.add_typer(mapping_app, name="mapping")
app.add_typer(users_app, name="users")
app.add_typer(config_app, name="config")


@app.callback()
def main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML settings file; the SCIM_RECONCILER_* environment wins over it.",
        ),
    ] = None,
) -> None:
    State.config = config


# serve, migrate, demo


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision."""

    async def work(database: Database) -> None:
        return None

    run(work)
    out.print("Database is at the newest schema revision.")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[
        int | None, typer.Option(help="TCP port; 0 picks a free one.")
    ] = None,
) -> None:
    """Serve SCIM 2.0 and the health endpoints until stopped."""
    serve_app(*listen_settings(settings(), host, port))


def serve_app(config: Settings, host: str, port: int) -> None:
    from scim_reconciler.server import run_server

    run_server(config, host, port)


# org


@org_app.command("create")
def org_create(
    slug: Annotated[str, typer.Argument(help="Short unique name, e.g. acme.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    plan: Annotated[
        str, typer.Option(help="free, starter, professional or enterprise.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Create an organization."""
    try:
        chosen = organizations.parse_plan(plan)
    except ReconcilerError as exc:
        raise fail(str(exc)) from None

    async def work(database: Database) -> dict[str, Any]:
        async with database.write() as session:
            org = await organizations.create_organization(session, slug, name, chosen)
            return _org_json(org)

    created = run(work)
    if as_json:
        print_json(created)
    else:
        out.print(
            f"Created organization {created['slug']} on the {created['plan']} plan."
        )


def _org_json(org: Any) -> dict[str, Any]:
    return {
        "slug": org.slug,
        "name": org.name,
        "plan": org.plan.value,
        "scim": org.plan.allows_scim,
        "created_at": org.created_at,
    }


@org_app.command("list")
def org_list(as_json: JsonOption = False) -> None:
    """List organizations."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.read() as session:
            return [
                _org_json(org)
                for org in await organizations.list_organizations(session)
            ]

    found = run(work)
    if as_json:
        print_json(found)
        return
    table = Table("Slug", "Name", "Plan", "SCIM")
    for org in found:
        table.add_row(
            org["slug"], org["name"], org["plan"], "yes" if org["scim"] else "no"
        )
    out.print(table)


@org_app.command("plan")
def org_plan(
    slug: str,
    plan: Annotated[
        str, typer.Argument(help="free, starter, professional or enterprise.")
    ],
) -> None:
    """Change an organization's plan."""
    try:
        chosen = organizations.parse_plan(plan)
    except ReconcilerError as exc:
        raise fail(str(exc)) from None

    async def work(database: Database) -> None:
        async with database.write() as session:
            await organizations.change_plan(session, slug, chosen)

    run(work)
    out.print(f"Organization {slug} is now on the {chosen.value} plan.")


# token


def _token_json(token: Any) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_by": token.created_by,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "status": tokens.token_status(token, utcnow()).value,
    }


@token_app.command("create")
def token_create(
    org: Annotated[str, typer.Argument(help="Organization slug.")],
    name: Annotated[
        str, typer.Option(help='Descriptive name, e.g. "Okta Production".')
    ],
    expires_in_days: Annotated[int, typer.Option(help="Days until the token expires.")],
    created_by: Annotated[
        str,
        typer.Option(help="userName of the global administrator creating it."),
    ] = tokens.OPERATOR,
    as_json: JsonOption = False,
) -> None:
    """Generate a SCIM token; its secret is printed once and never stored."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.write() as session:
            organization = await organizations.get_organization(session, org)
            new = await tokens.create_token(
                session,
                organization,
                name=name,
                expires_in_days=expires_in_days,
                created_by=created_by,
            )
            return {**_token_json(new.token), "secret": new.secret}

    created = run(work)
    if as_json:
        print_json(created)
        return
    out.print(
        f"Token {created['id']} ({created['name']}) expires "
        f"{when(created['expires_at'])}."
    )
    out.print(f"Secret: {created['secret']}", highlight=False)
    out.print("Copy the secret now: it is not stored and will not be shown again.")


@token_app.command("list")
def token_list(org: str, as_json: JsonOption = False) -> None:
    """List an organization's SCIM tokens (never their secrets)."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.read() as session:
            organization = await organizations.get_organization(session, org)
            return [
                _token_json(t) for t in await tokens.list_tokens(session, organization)
            ]

    found = run(work)
    if as_json:
        print_json(found)
        return
    table = Table(
        id_column(),
        "Name",
        "Creator",
        time_column("Created"),
        time_column("Expires"),
        time_column("Last used"),
        "Status",
    )
    for token in found:
        table.add_row(
            token["id"],
            token["name"],
            token["created_by"],
            when(token["created_at"]),
            when(token["expires_at"]),
            when(token["last_used_at"]),
            token["status"],
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(org: str, token_id: str, as_json: JsonOption = False) -> None:
    """Revoke a token; the next request that uses it gets 401."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.write() as session:
            organization = await organizations.get_organization(session, org)
            return _token_json(
                await tokens.revoke_token(session, organization, token_id)
            )

    revoked = run(work)
    if as_json:
        print_json(revoked)
    else:
        out.print(f"Token {revoked['id']} ({revoked['name']}) is revoked.")


# mapping


def _mapping_json(mapping: Any) -> dict[str, Any]:
    return {
        "id": mapping.id,
        "group": mapping.group,
        "role": mapping.role_slug,
        "grant": mapping.grant.value,
        "objects": list(mapping.object_ids),
    }


@mapping_app.command("add")
def mapping_add(
    org: str,
    group: Annotated[
        str, typer.Option(help="IdP group: its externalId or displayName.")
    ],
    role: Annotated[str, typer.Option(help="Role slug, e.g. analytics_admin.")],
    limited: Annotated[
        bool, typer.Option("--limited", help="Grant the role only on the --object ids.")
    ] = False,
    objects: Annotated[
        list[str] | None,
        typer.Option("--object", help="Course, asset or learner group id; repeatable."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Grant a role to the members of an IdP group."""
    if objects and not limited:
        raise fail("--object needs --limited: a full grant covers every object")

    async def work(database: Database) -> dict[str, Any]:
        async with database.write() as session:
            organization = await organizations.get_organization(session, org)
            mapping = await mappings.add_mapping(
                session,
                organization,
                group=group,
                role_slug=role,
                limited_to=list(objects or []) if limited else None,
            )
            return _mapping_json(mapping)

    created = run(work)
    if as_json:
        print_json(created)
    else:
        out.print(
            f"Mapping {created['id']}: group {created['group']!r} grants "
            f"{created['role']} ({created['grant']})."
        )


@mapping_app.command("list")
def mapping_list(org: str, as_json: JsonOption = False) -> None:
    """List group-to-role mappings."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.read() as session:
            organization = await organizations.get_organization(session, org)
            return [
                _mapping_json(m)
                for m in await mappings.list_mappings(session, organization)
            ]

    found = run(work)
    if as_json:
        print_json(found)
        return
    table = Table("Id", "Group", "Role", "Grant", "Objects")
    for mapping in found:
        table.add_row(
            str(mapping["id"]),
            mapping["group"],
            mapping["role"],
            mapping["grant"],
            ", ".join(mapping["objects"]),
        )
    out.print(table)


@mapping_app.command("remove")
def mapping_remove(org: str, mapping_id: int) -> None:
    """Remove a mapping; its members lose the role it granted."""

    async def work(database: Database) -> None:
        async with database.write() as session:
            organization = await organizations.get_organization(session, org)
            await mappings.remove_mapping(session, organization, mapping_id)

    run(work)
    out.print(f"Mapping {mapping_id} removed.")


# users


@users_app.command("list")
def users_list(
    org: str,
    limit: Annotated[
        int, typer.Option(min=1, help="Maximum number of users to print.")
    ] = 100,
    as_json: JsonOption = False,
) -> None:
    """List an organization's dashboard users with their roles."""

    async def work(database: Database) -> tuple[int, list[dict[str, Any]]]:
        async with database.read() as session:
            organization = await organizations.get_organization(session, org)
            base = select(User).where(User.org_id == organization.id)
            total = await session.scalar(
                select(func.count()).select_from(base.subquery())
            )
            rows = list(
                (
                    await session.scalars(
                        base.order_by(User.user_name_key).limit(limit)
                    )
                ).all()
            )
            roles = await effective_roles(
                session, organization.id, [row.id for row in rows]
            )
            listed = [
                {
                    "id": row.id,
                    "userName": row.user_name,
                    "externalId": row.external_id,
                    "active": row.active,
                    "deleted": row.deleted,
                    "managed_by": row.managed_by.value,
                    "roles": [
                        {
                            "role": role.role_slug,
                            "grant": role.grant.value,
                            "objects": list(role.object_ids),
                        }
                        for role in roles.get(row.id, [])
                    ],
                }
                for row in rows
            ]
            return total or 0, listed

    total, listed = run(work)
    if as_json:
        print_json(listed)
        return
    table = Table(
        "userName",
        "externalId",
        "Status",
        "Managed by",
        "Roles",
        title=f"{total} users",
    )
    for user in listed:
        status = (
            "deleted" if user["deleted"] else "active" if user["active"] else "inactive"
        )
        roles = ", ".join(
            role["role"]
            + ("" if role["grant"] == "full" else f" ({len(role['objects'])} objects)")
            for role in user["roles"]
        )
        table.add_row(
            user["userName"],
            user["externalId"] or "",
            status,
            user["managed_by"],
            roles,
        )
    out.print(table)


def _register_reconcile_commands() -> None:
    from scim_reconciler.cli import reconcile as commands

    app.add_typer(commands.connector_app, name="connector")
    app.add_typer(commands.runs_app, name="runs")
    app.command("reconcile")(commands.reconcile)

    from scim_reconciler.cli.demo import demo

    app.command("demo")(demo)

    from scim_reconciler.cli.simulate import simulate

    app.command("simulate")(simulate)

    from scim_reconciler.cli.admin import admin_key_app, operator_key_app

    app.add_typer(admin_key_app, name="admin-key")
    app.add_typer(operator_key_app, name="operator-key")


_register_reconcile_commands()
