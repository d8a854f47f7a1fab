"""Commands for connectors, reconciliation runs and their approval."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from scim_reconciler.cli.common import (
    JsonOption,
    err,
    fail,
    id_column,
    out,
    print_json,
    run,
    settings,
    time_column,
    when,
)
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import RunTrigger
from scim_reconciler.reconcile import secrets
from scim_reconciler.reconcile.model import Change, ChangeStatus, Plan
from scim_reconciler.reconcile.runs import (
    Reconciler,
    RunReport,
    RunRequest,
    list_runs,
    load_run,
)
from scim_reconciler.services import connectors, organizations
from scim_reconciler.services.organizations import OPERATOR

connector_app = typer.Typer(
    help="Configure how an organization's IdP is read.", no_args_is_help=True
)
runs_app = typer.Typer(
    help="Review and approve reconciliation runs.", no_args_is_help=True
)


def _secret_key() -> str | None:
    config = settings()
    return config.secret_key.get_secret_value() if config.secret_key else None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise fail(
            f"cannot read connector configuration {str(path)!r}: {exc.strerror}"
        ) from None
    try:
        if path.suffix.lower() == ".json":
            loaded = json.loads(text)
        else:
            loaded = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise fail(
            f"connector configuration {str(path)!r} is not valid: {exc}"
        ) from None
    if not isinstance(loaded, dict):
        raise fail(f"connector configuration {str(path)!r} must be an object of keys")
    # The IdP simulator prints {"connector": {...}}; accept that shape as well.
    inner = loaded.get("connector")
    return (
        dict(inner)
        if isinstance(inner, dict) and "kind" not in loaded
        else dict(loaded)
    )


@connector_app.command("set")
def connector_set(
    org: Annotated[str, typer.Argument(help="Organization slug.")],
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="TOML or JSON connector configuration."),
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Connector kind, e.g. file.")] = None,
    path: Annotated[
        str | None, typer.Option(help="Directory file, for --kind file.")
    ] = None,
    interval_seconds: Annotated[
        int | None, typer.Option(help="Seconds between scheduled runs.")
    ] = None,
    jitter_seconds: Annotated[
        int | None, typer.Option(help="Random delay added to each run, in seconds.")
    ] = None,
    max_deactivations: Annotated[
        int | None, typer.Option(help="Deactivations above this count are held.")
    ] = None,
    max_deactivation_percent: Annotated[
        float | None,
        typer.Option(help="Deactivations above this percent of active users are held."),
    ] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Schedule runs or not.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set the connector of an organization; options override the --config file."""
    raw = _read_config_file(config_file) if config_file else {}
    options = {
        "kind": kind,
        "path": str(Path(path).expanduser().resolve()) if path else None,
        "interval_seconds": interval_seconds,
        "jitter_seconds": jitter_seconds,
        "max_deactivations": max_deactivations,
        "max_deactivation_percent": max_deactivation_percent,
        "enabled": enabled,
    }
    raw.update({key: value for key, value in options.items() if value is not None})
    if "kind" not in raw:
        raise fail("give the connector kind: --kind file, or a --config file with kind")
    secret_key = _secret_key()

    async def work(database: Database) -> dict[str, Any]:
        async with database.write() as session:
            organization = await organizations.get_organization(session, org)
            row = await connectors.set_connector(
                session, organization, raw, secret_key, actor=OPERATOR
            )
            return connectors.view(organization, row).as_dict()

    shown = run(work)
    if as_json:
        print_json(shown)
    else:
        out.print(f"Connector of {org} set: kind {shown['kind']}.")


async def _connector_view(database: Database, org: str) -> dict[str, Any]:
    async with database.read() as session:
        organization = await organizations.get_organization(session, org)
        row = await connectors.get_connector(session, organization)
        return connectors.view(organization, row).as_dict()


@connector_app.command("show")
def connector_show(org: str, as_json: JsonOption = False) -> None:
    """Show an organization's connector, with secrets masked."""

    async def work(database: Database) -> dict[str, Any]:
        return await _connector_view(database, org)

    shown = run(work)
    if as_json:
        print_json(shown)
        return
    table = Table("Setting", "Value", title=f"Connector of {org}")
    table.add_row("kind", shown["kind"])
    for key, value in shown["config"].items():
        table.add_row(key, str(value))
    for key in (
        "enabled",
        "interval_seconds",
        "jitter_seconds",
        "max_deactivations",
        "max_deactivation_percent",
    ):
        table.add_row(key, str(shown[key]))
    table.add_row("last check", when(shown["last_check_at"]))
    out.print(table)


@connector_app.command("new-key")
def connector_new_key() -> None:
    """Print a new key for SCIM_RECONCILER_SECRET_KEY (encrypts stored secrets)."""
    out.print(secrets.new_key(), highlight=False)


@connector_app.command("check")
def connector_check(org: str, as_json: JsonOption = False) -> None:
    """Check the credential, the permissions and that every mapped group resolves."""
    secret_key = _secret_key()

    async def work(database: Database) -> list[str]:
        async with database.read() as session:
            organization = await organizations.get_organization(session, org)
        result = await connectors.check_connector(database, organization, secret_key)
        return result.problems

    problems = run(work)
    if as_json:
        print_json({"org": org, "ok": not problems, "problems": problems})
    elif problems:
        for problem in problems:
            err.print(f"[red]problem:[/red] {problem}", highlight=False)
    else:
        out.print(
            f"Connector of {org} works: the credential is valid and every mapped "
            "group resolves."
        )
    if problems:
        raise typer.Exit(1)


# reconcile


def change_json(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind.value,
        "userName": change.user_name,
        "externalId": change.external_id,
        "status": change.status.value,
        "reason": change.reason,
        "holdReason": change.hold_reason,
        "details": change.details,
    }


def report_json(report: RunReport) -> dict[str, Any]:
    run_row = report.run
    return {
        "run": {
            "id": run_row.id,
            "org_id": run_row.org_id,
            "trigger": run_row.trigger.value,
            "mode": run_row.mode.value,
            "status": run_row.status.value,
            "started_at": run_row.started_at,
            "finished_at": run_row.finished_at,
            "counts": run_row.counts.get("by_kind", {}),
            "counts_by_status": run_row.counts.get("by_status", {}),
            "drift": run_row.drift,
            "error": run_row.error,
        },
        "changes": [change_json(change) for change in report.changes],
        "skipped": [
            {"userName": name, "reason": reason} for name, reason in report.skipped
        ],
        "warnings": list(report.warnings),
    }


def changes_table(
    changes: tuple[Change, ...] | list[Change], title: str, *, applying: bool = False
) -> Table:
    """Build a table of changes; ``applying`` marks a plan printed before apply,
    whose planned changes are labelled as about to apply."""
    table = Table("Change", "userName", "Status", "Reason", title=title)
    for change in changes:
        reason = change.reason
        if change.hold_reason:
            reason += f" [held: {change.hold_reason}]"
        status = change.status.value
        if applying and change.status is ChangeStatus.planned:
            status = "to apply"
        table.add_row(change.kind.value, change.user_name, status, reason)
    return table


def print_counts(report: RunReport) -> None:
    run_row = report.run
    counts = run_row.counts.get("by_kind", {})
    shown = (
        ", ".join(f"{kind} {count}" for kind, count in counts.items() if count)
        or "no changes"
    )
    out.print(
        f"Run {run_row.id}: {run_row.status.value}; {shown}; drift {run_row.drift}."
    )
    statuses = run_row.counts.get("by_status", {})
    if statuses.get("held"):
        out.print(
            f"{statuses['held']} changes are held: review them, then "
            f"`scim-reconciler runs approve {run_row.id}`."
        )
    if statuses.get("deferred"):
        out.print(
            f"{statuses['deferred']} changes were deferred: a SCIM push changed "
            "those users or groups during the run; the next run plans them again."
        )
    if run_row.error:
        err.print(f"[red]error:[/red] {run_row.error}", highlight=False)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def reconcile(
    org: Annotated[str, typer.Argument(help="Organization slug.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan only; change nothing.")
    ] = False,
    user: Annotated[
        str | None, typer.Option("--user", help="Only this userName.")
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="Only this mapped group.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Reconcile an organization now: print the plan, apply it, print the counts."""
    if user and group:
        raise fail("give --user or --group, not both")
    config = settings()
    secret_key = config.secret_key.get_secret_value() if config.secret_key else None
    request = RunRequest(
        trigger=RunTrigger.manual, dry_run=dry_run, only_user=user, only_group=group
    )

    async def work(database: Database) -> RunReport:
        reconciler = Reconciler(database, secret_key, owner="cli")
        if as_json:
            return await reconciler.run(org, request)
        progress = Progress(
            TextColumn("Applying"),
            BarColumn(),
            MofNCompleteColumn(),
            console=out,
            transient=True,
        )
        task = progress.add_task("apply", total=None)

        def show_plan(plan: Plan) -> None:
            if plan.changes:
                out.print(
                    changes_table(plan.changes, f"Plan for {org}", applying=not dry_run)
                )
            else:
                out.print(f"{org} is in line with the IdP: nothing to change.")
            for name, reason in plan.skipped:
                out.print(f"Skipped {name}: {reason}")

        def advance(done: int, total: int) -> None:
            if not progress.live.is_started:
                progress.start()
            progress.update(task, completed=done, total=total)

        try:
            return await reconciler.run(
                org, request, progress=advance, on_plan=show_plan
            )
        finally:
            progress.stop()

    report = run(work)
    if as_json:
        print_json(report_json(report))
    else:
        print_counts(report)
    if report.run.status.value == "failed":
        raise typer.Exit(1)


@runs_app.command("list")
def runs_list(
    org: str,
    limit: Annotated[
        int, typer.Option(min=1, help="Maximum number of runs to print.")
    ] = 20,
    as_json: JsonOption = False,
) -> None:
    """List an organization's recent runs, newest first."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.read() as session:
            organization = await organizations.get_organization(session, org)
        return [
            report_json(RunReport(row, ()))["run"]
            for row in await list_runs(database, organization.id, limit)
        ]

    found = run(work)
    if as_json:
        print_json(found)
        return
    table = Table(
        id_column("Run"),
        time_column("Started"),
        "Trigger",
        "Mode",
        "Status",
        "Drift",
        "Changes",
    )
    for item in found:
        total = sum(item["counts"].values())
        table.add_row(
            item["id"],
            when(item["started_at"]),
            item["trigger"],
            item["mode"],
            item["status"],
            str(item["drift"]),
            str(total),
        )
    out.print(table)


@runs_app.command("show")
def runs_show(run_id: str, as_json: JsonOption = False) -> None:
    """Show a run with its plan and the reason for each change."""

    async def work(database: Database) -> RunReport:
        return await load_run(database, run_id)

    report = run(work)
    if as_json:
        print_json(report_json(report))
        return
    out.print(
        changes_table(report.changes, f"Run {run_id} ({report.run.status.value})")
    )
    print_counts(report)


@runs_app.command("approve")
def runs_approve(run_id: str, as_json: JsonOption = False) -> None:
    """Apply the changes a run held for approval."""
    secret_key = _secret_key()

    async def work(database: Database) -> RunReport:
        return await Reconciler(database, secret_key, owner="cli").approve(run_id)

    report = run(work)
    if as_json:
        print_json(report_json(report))
    else:
        print_counts(report)
