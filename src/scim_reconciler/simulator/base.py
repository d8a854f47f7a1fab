"""Machinery shared by the simulated IdPs: options, tokens, the rate-limit
window, latency and fault injection.

Each IdP module subclasses ``IdpSimulator`` with its routes, its error bodies
and its rate-limit headers. Handlers call ``admit`` first (the
credential, the rate limit) and build their response with ``respond``, which
applies the faults of the request's target and page.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scim_reconciler.reconcile.connectors.directory import Directory
from scim_reconciler.simulator.faults import Fault, FaultPlan

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# The rate-limit window of the request being handled; ``admit`` sets it.
_request_window: ContextVar[RateWindow | None] = ContextVar(
    "request_window", default=None
)


@dataclass(frozen=True)
class SimulatorOptions:
    """Simulator settings beyond the directory file; None means the IdP's own."""

    # Largest page the simulator returns, whatever page size a client asks for.
    page_size: int | None = None
    # Time from a request's arrival to its response, in milliseconds.
    latency_ms: int = 0
    # Requests allowed per rate-limit window; 0 turns the limit off.
    rate_limit: int | None = None
    rate_limit_window_seconds: float | None = None
    # Lifetime of issued OAuth access tokens, in seconds.
    token_lifetime_seconds: int | None = None
    faults: tuple[str, ...] = ()


class ResponseTime:
    """ASGI middleware that starts each response ``seconds`` after its request
    arrived.

    An IdP's response time includes its own work, so the simulator's work on a
    request counts towards the latency instead of adding to it.
    """

    def __init__(self, app: ASGIApp, seconds: float, sleep: Sleep) -> None:
        self.app = app
        self.seconds = seconds
        self.sleep = sleep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()

        async def send_late(message: Message) -> None:
            if message["type"] == "http.response.start":
                remaining = self.seconds - (time.monotonic() - arrived)
                if remaining > 0:
                    await self.sleep(remaining)
            await send(message)

        await self.app(scope, receive, send_late)


@dataclass
class RateWindow:
    """A fixed rate-limit window: ``limit`` requests per ``seconds``."""

    limit: int
    seconds: float
    started: float = 0.0
    used: int = 0

    def consume(self, now: float) -> bool:
        """Count a request; return False when the window has none left."""
        if now >= self.started + self.seconds:
            self.started = now
            self.used = 0
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def reset_at(self) -> float:
        return self.started + self.seconds


@dataclass
class TokenStore:
    """Access tokens issued by a simulated token endpoint."""

    clock: Clock
    expires: dict[str, float] = field(default_factory=dict)

    def issue(self, lifetime: float) -> str:
        token = secrets.token_urlsafe(24)
        self.expires[token] = self.clock() + lifetime
        return token

    def is_valid(self, token: str) -> bool:
        expires = self.expires.get(token)
        return expires is not None and self.clock() < expires


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value else None


async def form_fields(request: Request) -> dict[str, str]:
    """Parse an application/x-www-form-urlencoded body (first value per name)."""
    body = (await request.body()).decode(errors="replace")
    return {name: values[0] for name, values in parse_qs(body).items()}


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(payload),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def encode_offset(offset: int) -> str:
    """Make an opaque paging cursor from a list offset."""
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def decode_offset(cursor: str | None) -> int:
    """Read a cursor made by ``encode_offset``; a missing or bad one is 0."""
    if not cursor:
        return 0
    try:
        return max(int(base64.urlsafe_b64decode(cursor.encode()).decode()), 0)
    except ValueError:
        return 0


def page_limit(requested: str | None, maximum: int, default: int) -> int:
    """Return the page size to serve: the request's, within 1..maximum."""
    try:
        size = int(requested) if requested else default
    except ValueError:
        size = default
    return max(1, min(size, maximum))


class IdpSimulator(abc.ABC):
    """A small ASGI app that serves one IdP's API from a directory file."""

    name: str
    # The IdP's own maximum page size, default rate limit and token lifetime.
    max_page_size: int
    default_rate_limit: int
    default_window_seconds: float
    default_token_lifetime: int

    def __init__(
        self,
        directory: Directory,
        options: SimulatorOptions,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.directory = directory
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.page_size = min(
            options.page_size or self.max_page_size, self.max_page_size
        )
        self.rate_limit = (
            self.default_rate_limit
            if options.rate_limit is None
            else options.rate_limit
        )
        self.rate_limit_seconds = (
            options.rate_limit_window_seconds or self.default_window_seconds
        )
        # One window per rate-limit bucket (see ``rate_limit_bucket``).
        self.rate_windows: dict[str, RateWindow] = {}
        self.token_lifetime = (
            options.token_lifetime_seconds or self.default_token_lifetime
        )
        self.tokens = TokenStore(clock)
        self.faults = FaultPlan.parse(options.faults)
        self.client_id = "sim-" + secrets.token_hex(8)
        self.client_secret = secrets.token_urlsafe(24)
        # Requests received, by target. Tests read it to count requests.
        self.request_counts: dict[str, int] = {}

    def app(self) -> ASGIApp:
        routes: ASGIApp = Starlette(routes=self.routes())
        if not self.options.latency_ms:
            return routes
        return ResponseTime(routes, self.options.latency_ms / 1000, self.sleep)

    @abc.abstractmethod
    def routes(self) -> list[Route]:
        """Return the IdP's API routes."""

    @abc.abstractmethod
    def connector_config(self, base_url: str) -> dict[str, Any]:
        """Return a complete connector configuration that points at ``base_url``."""

    @abc.abstractmethod
    def is_authorized(self, request: Request) -> bool:
        """Check the request's credential."""

    @abc.abstractmethod
    def error(self, status: int, message: str) -> Response:
        """Return a response with the IdP's error body for ``status``."""

    @abc.abstractmethod
    def rate_limit_headers(self) -> dict[str, str]:
        """Return the IdP's rate-limit headers for the current window."""

    def empty_listing(
        self, payload: Any, headers: dict[str, str]
    ) -> tuple[Any, int, dict[str, str]]:
        """Return the body, status and headers of a last page with no items.

        A payload that is no listing is returned unchanged. Subclasses drop
        the IdP's next-page link here.
        """
        return ([] if isinstance(payload, list) else payload), 200, headers

    def rate_limit_bucket(self, request: Request) -> str:
        """Name the rate-limit window that counts ``request``: one for the API."""
        return ""

    @property
    def rate_window(self) -> RateWindow | None:
        """The rate-limit window of the request being handled; None without a limit."""
        return _request_window.get()

    def rate_limited(self, target: str) -> Response:
        """Return a 429 response shaped the way the IdP shapes it."""
        return self.error(429, "API call exceeded rate limit due to too many requests.")

    async def admit(self, request: Request, target: str) -> Response | None:
        """Apply the credential check and the rate limit.

        Returns the response that ends the request, or None to go on.
        """
        self.request_counts[target] = self.request_counts.get(target, 0) + 1
        window = None
        if self.rate_limit > 0:
            window = self.rate_windows.setdefault(
                self.rate_limit_bucket(request),
                RateWindow(self.rate_limit, self.rate_limit_seconds),
            )
        _request_window.set(window)
        if target != "token" and not self.is_authorized(request):
            return self.error(401, "Invalid token provided")
        if window is not None and not window.consume(self.clock()):
            return self.rate_limited(target)
        return None

    async def respond(
        self,
        payload: Any,
        *,
        target: str,
        page: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Return ``payload``, unless a fault of this target and page fires."""
        all_headers = {**self.rate_limit_headers(), **(headers or {})}
        fault = self.faults.pick(target, page)
        if fault is None:
            return json_response(payload, headers=all_headers)
        return await self.apply_fault(fault, payload, target, all_headers)

    async def apply_fault(
        self, fault: Fault, payload: Any, target: str, headers: dict[str, str]
    ) -> Response:
        if fault.status == 429:
            return self.rate_limited(target)
        if fault.status is not None:
            return self.error(fault.status, f"Simulated failure ({fault.kind})")
        if fault.kind in ("timeout", "slow"):
            await self.sleep(fault.delay_ms / 1000)
            return json_response(payload, headers=headers)
        if fault.kind == "empty-list":
            return json_response(*self.empty_listing(payload, headers))
        body = json.dumps(payload).encode()
        kept = math.ceil(len(body) / 2) if fault.kind == "truncate" else 0
        return Response(body[:kept], headers=headers, media_type="application/json")
