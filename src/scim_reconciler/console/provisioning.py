"""The SCIM provisioning page: base URL, token generation and revocation.

A new token's secret appears once, in the response to the form that generated
it. It is never stored in the session, put in a redirect URL or logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from scim_reconciler.clock import utcnow
from scim_reconciler.console.auth import checked_form, database_of, settings_of
from scim_reconciler.console.orgs import OrgPage, org_page
from scim_reconciler.console.rendering import (
    ConsoleRoute,
    PageError,
    not_found,
    render,
    see_other,
)
from scim_reconciler.db.models import ScimToken, Source
from scim_reconciler.errors import InvalidInputError, NotAllowedError, NotFoundError
from scim_reconciler.services import tokens

router = APIRouter(route_class=ConsoleRoute)

# (days, label) offered in the form; any whole number of days up to the
# service's maximum is accepted from a client that sends another.
EXPIRATION_CHOICES = (
    (30, "30 days"),
    (90, "90 days"),
    (180, "180 days"),
    (365, "1 year"),
    (730, "2 years"),
)
DEFAULT_EXPIRATION_DAYS = 365

NOTICES = {
    "token-revoked": "The token is revoked. SCIM requests with it now get 401.",
}


@dataclass(frozen=True)
class TokenRow:
    token: ScimToken
    status: str


@dataclass
class TokenForm:
    """Values and errors of the Generate token form, to show it again."""

    name: str = ""
    expires_in_days: str = str(DEFAULT_EXPIRATION_DAYS)
    errors: dict[str, str] | None = None


async def _page_context(request: Request, context: OrgPage) -> dict[str, Any]:
    async with database_of(request).read() as session:
        found = await tokens.list_tokens(session, context.org)
    now = utcnow()
    rows = [
        TokenRow(token, tokens.token_status(token, now).value)
        for token in reversed(found)
    ]
    return {
        "title": "SCIM provisioning",
        "section": "provisioning",
        "scim_base_url": settings_of(request).scim_base_url,
        "tokens": rows,
        "has_valid_token": any(row.status == "active" for row in rows),
        "expiration_choices": EXPIRATION_CHOICES,
        "allows_scim": context.org.plan.allows_scim,
        "created": None,
    }


@router.get("/console/orgs/{slug}/provisioning")
async def provisioning_page(
    request: Request, notice: str = "", context: OrgPage = Depends(org_page)
) -> Response:
    values = await _page_context(request, context)
    values["form"] = TokenForm()
    values["notice"] = NOTICES.get(notice)
    return render(request, "provisioning.html", values)


@router.get("/console/orgs/{slug}/provisioning/tokens/new")
async def new_token_page(
    request: Request, context: OrgPage = Depends(org_page)
) -> Response:
    """Show the Generate token form as a page of its own, for use without JavaScript."""
    return _token_form(request, context, TokenForm())


def _token_form(
    request: Request, context: OrgPage, form: TokenForm, status_code: int = 200
) -> Response:
    return render(
        request,
        "token_new.html",
        {
            "title": "Generate a SCIM token",
            "section": "provisioning",
            "form": form,
            "expiration_choices": EXPIRATION_CHOICES,
            "allows_scim": context.org.plan.allows_scim,
        },
        status_code=status_code,
    )


def _parse_days(value: str) -> int | None:
    value = value.strip()
    if not value.isdigit():
        return None
    days = int(value)
    return days if 1 <= days <= tokens.MAX_EXPIRY_DAYS else None


@router.get("/console/orgs/{slug}/provisioning/tokens")
async def tokens_get(context: OrgPage = Depends(org_page)) -> Response:
    # The address of the generate form's response; reloading it shows the page.
    return see_other(f"{context.base_url}/provisioning")


@router.post("/console/orgs/{slug}/provisioning/tokens")
async def generate_token(
    request: Request, context: OrgPage = Depends(org_page)
) -> Response:
    submitted = await checked_form(request, context.signed)
    form = TokenForm(
        name=str(submitted.get("name") or ""),
        expires_in_days=str(submitted.get("expires_in_days") or ""),
        errors={},
    )
    assert form.errors is not None
    name = form.name.strip()
    if not name:
        form.errors["name"] = 'Enter a name, for example "Okta Production".'
    elif len(name) > 200:
        form.errors["name"] = f"The name has {len(name)} characters: use at most 200."
    days = _parse_days(form.expires_in_days)
    if days is None:
        form.errors["expires_in_days"] = (
            f"Expiration {form.expires_in_days!r} is not valid: choose a period "
            f"from the list (1 to {tokens.MAX_EXPIRY_DAYS} days)."
        )
    if form.errors or days is None:
        return _token_form(request, context, form, status_code=400)

    try:
        async with database_of(request).write() as session:
            created = await tokens.create_token(
                session,
                context.org,
                name=name,
                expires_in_days=days,
                created_by=context.actor,
                source=Source.admin,
                creator_authenticated=True,
            )
    except NotAllowedError as exc:
        raise PageError(403, "SCIM is not available", str(exc)) from None
    except InvalidInputError as exc:
        form.errors["name"] = str(exc)
        return _token_form(request, context, form, status_code=400)

    values = await _page_context(request, context)
    values["form"] = TokenForm()
    values["created"] = {"name": created.token.name, "secret": created.secret}
    return render(request, "provisioning.html", values)


@router.get("/console/orgs/{slug}/provisioning/tokens/{token_id}/revoke")
async def revoke_token_page(
    request: Request, token_id: str, context: OrgPage = Depends(org_page)
) -> Response:
    """Ask to confirm a revocation on a page of its own, for use without JavaScript."""
    async with database_of(request).read() as session:
        found = {
            token.id: token for token in await tokens.list_tokens(session, context.org)
        }
    token = found.get(token_id)
    if token is None:
        raise not_found(f"Token {token_id!r}")
    return render(
        request,
        "confirm.html",
        {
            "title": "Revoke token",
            "section": "provisioning",
            "heading": f"Revoke token “{token.name}”?",
            "body": "The IdP that uses this token gets 401 on its next SCIM "
            "request. This cannot be undone.",
            "action": f"{context.base_url}/provisioning/tokens/{token.id}/revoke",
            "button": "Revoke token",
            "cancel_url": f"{context.base_url}/provisioning",
        },
    )


@router.post("/console/orgs/{slug}/provisioning/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: str, context: OrgPage = Depends(org_page)
) -> Response:
    await checked_form(request, context.signed)
    try:
        async with database_of(request).write() as session:
            await tokens.revoke_token(
                session,
                context.org,
                token_id,
                actor=context.actor,
                source=Source.admin,
            )
    except NotFoundError:
        raise not_found(f"Token {token_id!r}") from None
    return see_other(f"{context.base_url}/provisioning?notice=token-revoked")
