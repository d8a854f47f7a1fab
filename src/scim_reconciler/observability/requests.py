"""Request ids, one log line and the metrics of each HTTP request.

A pure ASGI middleware, so that the endpoint runs in the same context and
every line it logs carries the request id.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scim_reconciler.observability import metrics

logger = logging.getLogger(__name__)

SCIM_PREFIX = "/scim/v2"
REQUEST_ID_HEADER = b"x-request-id"
MAX_REQUEST_ID_LENGTH = 64


def choose_request_id(supplied: str) -> str:
    """Keep a client's request id if it is short and printable, else make one."""
    if 0 < len(supplied) <= MAX_REQUEST_ID_LENGTH and supplied.isprintable():
        return supplied
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


class RequestObservabilityMiddleware:
    """Give each request an id (``X-Request-ID``), log it and count it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = choose_request_id(_header(scope, REQUEST_ID_HEADER))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The 500 response is sent further out, and its log line (with
            # this request id still bound) too; only the counting is left.
            self._finish(scope, 500, started)
            raise
        self._finish(scope, status, started)
        structlog.contextvars.reset_contextvars(**tokens)

    def _finish(self, scope: Scope, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        path: str = scope.get("path", "")
        route = getattr(scope.get("route"), "path", None)
        method: str = scope.get("method", "")
        if not path.startswith(SCIM_PREFIX):
            logger.debug("%s %s responded %d", method, route or "(no route)", status)
            return
        metrics.observe_scim_request(method, route, status, seconds)
        if status in (401, 403):
            reason = scope.get("state", {}).get("auth_failure")
            if reason is not None:
                metrics.count_auth_failure(reason)
            elif status == 401:
                metrics.count_auth_failure("missing")
        logger.info(
            "SCIM %s %s responded %d in %.1f ms",
            method,
            route or "(no route)",
            status,
            seconds * 1000,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            },
        )
