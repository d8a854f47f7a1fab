"""Commands for admin access: organization admin credentials and operator keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from scim_reconciler.admin import credentials
from scim_reconciler.admin.principal import new_operator_key
from scim_reconciler.cli.common import (
    JsonOption,
    id_column,
    out,
    print_json,
    run,
    time_column,
    when,
)
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AdminCredential
from scim_reconciler.services import organizations

admin_key_app = typer.Typer(
    help="Generate, list and revoke organization admin credentials for the "
    "admin API and console.",
    no_args_is_help=True,
)
operator_key_app = typer.Typer(
    help="Make operator keys, which administer every organization.",
    no_args_is_help=True,
)


def _credential_json(credential: AdminCredential) -> dict[str, Any]:
    return {
        "id": credential.id,
        "name": credential.name,
        "created_by": credential.created_by,
        "created_at": credential.created_at,
        "last_used_at": credential.last_used_at,
        "status": "revoked" if credential.revoked_at is not None else "active",
    }


@admin_key_app.command("create")
def admin_key_create(
    org: Annotated[str, typer.Argument(help="Organization slug.")],
    name: Annotated[
        str, typer.Option(help='Whose credential it is, e.g. "Ada Lovelace".')
    ],
    as_json: JsonOption = False,
) -> None:
    """Generate an admin credential; its secret is printed once and never stored."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.write() as session:
            organization = await organizations.get_organization(session, org)
            new = await credentials.create_credential(session, organization, name=name)
            return {**_credential_json(new.credential), "secret": new.secret}

    created = run(work)
    if as_json:
        print_json(created)
        return
    out.print(f"Admin credential {created['id']} ({created['name']}) for {org}.")
    out.print(f"Secret: {created['secret']}", highlight=False)
    out.print("Copy the secret now: it is not stored and will not be shown again.")


@admin_key_app.command("list")
def admin_key_list(org: str, as_json: JsonOption = False) -> None:
    """List an organization's admin credentials (never their secrets)."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.read() as session:
            organization = await organizations.get_organization(session, org)
            found = await credentials.list_credentials(session, organization)
            return [_credential_json(credential) for credential in found]

    found = run(work)
    if as_json:
        print_json(found)
        return
    table = Table(
        id_column(),
        "Name",
        "Creator",
        time_column("Created"),
        time_column("Last used"),
        "Status",
    )
    for credential in found:
        table.add_row(
            credential["id"],
            credential["name"],
            credential["created_by"],
            when(credential["created_at"]),
            when(credential["last_used_at"]),
            credential["status"],
        )
    out.print(table)


@admin_key_app.command("revoke")
def admin_key_revoke(org: str, credential_id: str, as_json: JsonOption = False) -> None:
    """Revoke a credential: its console sessions end and the API refuses it."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.write() as session:
            organization = await organizations.get_organization(session, org)
            revoked = await credentials.revoke_credential(
                session, organization, credential_id
            )
            return _credential_json(revoked)

    revoked = run(work)
    if as_json:
        print_json(revoked)
    else:
        out.print(f"Admin credential {revoked['id']} ({revoked['name']}) is revoked.")


@operator_key_app.command("new")
def operator_key_new(as_json: JsonOption = False) -> None:
    """Print a new operator key and the hash that the settings list."""
    key, key_hash = new_operator_key()
    if as_json:
        print_json({"key": key, "hash": key_hash})
        return
    out.print(f"Key:  {key}", highlight=False)
    out.print(f"Hash: {key_hash}", highlight=False)
    out.print(
        "Add the hash to operator_key_hashes (SCIM_RECONCILER_OPERATOR_KEY_HASHES) "
        "and give the key to the operator; the key is not stored anywhere.",
        highlight=False,
    )
