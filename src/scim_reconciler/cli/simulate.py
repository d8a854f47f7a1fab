"""The ``simulate`` command: serve an IdP's API from a directory file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scim_reconciler.errors import ReconcilerError
from scim_reconciler.simulator.base import SimulatorOptions
from scim_reconciler.simulator.faults import FaultSpecError
from scim_reconciler.simulator.server import IDPS, make_simulator, serve


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def simulate(
    idp: Annotated[
        str, typer.Argument(help="IdP API to serve: okta, entra or onelogin.")
    ],
    directory: Annotated[
        Path,
        typer.Option(
            "--directory", help="Directory file (JSON) with the users and groups."
        ),
    ],
    port: Annotated[
        int, typer.Option(help="TCP port on 127.0.0.1; 0 picks a free one.")
    ] = 0,
    page_size: Annotated[
        int | None,
        typer.Option(
            help="Largest page served, whatever a client asks for (default: the "
            "IdP's own maximum).",
            min=1,
        ),
    ] = None,
    latency_ms: Annotated[
        int,
        typer.Option(
            help="Time from each request's arrival to its response, in milliseconds.",
            min=0,
        ),
    ] = 0,
    rate_limit: Annotated[
        int | None,
        typer.Option(
            help="Requests allowed per rate-limit window (Okta: per endpoint "
            "family); 0 turns the limit off (default: a typical limit of the IdP).",
            min=0,
        ),
    ] = None,
    rate_limit_window: Annotated[
        float | None,
        typer.Option(
            help="Length of the rate-limit window in seconds (default: the IdP's).",
            min=0.001,
        ),
    ] = None,
    token_lifetime: Annotated[
        int | None,
        typer.Option(help="Lifetime of issued access tokens, in seconds.", min=1),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject a fault: KIND[@TARGET][,page=N][,after=N][,times=N][,ms=N], "
            "KIND an HTTP status or timeout, slow, truncate, empty, empty-list; "
            "TARGET members, users, groups, token or any. Repeat for several.",
        ),
    ] = None,
    okta_auth: Annotated[
        str,
        typer.Option(
            help="Credential in the printed Okta configuration: ssws (API token) "
            "or oauth (service app with private_key_jwt)."
        ),
    ] = "ssws",
    log_level: Annotated[
        str, typer.Option(help="uvicorn log level (to standard error).")
    ] = "warning",
) -> None:
    """Serve a simulated IdP API on 127.0.0.1 from a directory file.

    The first line on standard output is a JSON object whose "connector" member
    is a ready connector configuration: save it and pass it to
    `scim-reconciler connector set ORG --config FILE`.
    """
    if idp not in IDPS:
        raise _fail(f"IdP {idp!r} is not simulated: choose one of {', '.join(IDPS)}")
    if okta_auth not in ("ssws", "oauth"):
        raise _fail(f"--okta-auth must be ssws or oauth, not {okta_auth!r}")
    options = SimulatorOptions(
        page_size=page_size,
        latency_ms=latency_ms,
        rate_limit=rate_limit,
        rate_limit_window_seconds=rate_limit_window,
        token_lifetime_seconds=token_lifetime,
        faults=tuple(fault or ()),
    )
    try:
        simulator = make_simulator(idp, directory, options, okta_auth=okta_auth)
    except (ReconcilerError, FaultSpecError) as exc:
        raise _fail(str(exc)) from None
    try:
        serve(simulator, port, log_level=log_level)
    except OSError as exc:
        raise _fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    except KeyboardInterrupt:
        pass
