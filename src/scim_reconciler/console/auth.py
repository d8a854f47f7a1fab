"""Console sign-in, sign-out, the session of each request and CSRF checks.

The session cookie is HttpOnly, SameSite=Strict, limited to /console, and Secure
when the console is served over HTTPS (a public base URL or a request with the
https scheme). Every form carries a CSRF token: the session's own once signed
in. Before sign-in it is a random value that the sign-in form repeats from a
cookie of its own (a double submit), so that no other site can sign a browser
in.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData

from scim_reconciler.admin.principal import Principal, authenticate_secret, record_use
from scim_reconciler.admin.sessions import end_session, load_session, start_session
from scim_reconciler.admin.throttle import SignInThrottle
from scim_reconciler.clock import utcnow
from scim_reconciler.console.rendering import (
    ConsoleRoute,
    PageError,
    SignInRequired,
    render,
    see_other,
)
from scim_reconciler.console.text import counted
from scim_reconciler.db.engine import Database
from scim_reconciler.settings import Settings

logger = logging.getLogger(__name__)

SESSION_COOKIE = "scimr_console"
SIGN_IN_COOKIE = "scimr_console_sign_in"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
SECRET_FIELD = "secret"
# The form of secrets.token_urlsafe(32): 43 URL-safe base64 characters.
SIGN_IN_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")

router = APIRouter(route_class=ConsoleRoute)


@dataclass(frozen=True)
class Signed:
    """The signed-in admin of a request and the CSRF token of its session."""

    principal: Principal
    csrf_token: str
    cookie_value: str


def database_of(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def client_address(request: Request) -> str:
    # The peer's address, or the X-Forwarded-For address when the peer is a
    # proxy that forwarded_allow_ips names (uvicorn rewrites the scope).
    return request.client.host if request.client else "unknown"


def is_https(request: Request) -> bool:
    return (
        settings_of(request).public_base_url.startswith("https://")
        or request.url.scheme == "https"
    )


def _set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=is_https(request),
        httponly=True,
        samesite="strict",
    )


def _delete_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        secure=is_https(request),
        httponly=True,
        samesite="strict",
    )


async def current_session(request: Request) -> Signed | None:
    """Load the session the request's cookie names, or None without a valid one."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie:
        return None
    async with database_of(request).read() as session:
        loaded = await load_session(session, settings_of(request), cookie)
    if loaded is None:
        return None
    request.state.console = {
        "principal": loaded.principal,
        "csrf_token": loaded.csrf_token,
    }
    return Signed(loaded.principal, loaded.csrf_token, cookie)


async def signed_in(request: Request) -> Signed:
    """Require a valid session; without one the admin is sent to sign in."""
    signed = await current_session(request)
    if signed is None:
        raise SignInRequired
    return signed


def csrf_rejected() -> PageError:
    return PageError(
        403,
        "Form rejected",
        "This form was rejected because its security token (CSRF token) is "
        "missing or does not match your session. Go back, reload the page and "
        "submit the form again.",
    )


async def read_form(request: Request) -> FormData:
    try:
        return await request.form()
    except Exception as exc:  # a malformed body: multipart or encoding errors
        raise PageError(
            400,
            "Invalid form",
            "The form data could not be read. Reload the page and submit the "
            "form again.",
        ) from exc


def _matches(submitted: Any, expected: str) -> bool:
    return (
        isinstance(submitted, str)
        and bool(expected)
        and hmac.compare_digest(submitted.encode(), expected.encode())
    )


async def checked_form(request: Request, signed: Signed) -> FormData:
    """Read a form posted in a session; raise a 403 page unless its CSRF matches."""
    form = await read_form(request)
    if not _matches(form.get(CSRF_FIELD), signed.csrf_token):
        logger.warning(
            "Console form on %s rejected: CSRF token missing or wrong (actor %s)",
            request.url.path,
            signed.principal.name,
        )
        raise csrf_rejected()
    return form


def home_url(principal: Principal) -> str:
    if principal.is_operator:
        return "/console/orgs"
    return f"/console/orgs/{principal.org_slug}/provisioning"


def safe_next(target: str | None) -> str | None:
    """Keep a return address only when it is a console page of this service."""
    if not target or not target.startswith("/console"):
        return None
    if "//" in target or "\\" in target or target.startswith("/console/sign-"):
        return None
    return target


@router.get("/console")
async def console_home(signed: Signed = Depends(signed_in)) -> Response:
    return see_other(home_url(signed.principal))


def _sign_in_page(
    request: Request,
    *,
    status_code: int = 200,
    error: str | None = None,
    next_url: str | None = None,
    notice: str | None = None,
) -> Response:
    # Another open sign-in page keeps working: its form repeats the same value.
    token = request.cookies.get(SIGN_IN_COOKIE, "")
    if not SIGN_IN_TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        {
            "title": "Sign in",
            "sign_in_token": token,
            "error": error,
            "next_url": next_url or "",
            "notice": notice,
        },
        status_code=status_code,
    )
    _set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=3600)
    return response


SIGN_IN_NOTICES = {
    "signed-out": "You are signed out.",
}


@router.get("/console/sign-in")
async def sign_in_form(
    request: Request, next: str | None = None, notice: str | None = None
) -> Response:
    signed = await current_session(request)
    if signed is not None:
        return see_other(safe_next(next) or home_url(signed.principal))
    return _sign_in_page(
        request,
        next_url=safe_next(next),
        notice=SIGN_IN_NOTICES.get(notice or ""),
    )


def throttled(retry_after: float) -> PageError:
    seconds = max(int(retry_after + 0.999), 1)
    at = utcnow() + timedelta(seconds=seconds)
    return PageError(
        429,
        "Too many failed sign-ins",
        "Too many sign-ins from your address failed. Try again in "
        f"{counted(seconds, 'second')}, after {at:%H:%M:%S} UTC.",
        headers={"Retry-After": str(seconds)},
    )


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    client = client_address(request)
    waiting = throttle.retry_after(client)
    if waiting is not None:
        raise throttled(waiting)

    form = await read_form(request)
    if not _matches(form.get(CSRF_FIELD), request.cookies.get(SIGN_IN_COOKIE, "")):
        raise csrf_rejected()
    next_url = safe_next(str(form.get("next") or ""))
    secret = form.get(SECRET_FIELD)
    if not isinstance(secret, str) or not secret.strip():
        return _sign_in_page(
            request,
            status_code=400,
            error="Enter your operator key or organization admin credential.",
            next_url=next_url,
        )

    database = database_of(request)
    settings = settings_of(request)
    async with database.write() as session:
        principal = await authenticate_secret(session, settings, secret)
        if principal is None:
            started = None
        else:
            await record_use(session, principal)
            started = await start_session(
                session,
                principal,
                lifetime=timedelta(minutes=settings.admin_session_minutes),
            )
    if principal is None or started is None:
        throttle.failed(client)
        # The secret is never logged, not even in part.
        logger.warning("Console sign-in failed from %s", client)
        return _sign_in_page(
            request,
            status_code=401,
            error="This key or credential is not valid. It may be mistyped, "
            "revoked, or no longer listed in the settings.",
            next_url=next_url,
        )

    throttle.succeeded(client)
    logger.info("Console sign-in by %s from %s", principal.name, client)
    response = see_other(next_url or home_url(principal))
    lifetime = int((started.expires_at - utcnow()).total_seconds())
    _set_cookie(
        request, response, SESSION_COOKIE, started.cookie_value, max(lifetime, 1)
    )
    _delete_cookie(request, response, SIGN_IN_COOKIE)
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request, signed: Signed = Depends(signed_in)) -> Response:
    await checked_form(request, signed)
    async with database_of(request).write() as session:
        await end_session(session, signed.cookie_value)
    logger.info("Console sign-out by %s", signed.principal.name)
    response = see_other("/console/sign-in?notice=signed-out")
    _delete_cookie(request, response, SESSION_COOKIE)
    return response
