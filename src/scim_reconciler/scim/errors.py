"""SCIM Error responses (RFC 7644 §3.12), produced in one place.

Handlers raise scim2-models' exception classes, which carry ``status`` and
``scimType``; the handlers installed here convert them, and every other failure,
to an Error body with ``Content-Type: application/scim+json``. A 500 never
carries a traceback or internal detail.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from scim2_models import (
    Error,
    InvalidSyntaxException,
    InvalidValueException,
    SCIMException,
    UniquenessException,
)
from starlette.exceptions import HTTPException
from starlette.responses import Response

from scim_reconciler.errors import (
    ConflictError,
    InvalidInputError,
    NotAllowedError,
    NotFoundError,
)
from scim_reconciler.scim.schemas import ERROR_SCHEMA, SCIM_MEDIA_TYPE

logger = logging.getLogger(__name__)


def error_response(
    status: int,
    detail: str,
    scim_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    body["detail"] = detail
    return Response(
        json.dumps(body),
        status_code=status,
        media_type=SCIM_MEDIA_TYPE,
        headers=headers,
    )


def _validation_detail(exc: ValidationError) -> str:
    errors = exc.errors()
    location = ".".join(
        str(part) for part in errors[0].get("loc", ()) if part != "body"
    )
    detail = str(errors[0].get("msg", "invalid value"))
    if location:
        detail = f"{location}: {detail}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more problems)"
    return detail


def validation_error(exc: ValidationError) -> SCIMException:
    """Turn a model validation failure into the SCIM exception it stands for."""
    first = Error.from_validation_error(exc.errors()[0])
    detail = _validation_detail(exc)
    scim_type = first.scim_type or "invalidValue"
    if scim_type == "invalidSyntax":
        return InvalidSyntaxException(detail=detail)
    exception = InvalidValueException(detail=detail)
    exception.scim_type = scim_type
    exception.status = int(first.status or 400)
    return exception


def _is_scim(request: Request) -> bool:
    return request.url.path.startswith("/scim/")


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(SCIMException)
    async def _scim(request: Request, exc: SCIMException) -> Response:
        headers = (
            {"WWW-Authenticate": 'Bearer realm="scim"'} if exc.status == 401 else None
        )
        detail = exc.detail
        if isinstance(exc.__cause__, ValidationError):
            # scim2-models raises these while applying a PATCH, with pydantic's
            # multi-line report (and a link to its docs) as the detail.
            detail = _validation_detail(exc.__cause__)
        return error_response(exc.status, detail, exc.scim_type or None, headers)

    @app.exception_handler(InvalidInputError)
    async def _invalid(request: Request, exc: InvalidInputError) -> Response:
        return error_response(400, str(exc), "invalidValue")

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> Response:
        return error_response(404, str(exc))

    @app.exception_handler(ConflictError)
    async def _conflict(request: Request, exc: ConflictError) -> Response:
        return error_response(409, str(exc), UniquenessException.scim_type)

    @app.exception_handler(NotAllowedError)
    async def _not_allowed(request: Request, exc: NotAllowedError) -> Response:
        return error_response(403, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _request_validation(
        request: Request, exc: RequestValidationError
    ) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(
            400, f"invalid {where}: {first.get('msg', 'invalid value')}", "invalidValue"
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            detail = f"no SCIM endpoint at {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
        return error_response(
            exc.status_code, detail, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        logger.error(
            "Unhandled error on %s %s (request %s): %s",
            request.method,
            request.url.path,
            request_id,
            type(exc).__name__,
            exc_info=exc,
        )
        return error_response(
            500,
            "internal error: the service log has details under request id "
            f"{request_id}",
        )
