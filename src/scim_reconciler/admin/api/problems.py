"""Problem details (RFC 9457) for every error of the admin API, made in one place.

The handlers installed here apply to paths under ``/admin/v1`` only. For any
other path they call the handler that was installed before them, so SCIM keeps
its SCIM Error bodies. A 500 carries no traceback and no exception message,
only the request id under which the service log has the details.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from scim_reconciler.errors import (
    ConflictError,
    ConnectorError,
    InvalidInputError,
    NotAllowedError,
    NotFoundError,
    ReconcilerError,
    RunInProgressError,
)

logger = logging.getLogger(__name__)

PREFIX = "/admin/v1"
PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:scim-reconciler:problem:"

Handler = Callable[[Request, Any], Awaitable[Response] | Response]

# Longest quoted invalid value, in characters of its JSON form.
MAX_ECHO_LENGTH = 100
# Body fields whose invalid values are never quoted back.
SECRET_FIELD_NAMES = frozenset(
    {
        "secret",
        "password",
        "token",
        "api_token",
        "private_key",
        "client_secret",
        "client_certificate",
    }
)


class FieldProblem(BaseModel):
    """One invalid value of a request."""

    location: str = Field(
        description="Where the value is: body.FIELD, query.NAME or path.NAME."
    )
    message: str = Field(description="What is wrong with it and how to fix it.")


class Problem(BaseModel):
    """An error response (RFC 9457 problem details)."""

    type: str = Field(
        description="URI of the problem type; the admin API documentation lists them.",
        examples=["urn:scim-reconciler:problem:not-found"],
    )
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(
        description="What went wrong in this request: the value and the fix."
    )
    instance: str | None = Field(
        default=None, description="Path of the request that failed."
    )
    errors: list[FieldProblem] | None = Field(
        default=None, description="Every invalid value, for a validation error."
    )
    run_id: str | None = Field(
        default=None, description="The run in progress, for a run-in-progress error."
    )


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class ApiProblem(Exception):
    """An error that the admin API returns as it is, with a status and headers."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = dict(headers or {})
        self.run_id = run_id


# Problem types: status and title of each kind.
KINDS: dict[str, tuple[int, str]] = {
    "invalid-request": (400, "Invalid request"),
    "unauthorized": (401, "Authentication required"),
    "forbidden": (403, "Forbidden"),
    "not-allowed": (403, "Not allowed for this organization"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "conflict": (409, "Conflict"),
    "run-in-progress": (409, "Run in progress"),
    "invalid-input": (422, "Invalid input"),
    "too-many-requests": (429, "Too many failed authentications"),
    "internal-error": (500, "Internal error"),
    "connector-failed": (502, "The IdP could not be read"),
    "unavailable": (503, "Service stopping"),
}

# Project exceptions by the problem kind they become.
ERROR_KINDS: tuple[tuple[type[ReconcilerError], str], ...] = (
    (InvalidInputError, "invalid-input"),
    (NotFoundError, "not-found"),
    (RunInProgressError, "run-in-progress"),
    (ConflictError, "conflict"),
    (NotAllowedError, "not-allowed"),
    (ConnectorError, "connector-failed"),
)


def problem_response(
    request: Request,
    kind: str,
    detail: str,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    errors: list[FieldProblem] | None = None,
    run_id: str | None = None,
) -> Response:
    default_status, title = KINDS[kind]
    problem = Problem(
        type=TYPE_PREFIX + kind,
        title=title,
        status=status or default_status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
        run_id=run_id,
    )
    return ProblemResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        headers=dict(headers or {}),
    )


def is_admin_api(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def _location(parts: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in parts)


# Pydantic's error types for a body that is not a JSON object at all.
NOT_AN_OBJECT_TYPES = frozenset({"model_attributes_type", "dict_type"})
NOT_AN_OBJECT = (
    "the request body must be a JSON object: send one with "
    "Content-Type: application/json"
)
UNREADABLE_BODY = (
    "the request body could not be read: send a JSON object, encoded in UTF-8, "
    "with Content-Type: application/json"
)


def _field_problem(error: Mapping[str, Any]) -> FieldProblem:
    location = _location(tuple(error.get("loc", ())))
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "value_error":
        # Our own validators' messages, without pydantic's prefix.
        message = message.removeprefix("Value error, ")
    if tuple(error.get("loc", ())) == ("body",) and (
        error.get("type") in NOT_AN_OBJECT_TYPES
    ):
        return FieldProblem(location=location, message=NOT_AN_OBJECT)
    if error.get("type") == "missing":
        return FieldProblem(location=location, message="missing: give a value")
    if error.get("type") == "extra_forbidden":
        return FieldProblem(
            location=location, message="not a known field: remove it or check its name"
        )
    shown = error.get("input")
    if _may_echo(tuple(error.get("loc", ()))) and isinstance(
        shown, str | int | float | bool
    ):
        text = json.dumps(shown)
        if len(text) > MAX_ECHO_LENGTH:
            text = text[:MAX_ECHO_LENGTH] + "..."
        message = f"{text} is not valid: {message[:1].lower()}{message[1:]}"
    return FieldProblem(location=location, message=message)


def _may_echo(location: tuple[Any, ...]) -> bool:
    """Check whether an invalid value may be quoted: never a whole body or secret."""
    if not location or location[0] not in ("query", "path", "body"):
        return False
    if location[0] == "body":
        return len(location) > 1 and str(location[-1]) not in SECRET_FIELD_NAMES
    return True


def validation_problem(request: Request, exc: RequestValidationError) -> Response:
    errors = [_field_problem(error) for error in exc.errors()]
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return problem_response(
            request,
            "invalid-request",
            "the request body is not valid JSON: send a JSON object with "
            "Content-Type: application/json",
        )
    first = errors[0] if errors else FieldProblem(location="request", message="")
    detail = f"{first.location}: {first.message}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more problems, listed in errors)"
    return problem_response(request, "invalid-input", detail, errors=errors)


def http_problem(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return problem_response(
            request,
            "not-found",
            f"no admin API endpoint at {request.url.path}: the documentation at "
            "/docs lists the endpoints",
        )
    if exc.status_code == 405:
        return problem_response(
            request,
            "method-not-allowed",
            f"method {request.method} is not allowed on {request.url.path}",
            headers=getattr(exc, "headers", None),
        )
    if exc.status_code == 400:
        # FastAPI's body parser: invalid UTF-8, or JSON nested too deep.
        return problem_response(request, "invalid-request", UNREADABLE_BODY)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return problem_response(
        request,
        "invalid-request",
        detail,
        status=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


def error_problem(request: Request, exc: ReconcilerError) -> Response:
    for cls, kind in ERROR_KINDS:
        if isinstance(exc, cls):
            return problem_response(request, kind, str(exc))
    return unexpected_problem(request, exc)


def unexpected_problem(request: Request, exc: Exception) -> Response:
    request_id = getattr(request.state, "request_id", "-")
    logger.error(
        "Unhandled error on %s %s (request %s): %s",
        request.method,
        request.url.path,
        request_id,
        type(exc).__name__,
        exc_info=exc,
    )
    return problem_response(
        request,
        "internal-error",
        f"internal error: the service log has details under request id {request_id}",
    )


def api_problem(request: Request, exc: ApiProblem) -> Response:
    return problem_response(
        request,
        exc.kind,
        exc.detail,
        status=exc.status,
        headers=exc.headers,
        run_id=exc.run_id,
    )


def _admin_only(
    app: FastAPI,
    earlier: Mapping[Any, Handler],
    exc_class: type[Exception],
    convert: Callable[[Request, Any], Response],
) -> None:
    """Handle ``exc_class`` on admin API paths; elsewhere call the earlier handler."""

    async def handle(request: Request, exc: Exception) -> Response:
        if is_admin_api(request):
            return convert(request, exc)
        for cls in type(exc).__mro__:
            handler = earlier.get(cls)
            if handler is not None:
                result = handler(request, exc)
                if isinstance(result, Awaitable):
                    result = await result
                return result
        raise exc

    app.add_exception_handler(exc_class, handle)


def install_problem_handlers(app: FastAPI) -> None:
    """Return every admin API error as a problem body.

    Install after the SCIM handlers, so that those stay in charge of SCIM paths.
    """
    earlier = dict(app.exception_handlers)
    _admin_only(app, earlier, ApiProblem, api_problem)
    _admin_only(app, earlier, ReconcilerError, error_problem)
    for cls, _kind in ERROR_KINDS:
        _admin_only(app, earlier, cls, error_problem)
    _admin_only(app, earlier, RequestValidationError, validation_problem)
    _admin_only(app, earlier, HTTPException, http_problem)
    _admin_only(app, earlier, Exception, unexpected_problem)
    _document_problem(app)


def _document_problem(app: FastAPI) -> None:
    """Add the Problem schema to the OpenAPI components that responses refer to."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        definitions = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template=PROBLEM_REF_TEMPLATE)
        definitions.update(problem.pop("$defs", {}))
        definitions["Problem"] = problem
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


PROBLEM_REF_TEMPLATE = "#/components/schemas/{model}"

DESCRIPTIONS = {
    400: "The request is malformed, for example a body that is not JSON.",
    401: "The Authorization header is missing, or its key is not valid.",
    403: "The key may not do this: operators only, or the plan forbids it.",
    404: "Not found, or in an organization that the key cannot see.",
    409: "The request conflicts with the stored state or a running run.",
    422: "A value of the body, query or path is not valid; detail names it.",
    429: "Too many failed authentications from this address; see Retry-After.",
    502: "The IdP could not be read.",
    503: "The service is stopping; try again on another replica or later.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Document error responses of an operation, each with a Problem body."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": DESCRIPTIONS[status],
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": PROBLEM_REF_TEMPLATE.format(model="Problem")}
                }
            },
        }
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {
                    "description": "Bearer, the scheme to authenticate with.",
                    "schema": {"type": "string"},
                }
            }
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer"},
                }
            }
        documented[status] = entry
    return documented
