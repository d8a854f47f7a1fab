"""Templates, page errors and the headers every console response carries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from scim_reconciler.console.text import counted
from scim_reconciler.errors import (
    ConflictError,
    InvalidInputError,
    NotAllowedError,
    NotFoundError,
    ReconcilerError,
    RunInProgressError,
)

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

# Scripts and styles come from the package only, so an injected tag cannot run.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages may show secrets (a new token) and organization data.
    "Cache-Control": "no-store",
}


def format_time(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_duration(started: datetime | None, finished: datetime | None) -> str:
    if started is None or finished is None:
        return "running"
    seconds = max((finished - started).total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return str(timedelta(seconds=round(seconds)))


def iso_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = format_time
    environment.filters["iso"] = iso_time
    environment.filters["counted"] = counted
    environment.globals["duration"] = format_duration
    return environment


templates = _environment()


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a template with the request's page context: who is signed in, CSRF."""
    values: dict[str, Any] = {
        "request": request,
        "principal": None,
        "csrf_token": "",
        "org": None,
        "section": None,
        "notice": None,
    }
    values.update(getattr(request.state, "console", {}))
    values.update(context or {})
    body = templates.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code, headers=headers)
    response.headers.update(SECURITY_HEADERS)
    return response


def see_other(url: str) -> RedirectResponse:
    """Redirect after a POST, so a reload does not send the form again."""
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


class PageError(Exception):
    """A failure shown to the admin as a page with a status code."""

    def __init__(
        self,
        status_code: int,
        title: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message
        self.headers = headers


class SignInRequired(Exception):
    """No valid session: the admin goes to the sign-in page, then back."""


def not_found(what: str) -> PageError:
    return PageError(
        404,
        "Not found",
        f"{what} was not found, or you are not allowed to see it. Check the "
        "address, or choose from the menu.",
    )


def error_page(request: Request, error: PageError) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": error.title, "message": error.message},
        status_code=error.status_code,
        headers=error.headers,
    )


# Project errors that reach a route unhandled, shown with their own message,
# which names the value and the fix.
_ERROR_PAGES: tuple[tuple[type[ReconcilerError], int, str], ...] = (
    (InvalidInputError, 400, "Invalid input"),
    (NotFoundError, 404, "Not found"),
    (ConflictError, 409, "Conflict"),
    (NotAllowedError, 403, "Not allowed"),
    (RunInProgressError, 409, "Run in progress"),
)


def _page_for(exc: ReconcilerError) -> PageError:
    for kind, status_code, title in _ERROR_PAGES:
        if isinstance(exc, kind):
            return PageError(status_code, title, str(exc))
    return PageError(502, "The IdP could not be read", str(exc))


def sign_in_redirect(request: Request) -> RedirectResponse:
    """Send the admin to sign in, and back to the page they asked for after."""
    if request.method != "GET":
        return see_other("/console/sign-in")
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return see_other(f"/console/sign-in?{urlencode({'next': target})}")


class ConsoleRoute(APIRoute):
    """Turn every failure of a console route into a page, never a traceback."""

    def get_route_handler(
        self,
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_redirect(request)
            except PageError as exc:
                return error_page(request, exc)
            except ReconcilerError as exc:
                return error_page(request, _page_for(exc))
            except RequestValidationError:
                return error_page(request, not_found("This page"))
            except Exception as exc:
                request_id = getattr(request.state, "request_id", "-")
                logger.error(
                    "Console error on %s %s (request %s): %s",
                    request.method,
                    request.url.path,
                    request_id,
                    type(exc).__name__,
                    exc_info=exc,
                )
                return error_page(
                    request,
                    PageError(
                        500,
                        "Something went wrong",
                        "The console could not complete this request. The service "
                        f"log has the details under request id {request_id}.",
                    ),
                )

        return guarded
